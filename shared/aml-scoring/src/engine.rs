use std::collections::HashMap;
use std::path::Path;

use aml_core::Label;
use aml_core::record::TrainingRecord;
use aml_model::generate::{GenerationConfig, generate};
use aml_model::scoring::score_answers;
use aml_model::{CausalLm, LoadOptions, Lora, ModelError, PrefixKv, TextTokenizer};
use aml_proto::v1::Alert;
use tch::Tensor;

use crate::prompt::{AnswerShape, UserTurn, check_fits, prefix_ids, split_template};

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    /// The model runtime failed (loading, tokenising, a forward pass).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The chat template cannot put the policy before the alert as a shared prefix.
    #[error("the chat template does not keep the user message after the system prompt: {0}")]
    Template(String),
    /// Prefix, alert and answer together are longer than the model's context.
    #[error(
        "the prompt does not fit the model's context: prefix {prefix} + alert {alert} + answer {answer} tokens > max_position_embeddings {limit}; shorten the policy document"
    )]
    TooLong {
        /// Tokens of the shared prefix (policy and template).
        prefix: usize,
        /// Tokens of the longest alert of the call.
        alert: usize,
        /// Tokens of the longest answer.
        answer: usize,
        /// The model's context.
        limit: usize,
    },
    /// The folder's training record says it cannot score (a CoT adapter), or is unreadable.
    #[error("{folder} cannot score alerts: {reason}")]
    NotAScorer {
        /// The adapter or model folder.
        folder: String,
        /// Why.
        reason: String,
    },
    /// A backend returned fewer or more results than alerts.
    #[error("the backend returned {got} results for {expected} alerts")]
    Incomplete {
        /// Alerts sent.
        expected: usize,
        /// Results returned.
        got: usize,
    },
    /// The engine's owner thread is gone.
    #[error("the scoring engine stopped: {0}")]
    EngineStopped(String),
    /// The OpenAI-compatible server could not be reached or answered something unusable.
    #[error("{url}: {reason}")]
    Remote {
        /// The endpoint called.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// P(MATCH), P(NO_MATCH), P(EDGE) of one alert, renormalised over the three answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelProbabilities {
    /// P(MATCH).
    pub p_match: f64,
    /// P(NO_MATCH).
    pub p_no_match: f64,
    /// P(EDGE).
    pub p_edge: f64,
    /// The probability the model gave the three answers together, before renormalising:
    /// low when it would answer something else.
    pub answer_mass: f64,
}

impl LabelProbabilities {
    /// P(MATCH) + P(EDGE), the escalation score compared with tau.
    pub fn score(&self) -> f64 {
        self.p_match + self.p_edge
    }

    /// From the three answers' log-probabilities, in [`Label::ALL`] order: renormalised
    /// over the answers, with their total mass.
    pub(crate) fn from_log_probs(log_probs: &[f64]) -> Self {
        let probabilities = aml_model::scoring::renormalise(log_probs);
        LabelProbabilities {
            p_match: probabilities[0],
            p_no_match: probabilities[1],
            p_edge: probabilities[2],
            answer_mass: log_probs.iter().map(|log_prob| log_prob.exp()).sum(),
        }
    }

    /// The most probable label.
    pub fn label(&self) -> Label {
        if self.p_match >= self.p_no_match && self.p_match >= self.p_edge {
            Label::Match
        } else if self.p_edge >= self.p_no_match {
            Label::Edge
        } else {
            Label::NoMatch
        }
    }
}

/// A policy document encoded behind the chat template's opening, ready to be shared.
pub struct EncodedPrefix {
    kv: PrefixKv,
    /// How an alert's user message follows it.
    turn: UserTurn,
    /// Prefix length in tokens.
    pub tokens: usize,
}

impl std::fmt::Debug for EncodedPrefix {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EncodedPrefix")
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// One model, its tokenizer, and the prefixes encoded so far.
pub struct ScoringEngine {
    model: CausalLm,
    tokenizer: TextTokenizer,
    answers: Vec<Vec<i64>>,
    /// How the loaded weights were trained, when their folder says.
    record: Option<TrainingRecord>,
    /// Calls of the generator (one per batch of rationales).
    generate_calls: u64,
    /// Encoded prefixes by policy text, with when each was last used.
    prefixes: HashMap<String, (EncodedPrefix, u64)>,
    prefix_encodes: u64,
    /// Bytes the encoded prefixes may take together before the least recently used go.
    prefix_budget_bytes: i64,
    uses: u64,
}

/// The default budget of encoded prefixes: two 30k-token policies at 8B (3.9 GB each).
pub const DEFAULT_PREFIX_BUDGET_BYTES: i64 = 8 << 30;

impl std::fmt::Debug for ScoringEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScoringEngine")
            .field("tokenizer", &self.tokenizer)
            .field("prefix_encodes", &self.prefix_encodes())
            .finish()
    }
}

impl ScoringEngine {
    /// Loads the model in `model_dir` (Hugging Face layout) with an optional PEFT adapter.
    pub fn load(
        model_dir: &Path,
        adapter_dir: Option<&Path>,
        options: LoadOptions,
    ) -> Result<Self, ScoringError> {
        let record = scoring_record(model_dir, adapter_dir)?;
        let mut model = CausalLm::load(model_dir, options)?;
        if let Some(adapter) = adapter_dir {
            Lora::load(&mut model, adapter)?;
        }
        let mut engine = Self::new(model, TextTokenizer::load(model_dir)?)?;
        engine.record = record;
        Ok(engine)
    }

    /// An engine around a model already in memory (e.g. one just trained).
    pub fn new(model: CausalLm, tokenizer: TextTokenizer) -> Result<Self, ScoringError> {
        let answers = AnswerShape::of(&tokenizer)?.scored();
        Ok(ScoringEngine {
            model,
            tokenizer,
            answers,
            record: None,
            generate_calls: 0,
            prefixes: HashMap::new(),
            prefix_encodes: 0,
            prefix_budget_bytes: DEFAULT_PREFIX_BUDGET_BYTES,
            uses: 0,
        })
    }

    /// Keeps the encoded prefixes under `bytes` together (the one in use always stays).
    pub fn with_prefix_budget(mut self, bytes: i64) -> Self {
        self.prefix_budget_bytes = bytes;
        self
    }

    /// Bytes the encoded prefixes take now.
    pub fn prefix_bytes(&self) -> i64 {
        self.prefixes
            .values()
            .map(|(prefix, _)| prefix.kv.bytes())
            .sum()
    }

    /// Calls of the generator so far: one per batch of rationales.
    pub fn generate_calls(&self) -> u64 {
        self.generate_calls
    }

    /// How many prefixes this engine has encoded (each distinct policy once).
    pub fn prefix_encodes(&self) -> u64 {
        self.prefix_encodes
    }

    /// The encoded prefix of `policy`: the chat template's opening with the policy as the
    /// system message, up to where the user's content begins. Encoded on first use, then
    /// kept for later calls with the same policy while the prefixes fit their byte budget;
    /// past it, the least recently used are dropped (and encoded again if they come back).
    pub fn prefix(&mut self, policy: &str) -> Result<&EncodedPrefix, ScoringError> {
        self.uses += 1;
        let now = self.uses;
        if let Some((_, used)) = self.prefixes.get_mut(policy) {
            *used = now;
        } else {
            if let Some(difference) = self
                .record
                .as_ref()
                .and_then(|record| record.policy_difference(policy))
            {
                tracing::warn!("{difference}");
            }
            let prefix = self.encode_prefix(policy)?;
            self.prefix_encodes += 1;
            self.prefixes.insert(policy.to_owned(), (prefix, now));
            while self.prefix_bytes() > self.prefix_budget_bytes && self.prefixes.len() > 1 {
                let oldest = self
                    .prefixes
                    .iter()
                    .filter(|(text, _)| text.as_str() != policy)
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(text, _)| text.clone());
                match oldest {
                    Some(text) => self.prefixes.remove(&text),
                    None => break,
                };
            }
        }
        Ok(&self.prefixes[policy].0)
    }

    /// The model's context in tokens.
    fn context(&self) -> usize {
        self.model.config.max_position_embeddings.max(0) as usize
    }

    /// Checks that `prompts` behind `prefix`, with the longest answer, fit the model's context.
    fn check_prompts(
        &self,
        prefix: &EncodedPrefix,
        prompts: &[Vec<i64>],
    ) -> Result<(), ScoringError> {
        let alert = prompts.iter().map(Vec::len).max().unwrap_or(0);
        check_fits(prefix.tokens, alert, &self.answers, self.context())
    }

    fn encode_prefix(&self, policy: &str) -> Result<EncodedPrefix, ScoringError> {
        let template = split_template(&self.tokenizer, policy)?;
        let ids = prefix_ids(&self.tokenizer, &template)?;
        if ids.is_empty() {
            return Err(ScoringError::Template("the prefix is empty".to_owned()));
        }
        check_fits(ids.len(), 0, &self.answers, self.context())?;
        let _no_grad = tch::no_grad_guard();
        let kv = self
            .model
            .encode_prefix(&Tensor::from_slice(&ids).to_device(self.model.device))?;
        Ok(EncodedPrefix {
            kv,
            turn: template.turn,
            tokens: ids.len(),
        })
    }

    /// Label probabilities of each alert behind `policy`, `batch_size` alerts per forward pass.
    pub fn score(
        &mut self,
        policy: &str,
        alerts: &[Alert],
        batch_size: usize,
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        let messages: Vec<String> = alerts
            .iter()
            .map(aml_core::format::alert_user_message)
            .collect();
        self.score_messages(policy, &messages, batch_size)
    }

    /// Label probabilities of each user message (an instruction and a case, as
    /// [`aml_core::format::user_message`] writes it) behind `policy`.
    pub fn score_messages(
        &mut self,
        policy: &str,
        messages: &[String],
        batch_size: usize,
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        self.prefix(policy)?;
        let prefix = &self.prefixes[policy].0;
        let _no_grad = tch::no_grad_guard();
        let mut out = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(batch_size.max(1)) {
            let mut prompts = Vec::with_capacity(chunk.len());
            for message in chunk {
                prompts.push(prefix.turn.tokens(&self.tokenizer, message)?);
            }
            self.check_prompts(prefix, &prompts)?;
            for scores in score_answers(&self.model, Some(&prefix.kv), &prompts, &self.answers)? {
                out.push(LabelProbabilities::from_log_probs(&scores.log_probs));
            }
        }
        Ok(out)
    }

    /// Generated rationales for `alerts` behind `policy`, all in one batched generation
    /// (greedy, at most `max_new_tokens` tokens each).
    pub fn rationales(
        &mut self,
        policy: &str,
        alerts: &[Alert],
        max_new_tokens: i64,
    ) -> Result<Vec<String>, ScoringError> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        self.prefix(policy)?;
        let prefix = &self.prefixes[policy].0;
        let prompts = alerts
            .iter()
            .map(|alert| prefix.turn.alert_tokens(&self.tokenizer, alert))
            .collect::<Result<Vec<_>, _>>()?;
        self.check_prompts(prefix, &prompts)?;
        let config = GenerationConfig {
            max_new_tokens,
            stop_ids: self.tokenizer.eos_ids().to_vec(),
            ..GenerationConfig::default()
        };
        let generated = generate(&self.model, Some(&prefix.kv), &prompts, &config)?;
        self.generate_calls += 1;
        generated
            .iter()
            .map(|ids| Ok(self.tokenizer.decode(ids)?.trim().to_owned()))
            .collect()
    }
}

/// The training record that governs scoring with `model_dir` (and `adapter_dir`): the
/// adapter's when there is one, else the model folder's (a merged model); a record that
/// says the weights cannot score is an error naming the folder.
pub(crate) fn scoring_record(
    model_dir: &Path,
    adapter_dir: Option<&Path>,
) -> Result<Option<TrainingRecord>, ScoringError> {
    let folder = adapter_dir.unwrap_or(model_dir);
    let not_a_scorer = |reason: String| ScoringError::NotAScorer {
        folder: folder.display().to_string(),
        reason,
    };
    let record = TrainingRecord::read(folder).map_err(not_a_scorer)?;
    match &record {
        Some(record) => {
            if let Some(reason) = record.refusal() {
                return Err(not_a_scorer(reason));
            }
        }
        None => tracing::warn!(
            folder = %folder.display(),
            "no {} in the folder: cannot check that it was trained to answer with the decision first",
            aml_core::record::RECORD_FILE
        ),
    }
    Ok(record)
}
