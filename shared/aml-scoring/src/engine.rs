use std::collections::HashMap;
use std::path::Path;

use aml_core::Label;
use aml_model::generate::{GenerationConfig, generate};
use aml_model::scoring::score_answers;
use aml_model::{CausalLm, LoadOptions, Lora, ModelError, PrefixKv, TextTokenizer};
use aml_proto::v1::Alert;
use tch::Tensor;

use crate::prompt::{alert_tokens, answer_tokens, message_tokens, split_template};

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    /// The model runtime failed (loading, tokenising, a forward pass).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The chat template cannot put the policy before the alert as a shared prefix.
    #[error("the chat template does not keep the user message after the system prompt: {0}")]
    Template(String),
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
    /// Template text between the user's content and the assistant's answer.
    user_close: String,
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
    prefixes: HashMap<String, EncodedPrefix>,
    prefix_encodes: u64,
}

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
        let mut model = CausalLm::load(model_dir, options)?;
        if let Some(adapter) = adapter_dir {
            Lora::load(&mut model, adapter)?;
        }
        Self::new(model, TextTokenizer::load(model_dir)?)
    }

    /// An engine around a model already in memory (e.g. one just trained).
    pub fn new(model: CausalLm, tokenizer: TextTokenizer) -> Result<Self, ScoringError> {
        let answers = answer_tokens(&tokenizer)?;
        Ok(ScoringEngine {
            model,
            tokenizer,
            answers,
            prefixes: HashMap::new(),
            prefix_encodes: 0,
        })
    }

    /// How many prefixes this engine has encoded (each distinct policy once).
    pub fn prefix_encodes(&self) -> u64 {
        self.prefix_encodes
    }

    /// The encoded prefix of `policy`: the chat template's opening with the policy as the
    /// system message, up to where the user's content begins. Encoded on first use, then
    /// kept for every later call with the same policy.
    pub fn prefix(&mut self, policy: &str) -> Result<&EncodedPrefix, ScoringError> {
        if !self.prefixes.contains_key(policy) {
            let prefix = self.encode_prefix(policy)?;
            self.prefix_encodes += 1;
            self.prefixes.insert(policy.to_owned(), prefix);
        }
        Ok(&self.prefixes[policy])
    }

    fn encode_prefix(&self, policy: &str) -> Result<EncodedPrefix, ScoringError> {
        let template = split_template(&self.tokenizer, policy)?;
        let ids = self.tokenizer.encode(&template.opening, false)?;
        if ids.is_empty() {
            return Err(ScoringError::Template("the prefix is empty".to_owned()));
        }
        let _no_grad = tch::no_grad_guard();
        let kv = self
            .model
            .encode_prefix(&Tensor::from_slice(&ids).to_device(self.model.device))?;
        Ok(EncodedPrefix {
            kv,
            user_close: template.user_close,
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
        let prefix = &self.prefixes[policy];
        let _no_grad = tch::no_grad_guard();
        let mut out = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(batch_size.max(1)) {
            let mut prompts = Vec::with_capacity(chunk.len());
            for message in chunk {
                prompts.push(message_tokens(
                    &self.tokenizer,
                    &prefix.user_close,
                    message,
                )?);
            }
            for scores in score_answers(&self.model, Some(&prefix.kv), &prompts, &self.answers)? {
                out.push(LabelProbabilities::from_log_probs(&scores.log_probs));
            }
        }
        Ok(out)
    }

    /// A generated rationale for one alert behind `policy` (greedy, at most `max_new_tokens` tokens).
    pub fn rationale(
        &mut self,
        policy: &str,
        alert: &Alert,
        max_new_tokens: i64,
    ) -> Result<String, ScoringError> {
        self.prefix(policy)?;
        let prefix = &self.prefixes[policy];
        let prompt = alert_tokens(&self.tokenizer, &prefix.user_close, alert)?;
        let config = GenerationConfig {
            max_new_tokens,
            stop_ids: self.tokenizer.eos_ids().to_vec(),
            ..GenerationConfig::default()
        };
        let generated = generate(&self.model, Some(&prefix.kv), &[prompt], &config)?;
        Ok(self
            .tokenizer
            .decode(generated.first().map_or(&[][..], Vec::as_slice))?
            .trim()
            .to_owned())
    }
}
