//! Bus errors and the verdict a handler returns.

/// A failure talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The connection could not be made.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The configured URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A stream or consumer could not be created or looked up.
    #[error("cannot set up {what}: {reason}")]
    Topology {
        /// The stream or consumer.
        what: String,
        /// Why.
        reason: String,
    },
    /// A publish was not acknowledged by JetStream.
    #[error("publish to {subject} failed: {reason}")]
    Publish {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The metrics endpoint could not listen.
    #[error("cannot serve metrics on {address}: {reason}")]
    Metrics {
        /// The configured address.
        address: String,
        /// Why.
        reason: String,
    },
    /// Fetching from a consumer failed.
    #[error("fetch from consumer {consumer} failed: {reason}")]
    Fetch {
        /// The durable consumer.
        consumer: String,
        /// Why.
        reason: String,
    },
}

/// Why a handler did not finish a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying later (a backend is down, a timeout): the message is nak'ed with a delay.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Never going to work (bad content): the message goes to the DLQ and is terminated.
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl HandlerError {
    /// A transient failure with a reason.
    pub fn transient(reason: impl std::fmt::Display) -> Self {
        HandlerError::Transient(reason.to_string())
    }

    /// A permanent failure with a reason.
    pub fn invalid(reason: impl std::fmt::Display) -> Self {
        HandlerError::Invalid(reason.to_string())
    }
}
