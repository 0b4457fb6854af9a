//! The provider client: one call, with cache, retries and rate limit.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::cache::DiskCache;
use crate::wire;

/// Which wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic Messages API (`ANTHROPIC_API_KEY`).
    Anthropic,
    /// Perplexity chat completions (`PERPLEXITY_API_KEY`).
    Perplexity,
    /// Any OpenAI-compatible chat completions endpoint (`OPENAI_API_KEY`, `OPENAI_BASE_URL`).
    OpenAi,
}

impl ProviderKind {
    /// Parses `anthropic`, `perplexity` or `openai`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(ProviderKind::Anthropic),
            "perplexity" => Some(ProviderKind::Perplexity),
            "openai" => Some(ProviderKind::OpenAi),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Perplexity => "perplexity",
            ProviderKind::OpenAi => "openai",
        }
    }

    fn key_variable(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::Perplexity => "PERPLEXITY_API_KEY",
            ProviderKind::OpenAi => "OPENAI_API_KEY",
        }
    }
}

/// How to call a provider.
#[derive(Clone, PartialEq)]
pub struct ProviderSettings {
    /// Wire format.
    pub kind: ProviderKind,
    /// Model name.
    pub model: String,
    /// Endpoint base URL; the provider's public API when unset.
    pub base_url: Option<String>,
    /// API key (never printed).
    pub api_key: String,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens in the answer.
    pub max_tokens: u32,
    /// Sampling seed, where the API takes one.
    pub seed: Option<u64>,
    /// Cache folder; no cache when unset.
    pub cache_dir: Option<PathBuf>,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// Requests per minute, client side; unlimited when unset.
    pub requests_per_minute: Option<u32>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ProviderSettings {
    /// Settings with the key (and `ANTHROPIC_BASE_URL`, `PERPLEXITY_BASE_URL` or
    /// `OPENAI_BASE_URL` for a proxy or mirror) read from the given environment; a missing
    /// key is an error naming the variable.
    pub fn from_environment(
        kind: ProviderKind,
        model: &str,
        environment: &[(String, String)],
    ) -> Result<Self, ProviderError> {
        let variable = |name: &str| {
            environment
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .filter(|value| !value.is_empty())
        };
        let api_key = variable(kind.key_variable()).ok_or(ProviderError::MissingKey {
            variable: kind.key_variable(),
        })?;
        let base_url = match kind {
            ProviderKind::Anthropic => variable("ANTHROPIC_BASE_URL"),
            ProviderKind::Perplexity => variable("PERPLEXITY_BASE_URL"),
            ProviderKind::OpenAi => variable("OPENAI_BASE_URL"),
        };
        Ok(ProviderSettings {
            kind,
            model: model.to_owned(),
            base_url,
            api_key,
            temperature: 0.7,
            max_tokens: 2048,
            seed: None,
            cache_dir: None,
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            requests_per_minute: None,
            timeout: Duration::from_secs(120),
        })
    }
}

/// One prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletionRequest {
    /// System prompt.
    pub system: Option<String>,
    /// The user's message.
    pub prompt: String,
    /// Most tokens in this answer (default: the settings' `max_tokens`).
    pub max_tokens: Option<u32>,
}

/// Tokens a request spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The answer text.
    pub text: String,
    /// The provider stopped at the token limit: the last line may be cut.
    pub truncated: bool,
    /// Tokens spent (zero for a cache hit).
    pub usage: Usage,
    /// Whether it came from the cache.
    pub cached: bool,
    /// HTTP attempts made (0 for a cache hit).
    pub attempts: u32,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The key variable is not set.
    #[error("no API key: set {variable}")]
    MissingKey {
        /// The variable to set.
        variable: &'static str,
    },
    /// The provider rejected the key (401/403); not retried.
    #[error("{provider} rejected the API key (HTTP {status}): {message}")]
    Auth {
        /// Provider name.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// A request the provider refuses (other 4xx); not retried.
    #[error("{provider} refused the request (HTTP {status}): {message}")]
    Rejected {
        /// Provider name.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// Still failing after every retry.
    #[error("{provider} failed after {attempts} attempts: {last}")]
    Exhausted {
        /// Provider name.
        provider: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A success response without answer text.
    #[error("{provider} answered without text: {body}")]
    EmptyAnswer {
        /// Provider name.
        provider: &'static str,
        /// The start of the body.
        body: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Calls one provider.
#[derive(Debug)]
pub struct ProviderClient {
    settings: ProviderSettings,
    http: reqwest::Client,
    cache: Option<DiskCache>,
    next_slot: Mutex<Instant>,
}

enum Attempt {
    Done(wire::Answer),
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
}

impl ProviderClient {
    /// A client for the settings.
    pub fn new(settings: ProviderSettings) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|error| ProviderError::Client(error.to_string()))?;
        let cache = settings.cache_dir.as_deref().map(DiskCache::new);
        Ok(ProviderClient {
            settings,
            http,
            cache,
            next_slot: Mutex::new(Instant::now()),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    fn cache_key(&self, request: &CompletionRequest) -> String {
        DiskCache::key(&json!({
            "provider": self.settings.kind.name(),
            "model": self.settings.model,
            "system": request.system,
            "prompt": request.prompt,
            "temperature": self.settings.temperature,
            "max_tokens": request.max_tokens.unwrap_or(self.settings.max_tokens),
            "seed": self.settings.seed,
        }))
    }

    async fn wait_for_slot(&self) {
        let Some(per_minute) = self.settings.requests_per_minute.filter(|rate| *rate > 0) else {
            return;
        };
        let interval = Duration::from_secs_f64(60.0 / f64::from(per_minute));
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        let start = (*next).max(now);
        *next = start + interval;
        drop(next);
        tokio::time::sleep_until(start).await;
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .settings
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16));
        let capped = exponential.min(self.settings.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
        capped.mul_f64(jitter)
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<Attempt, ProviderError> {
        let provider = self.settings.kind.name();
        let mut builder = self.http.post(wire::endpoint(&self.settings)).json(body);
        builder = match self.settings.kind {
            ProviderKind::Anthropic => builder
                .header("x-api-key", &self.settings.api_key)
                .header("anthropic-version", "2023-06-01"),
            ProviderKind::Perplexity | ProviderKind::OpenAi => {
                builder.bearer_auth(&self.settings.api_key)
            }
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => {
                return Ok(Attempt::Retry {
                    reason: format!("transport: {error}"),
                    wait: None,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64);
        let text = response.text().await.unwrap_or_default();
        match status {
            200..=299 => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|_| ProviderError::EmptyAnswer {
                        provider,
                        body: text.chars().take(200).collect(),
                    })?;
                wire::answer(self.settings.kind, &value)
                    .map(Attempt::Done)
                    .ok_or_else(|| ProviderError::EmptyAnswer {
                        provider,
                        body: text.chars().take(200).collect(),
                    })
            }
            401 | 403 => Err(ProviderError::Auth {
                provider,
                status,
                message: wire::error_message(&text),
            }),
            408 | 429 | 500..=599 => Ok(Attempt::Retry {
                reason: format!("HTTP {status}: {}", wire::error_message(&text)),
                wait: retry_after,
            }),
            _ => Err(ProviderError::Rejected {
                provider,
                status,
                message: wire::error_message(&text),
            }),
        }
    }

    /// Answers a prompt: from the cache when present, else from the provider with retries.
    pub async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let key = self.cache_key(request);
        if let Some((text, truncated)) = self.cache.as_ref().and_then(|cache| cache.get(&key)) {
            debug!(provider = self.settings.kind.name(), "cache hit");
            return Ok(Completion {
                text,
                truncated,
                usage: Usage::default(),
                cached: true,
                attempts: 0,
            });
        }
        let body = wire::body(&self.settings, request);
        let mut last = String::new();
        for attempt in 0..=self.settings.max_retries {
            self.wait_for_slot().await;
            match self.attempt(&body).await? {
                Attempt::Done(answer) => {
                    if let Some(cache) = &self.cache
                        && let Err(error) = cache.put(&key, &answer.text, answer.truncated)
                    {
                        warn!(%error, "could not write the response cache");
                    }
                    return Ok(Completion {
                        text: answer.text,
                        truncated: answer.truncated,
                        usage: answer.usage,
                        cached: false,
                        attempts: attempt + 1,
                    });
                }
                Attempt::Retry { reason, wait } => {
                    let delay = wait.unwrap_or_else(|| self.backoff(attempt));
                    warn!(provider = self.settings.kind.name(), attempt, %reason, delay_ms = delay.as_millis() as u64, "retrying");
                    last = reason;
                    if attempt < self.settings.max_retries {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Err(ProviderError::Exhausted {
            provider: self.settings.kind.name(),
            attempts: self.settings.max_retries + 1,
            last,
        })
    }
}
