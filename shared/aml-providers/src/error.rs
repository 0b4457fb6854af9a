//! Why a provider call failed.

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
