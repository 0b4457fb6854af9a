//! Scoring alerts on the model runtime. A [`ScoringEngine`] holds one model (base + adapter,
//! or merged) and its tokenizer, encodes each distinct shared prefix (the policy document,
//! rendered with the model's chat template) once and keeps its KV, and scores alerts in
//! batches from the probabilities of MATCH / NO_MATCH / EDGE behind that prefix; escalated
//! alerts get generated rationales, a batch at a time. An [`EngineHandle`] serves an engine
//! from its own thread. A [`RemoteScorer`] computes the same probabilities on an
//! OpenAI-compatible server (vLLM with prefix caching). [`score_shard`] is the one
//! score-then-rationale loop over either. A folder whose training record says it answers
//! with its reasoning first is refused.

#![forbid(unsafe_code)]

mod actor;
mod engine;
mod prompt;
mod remote;
mod shard;

pub use actor::{EngineHandle, EngineSource};
pub use engine::{
    DEFAULT_PREFIX_BUDGET_BYTES, EncodedPrefix, LabelProbabilities, ScoringEngine, ScoringError,
};
pub use prompt::{scored_answers, scoring_token_ids};
pub use remote::{RemoteEndpoint, RemoteScorer};
pub use shard::{
    RATIONALE_TOKENS, Scorer, ShardProgress, ShardSettings, score_result, score_shard,
};
