//! Messaging over NATS JetStream.
//!
//! - [`topology`]: the streams, subjects and durable consumers, declared once and created
//!   idempotently by whichever service starts first.
//! - [`Publisher`]: typed protobuf publishing with `Nats-Msg-Id` deduplication and trace context
//!   in the headers.
//! - [`Runner`]: a pull-consumer loop with bounded concurrency that acks only after the
//!   handler's output is durable, naks transient failures with a delay, sends progress acks
//!   during long handlers, routes poison messages to the DLQ and drains on shutdown.
//! - [`EventFollower`]: a client's view of its own events that survives broker restarts.

pub mod auth;
mod connect;
mod dlq;
mod error;
mod follow;
mod metrics;
mod publish;
mod runner;
mod serve;
pub mod topology;
mod trace;

pub use connect::connect;
pub use dlq::{
    DLQ_DELIVERED_HEADER, DLQ_REASON_HEADER, DLQ_SUBJECT_HEADER, dead_letter, dlq_subject,
};
pub use error::{BusError, HandlerError};
pub use follow::EventFollower;
pub use metrics::RunnerMetrics;
pub use publish::{PublishSummary, Publisher};
pub use runner::{Delivery, Handler, Runner, RunnerSettings, RunnerStats};
pub use serve::{OneMessage, serve, serve_until, signal_token};
pub use topology::{ConsumerSpec, StreamLimits, Topology};
pub use trace::{extract_context, inject_context};

/// Result of bus operations.
pub type Result<T, E = BusError> = std::result::Result<T, E>;
