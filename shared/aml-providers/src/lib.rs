//! LLM providers behind one trait: the Anthropic Messages API, Perplexity and any
//! OpenAI-compatible endpoint (OpenAI, or a local GPT-OSS-20B behind vLLM or llama.cpp).
//!
//! [`ProviderClient`] adds what every caller needs: a response cache on disk keyed by
//! (provider, model, prompt, parameters); retries with exponential backoff and jitter on 429,
//! 5xx and timeouts, honouring `Retry-After`; a client-side rate limit; and authentication
//! errors that fail at once with a clear message.

mod cache;
mod client;
mod completion;
mod credentials;
mod error;
mod wire;

/// The model asked of a provider when none is named (generation and the LLM judge).
pub const DEFAULT_MODEL: &str = "claude-3-5-sonnet-latest";

pub use client::ProviderClient;
pub use completion::{Completion, CompletionRequest, ProviderKind, ProviderSettings, Usage};
pub use credentials::Credentials;
pub use error::ProviderError;
