//! Scoring through an OpenAI-compatible completions server (vLLM and the like) instead of
//! in process. The worker keeps only the tokenizer: it sends token ids, the same ones the
//! local engine would run, as `prompt` with `echo` and `logprobs`, and sums the echoed
//! log-probabilities of each answer's tokens, which is exactly what the local engine
//! computes. Every prompt starts with the same policy tokens, so a server with prefix
//! caching (vLLM `--enable-prefix-caching`) encodes the policy once.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aml_model::TextTokenizer;
use aml_proto::v1::Alert;
use serde::Deserialize;
use serde_json::json;

use crate::prompt::{alert_tokens, answer_tokens, check_fits, split_template};
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
}

/// The policy's tokens and the template text closing the user's turn.
#[derive(Debug)]
struct RemotePrefix {
    ids: Vec<i64>,
    user_close: String,
}

/// Scores alerts on an OpenAI-compatible server from prompt log-probabilities.
#[derive(Debug)]
pub struct RemoteScorer {
    client: reqwest::Client,
    endpoint: RemoteEndpoint,
    url: String,
    tokenizer: TextTokenizer,
    answers: Vec<Vec<i64>>,
    prefixes: HashMap<String, RemotePrefix>,
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
    token_logprobs: Vec<Option<f64>>,
}

impl RemoteScorer {
    /// A scorer using the tokenizer and chat template in `tokenizer_dir` (the served model's
    /// `config.json`, `tokenizer.json` and `tokenizer_config.json`; no weights).
    pub fn new(tokenizer_dir: &Path, endpoint: RemoteEndpoint) -> Result<Self, ScoringError> {
        let tokenizer = TextTokenizer::load(tokenizer_dir)?;
        let answers = answer_tokens(&tokenizer)?;
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
            answers,
            prefixes: HashMap::new(),
            context,
        })
    }

    /// How many distinct policies were tokenised; the server caches their keys and values.
    pub fn prefix_encodes(&self) -> u64 {
        self.prefixes.len() as u64
    }

    fn prefix(&mut self, policy: &str) -> Result<&RemotePrefix, ScoringError> {
        if !self.prefixes.contains_key(policy) {
            let template = split_template(&self.tokenizer, policy)?;
            let prefix = RemotePrefix {
                ids: self.tokenizer.encode(&template.opening, false)?,
                user_close: template.user_close,
            };
            self.prefixes.insert(policy.to_owned(), prefix);
        }
        Ok(&self.prefixes[policy])
    }

    fn failure(&self, reason: impl Into<String>) -> ScoringError {
        ScoringError::Remote {
            url: self.url.clone(),
            reason: reason.into(),
        }
    }

    async fn complete(&self, body: serde_json::Value) -> Result<Vec<Choice>, ScoringError> {
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
        parsed.choices.sort_by_key(|choice| choice.index);
        Ok(parsed.choices)
    }

    /// Label probabilities of each alert behind `policy`, `batch_size` alerts per request.
    pub async fn score(
        &mut self,
        policy: &str,
        alerts: &[Alert],
        batch_size: usize,
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        self.prefix(policy)?;
        let prefix = &self.prefixes[policy];
        let mut out = Vec::with_capacity(alerts.len());
        for chunk in alerts.chunks(batch_size.max(1)) {
            let mut prompts = Vec::with_capacity(chunk.len() * self.answers.len());
            let mut context_lengths = Vec::with_capacity(prompts.capacity());
            for alert in chunk {
                let mut context = prefix.ids.clone();
                let own = alert_tokens(&self.tokenizer, &prefix.user_close, alert)?;
                check_fits(prefix.ids.len(), own.len(), &self.answers, self.context)?;
                context.extend(own);
                for answer in &self.answers {
                    context_lengths.push(context.len());
                    prompts.push([context.as_slice(), answer].concat());
                }
            }
            let choices = self
                .complete(json!({
                    "model": self.endpoint.model,
                    "prompt": prompts,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "echo": true,
                    "logprobs": 1,
                }))
                .await?;
            if choices.len() != prompts.len() {
                return Err(self.failure(format!(
                    "{} choices for {} prompts",
                    choices.len(),
                    prompts.len()
                )));
            }
            let mut sums = Vec::with_capacity(choices.len());
            for ((choice, prompt), start) in choices.iter().zip(&prompts).zip(&context_lengths) {
                sums.push(self.answer_log_prob(choice, prompt.len(), *start)?);
            }
            for row in sums.chunks(self.answers.len()) {
                out.push(LabelProbabilities::from_log_probs(row));
            }
        }
        Ok(out)
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

    /// A rationale for one alert behind `policy` (greedy, at most `max_new_tokens` tokens).
    pub async fn rationale(
        &mut self,
        policy: &str,
        alert: &Alert,
        max_new_tokens: i64,
    ) -> Result<String, ScoringError> {
        self.prefix(policy)?;
        let prefix = &self.prefixes[policy];
        let mut prompt = prefix.ids.clone();
        let own = alert_tokens(&self.tokenizer, &prefix.user_close, alert)?;
        check_fits(prefix.ids.len(), own.len(), &self.answers, self.context)?;
        prompt.extend(own);
        let choices = self
            .complete(json!({
                "model": self.endpoint.model,
                "prompt": prompt,
                "max_tokens": max_new_tokens,
                "temperature": 0.0,
            }))
            .await?;
        let choice = choices
            .into_iter()
            .next()
            .ok_or_else(|| self.failure("no choices"))?;
        Ok(choice.text.trim().to_owned())
    }
}
