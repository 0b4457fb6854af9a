//! Scoring alerts on the model runtime. A [`ScoringEngine`] holds one model (base + adapter,
//! or merged) and its tokenizer, encodes each distinct shared prefix (the policy document,
//! rendered with the model's chat template) once and keeps its KV, and scores alerts in
//! batches from the probabilities of MATCH / NO_MATCH / EDGE behind that prefix. Escalated
//! alerts can get a generated rationale. A [`RemoteScorer`] computes the same probabilities
//! on an OpenAI-compatible server (vLLM with prefix caching) from prompt log-probabilities.

#![forbid(unsafe_code)]

mod engine;
mod prompt;
mod remote;

pub use engine::{
    DEFAULT_PREFIX_BUDGET_BYTES, EncodedPrefix, LabelProbabilities, ScoringEngine, ScoringError,
};
pub use remote::{RemoteEndpoint, RemoteScorer};
