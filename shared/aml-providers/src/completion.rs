//! What a call asks and answers, and of which provider: the types the client and the wire
//! formats share.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ProviderError;

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
