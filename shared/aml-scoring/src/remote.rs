//! Scoring through an OpenAI-compatible completions server (vLLM and the like) instead of
//! in process. The worker keeps only the tokenizer and sends token ids, the same ones the
//! local engine runs: the policy prefix, then the alert, one prompt per alert.
//!
//! When the three answers start with different tokens (the tiny test tokenizer; expected,
//! not checked, for Llama 3's and Mistral's with the default answers), a request asks for one generated token with its top
//! log-probabilities (`max_tokens: 1`, `logprobs: 20` by default, token ids as keys through vLLM's
//! `return_tokens_as_token_ids`) and no echo: the server's prefix cache serves the policy, so
//! each alert costs its own tokens. Otherwise the answers' full sequences are scored from
//! echoed prompt log-probabilities (three prompts per alert), which vLLM's V1 engine computes
//! without its prefix cache: every alert then recomputes the policy three times, and the
//! scorer says so when it is built.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aml_core::record::TrainingRecord;
use aml_model::TextTokenizer;
use aml_proto::v1::Alert;
use serde::Deserialize;
use serde_json::json;

use crate::engine::scoring_record;
use crate::prompt::{AnswerShape, UserTurn, check_fits, prefix_ids, split_template};
use crate::{LabelProbabilities, ScoringError};

/// Where the server is and what it serves.
#[derive(Debug, Clone)]
pub struct RemoteEndpoint {
    /// Base URL, e.g. `http://vllm:8000` (`/v1/completions` is appended).
    pub base_url: String,
    /// The served model name (a base model or a `--lora-modules` adapter name).
    pub model: String,
    /// Bearer token, when the server wants one.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Top log-probabilities asked per alert: 20 is vLLM's most unless the server is started
    /// with a larger `--max-logprobs`.
    pub top_logprobs: usize,
}

/// The policy's tokens and how an alert's user message follows them.
#[derive(Debug)]
struct RemotePrefix {
    ids: Vec<i64>,
    turn: UserTurn,
}

/// Scores alerts on an OpenAI-compatible server. Calls share it by reference: shards of
/// several jobs send their requests at once.
#[derive(Debug)]
pub struct RemoteScorer {
    client: reqwest::Client,
    endpoint: RemoteEndpoint,
    url: String,
    tokenizer: TextTokenizer,
    shape: AnswerShape,
    /// The token text of each answer's first token, for servers that key top log-probs by text.
    first_texts: Vec<String>,
    prefixes: Mutex<HashMap<String, Arc<RemotePrefix>>>,
    record: Option<TrainingRecord>,
    /// The served model's context (`max_position_embeddings` of its config.json).
    context: usize,
}

#[derive(Debug, Deserialize)]
struct CompletionResponse {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    index: usize,
    #[serde(default)]
    text: String,
    logprobs: Option<Logprobs>,
}

#[derive(Debug, Deserialize)]
struct Logprobs {
    #[serde(default)]
    token_logprobs: Vec<Option<f64>>,
    #[serde(default)]
    top_logprobs: Option<Vec<Option<HashMap<String, f64>>>>,
}

impl RemoteScorer {
    /// A scorer using the tokenizer and chat template in `tokenizer_dir` (the served model's
    /// `config.json`, `tokenizer.json` and `tokenizer_config.json`; no weights), checking the
    /// training record of `adapter_dir` when given (the adapter the server serves), else of
    /// `tokenizer_dir`.
    pub fn new(
        tokenizer_dir: &Path,
        adapter_dir: Option<&Path>,
        endpoint: RemoteEndpoint,
    ) -> Result<Self, ScoringError> {
        let record = scoring_record(tokenizer_dir, adapter_dir)?;
        let tokenizer = TextTokenizer::load(tokenizer_dir)?;
        let shape = AnswerShape::of(&tokenizer)?;
        let first_texts = match &shape {
            AnswerShape::FirstTokens(firsts) => firsts
                .iter()
                .map(|&id| tokenizer.decode(&[id]))
                .collect::<Result<_, _>>()?,
            AnswerShape::Sequences(_) => {
                tracing::warn!(
                    "two answers share their first token with this tokenizer: each alert is scored from echoed prompt log-probabilities, three prompts per alert, which vLLM computes without its prefix cache (about three times the policy's tokens per alert)"
                );
                Vec::new()
            }
        };
        let context = aml_model::ModelConfig::from_dir(tokenizer_dir)?
            .max_position_embeddings
            .max(0) as usize;
        let url = format!("{}/v1/completions", endpoint.base_url.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(endpoint.timeout)
            .build()
            .map_err(|error| ScoringError::Remote {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        Ok(RemoteScorer {
            client,
            endpoint,
            url,
            tokenizer,
            shape,
            first_texts,
            prefixes: Mutex::new(HashMap::new()),
            record,
            context,
        })
    }

    /// Whether each alert is one prompt scored from its first generated token (the shape
    /// that keeps the server's prefix cache), rather than three echoed prompts.
    pub fn first_token_requests(&self) -> bool {
        matches!(self.shape, AnswerShape::FirstTokens(_))
    }

    /// How many distinct policies were tokenised; the server caches their keys and values.
    pub fn prefix_encodes(&self) -> u64 {
        self.prefixes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len() as u64
    }

    fn prefix(&self, policy: &str) -> Result<Arc<RemotePrefix>, ScoringError> {
        let mut prefixes = self
            .prefixes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(prefix) = prefixes.get(policy) {
            return Ok(Arc::clone(prefix));
        }
        if let Some(difference) = self
            .record
            .as_ref()
            .and_then(|record| record.policy_difference(policy))
        {
            tracing::warn!("{difference}");
        }
        let template = split_template(&self.tokenizer, policy)?;
        let prefix = Arc::new(RemotePrefix {
            ids: prefix_ids(&self.tokenizer, &template)?,
            turn: template.turn,
        });
        prefixes.insert(policy.to_owned(), Arc::clone(&prefix));
        Ok(prefix)
    }

    /// The prompt of each alert: the policy's tokens, then the alert's, checked against the
    /// model's context.
    fn prompts(&self, policy: &str, alerts: &[Alert]) -> Result<Vec<Vec<i64>>, ScoringError> {
        let prefix = self.prefix(policy)?;
        let answers = self.shape.scored();
        alerts
            .iter()
            .map(|alert| {
                let own = prefix.turn.alert_tokens(&self.tokenizer, alert)?;
                check_fits(prefix.ids.len(), own.len(), &answers, self.context)?;
                Ok([prefix.ids.as_slice(), &own].concat())
            })
            .collect()
    }

    fn failure(&self, reason: impl Into<String>) -> ScoringError {
        ScoringError::Remote {
            url: self.url.clone(),
            reason: reason.into(),
        }
    }

    async fn complete(
        &self,
        body: serde_json::Value,
        expected: usize,
    ) -> Result<Vec<Choice>, ScoringError> {
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.endpoint.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.failure(error.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| self.failure(error.to_string()))?;
        if !status.is_success() {
            let excerpt: String = text.chars().take(300).collect();
            return Err(self.failure(format!("HTTP {status}: {excerpt}")));
        }
        let mut parsed: CompletionResponse = serde_json::from_str(&text)
            .map_err(|error| self.failure(format!("not a completions response: {error}")))?;
        if parsed.choices.len() != expected {
            return Err(self.failure(format!(
                "{} choices for {expected} prompts",
                parsed.choices.len()
            )));
        }
        parsed.choices.sort_by_key(|choice| choice.index);
        Ok(parsed.choices)
    }

    /// Label probabilities of `alerts` behind `policy`, in one request.
    pub async fn score(
        &self,
        policy: &str,
        alerts: &[Alert],
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let prompts = self.prompts(policy, alerts)?;
        match &self.shape {
            AnswerShape::FirstTokens(firsts) => self.score_first_tokens(prompts, firsts).await,
            AnswerShape::Sequences(answers) => self.score_echoed(prompts, answers).await,
        }
    }

    /// One prompt per alert, one generated token, its top log-probabilities.
    async fn score_first_tokens(
        &self,
        prompts: Vec<Vec<i64>>,
        firsts: &[i64; 3],
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        let expected = prompts.len();
        let choices = self
            .complete(
                json!({
                    "model": self.endpoint.model,
                    "prompt": prompts,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "logprobs": self.endpoint.top_logprobs,
                    "return_tokens_as_token_ids": true,
                }),
                expected,
            )
            .await?;
        choices
            .iter()
            .map(|choice| {
                let top = choice
                    .logprobs
                    .as_ref()
                    .and_then(|logprobs| logprobs.top_logprobs.as_ref())
                    .and_then(|positions| positions.first().cloned().flatten())
                    .ok_or_else(|| {
                        self.failure(format!(
                            "choice {} has no top_logprobs: the server must support logprobs",
                            choice.index
                        ))
                    })?;
                Ok(LabelProbabilities::from_log_probs(
                    &self.first_token_log_probs(&top, firsts),
                ))
            })
            .collect()
    }

    /// The log-probability of each answer's first token among the `top` returned, keyed by
    /// `token_id:N` (vLLM with `return_tokens_as_token_ids`) or by the token's text. An
    /// answer outside the top is given the lowest listed value, an upper bound on its own,
    /// so that a MATCH the server ranks low is never scored lower than it can be.
    fn first_token_log_probs(&self, top: &HashMap<String, f64>, firsts: &[i64; 3]) -> Vec<f64> {
        let floor = top.values().copied().fold(f64::INFINITY, f64::min);
        firsts
            .iter()
            .zip(&self.first_texts)
            .map(|(id, text)| {
                top.get(&format!("token_id:{id}"))
                    .or_else(|| top.get(text))
                    .copied()
                    .unwrap_or(floor)
            })
            .collect()
    }

    /// Three echoed prompts per alert (alert + each answer); each answer's log-probability is
    /// the sum of its echoed tokens'.
    async fn score_echoed(
        &self,
        prompts: Vec<Vec<i64>>,
        answers: &[Vec<i64>],
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        let mut full = Vec::with_capacity(prompts.len() * answers.len());
        let mut starts = Vec::with_capacity(full.capacity());
        for prompt in &prompts {
            for answer in answers {
                starts.push(prompt.len());
                full.push([prompt.as_slice(), answer].concat());
            }
        }
        let choices = self
            .complete(
                json!({
                    "model": self.endpoint.model,
                    "prompt": full,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "echo": true,
                    "logprobs": 1,
                }),
                full.len(),
            )
            .await?;
        let mut sums = Vec::with_capacity(choices.len());
        for ((choice, prompt), start) in choices.iter().zip(&full).zip(&starts) {
            sums.push(self.answer_log_prob(choice, prompt.len(), *start)?);
        }
        Ok(sums
            .chunks(answers.len())
            .map(LabelProbabilities::from_log_probs)
            .collect())
    }

    /// The summed log-probability of the prompt's tokens from `start` to `end`.
    fn answer_log_prob(
        &self,
        choice: &Choice,
        end: usize,
        start: usize,
    ) -> Result<f64, ScoringError> {
        let logprobs = choice.logprobs.as_ref().ok_or_else(|| {
            self.failure(format!(
                "choice {} has no logprobs: the server must support echo with logprobs",
                choice.index
            ))
        })?;
        let tokens = &logprobs.token_logprobs;
        if tokens.len() < end {
            return Err(self.failure(format!(
                "choice {}: {} token log-probs for a prompt of {end} tokens: the server must echo the prompt's log-probs",
                choice.index,
                tokens.len()
            )));
        }
        tokens[start..end]
            .iter()
            .enumerate()
            .map(|(offset, value)| {
                value.ok_or_else(|| {
                    self.failure(format!(
                        "choice {}: no log-prob for prompt token {}",
                        choice.index,
                        start + offset
                    ))
                })
            })
            .sum()
    }

    /// Rationales of `alerts` behind `policy` (greedy, at most `max_new_tokens` tokens each),
    /// in one request.
    pub async fn rationales(
        &self,
        policy: &str,
        alerts: &[Alert],
        max_new_tokens: i64,
    ) -> Result<Vec<String>, ScoringError> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let prompts = self.prompts(policy, alerts)?;
        let expected = prompts.len();
        let choices = self
            .complete(
                json!({
                    "model": self.endpoint.model,
                    "prompt": prompts,
                    "max_tokens": max_new_tokens,
                    "temperature": 0.0,
                }),
                expected,
            )
            .await?;
        Ok(choices
            .into_iter()
            .map(|choice| choice.text.trim().to_owned())
            .collect())
    }
}
