//! The provider client: one call, with cache, retries and rate limit.

use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::cache::DiskCache;
use crate::completion::{Completion, CompletionRequest, ProviderKind, ProviderSettings, Usage};
use crate::error::ProviderError;
use crate::wire;

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
