//! The streams, subjects and durable consumers of the platform, declared in one place.
//!
//! | stream | subjects | retention |
//! |---|---|---|
//! | `ALERTS` | `aml.alerts.<bank>` | limits; `Nats-Msg-Id` = alert id deduplicates |
//! | `JOBS` | `aml.jobs.<job>` | work queue: one durable pull consumer per service |
//! | `EVENTS` | `aml.events.<event>` | limits |
//! | `DLQ` | `aml.dlq.<original subject>` | limits; the reason in a header |

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};

use crate::{BusError, Result};

/// Alerts banks push, one subject per bank.
pub const ALERTS_STREAM: &str = "ALERTS";
/// Jobs for the services (work queue).
pub const JOBS_STREAM: &str = "JOBS";
/// Things that happened.
pub const EVENTS_STREAM: &str = "EVENTS";
/// Messages that could not be handled.
pub const DLQ_STREAM: &str = "DLQ";

/// Subject names.
pub mod subjects {
    /// Every bank's alerts.
    pub const ALERTS: &str = "aml.alerts.>";
    /// GenerateRequest, for the generator.
    pub const GENERATE: &str = "aml.jobs.generate";
    /// CandidateChunk, for the validator.
    pub const VALIDATE: &str = "aml.jobs.validate";
    /// TrainRequest, for the trainer.
    pub const TRAIN: &str = "aml.jobs.train";
    /// JudgeRequest, for the judge.
    pub const JUDGE: &str = "aml.jobs.judge";
    /// BatchRequest, for the scheduler.
    pub const BATCH: &str = "aml.jobs.batch";
    /// ScoringJob, for the inference workers.
    pub const SCORE: &str = "aml.jobs.score";
    /// DatasetReady of every run.
    pub const DATASET_READY: &str = "aml.events.dataset_ready.>";
    /// PhaseCompleted of every run.
    pub const PHASE_COMPLETED: &str = "aml.events.phase_completed.>";
    /// JudgeReport of every request.
    pub const JUDGE_REPORT: &str = "aml.events.judge_report.>";
    /// ShardCompleted of every batch.
    pub const SHARD_COMPLETED: &str = "aml.events.shard_completed.>";
    /// BatchReport of every batch.
    pub const BATCH_REPORT: &str = "aml.events.batch_report.>";

    /// DatasetReady of one run: a client follows its own run's events only.
    pub fn dataset_ready(run: &str) -> String {
        format!("aml.events.dataset_ready.{run}")
    }

    /// PhaseCompleted of one run.
    pub fn phase_completed(run: &str) -> String {
        format!("aml.events.phase_completed.{run}")
    }

    /// JudgeReport of one request.
    pub fn judge_report(request: &str) -> String {
        format!("aml.events.judge_report.{request}")
    }

    /// BatchReport of one batch.
    pub fn batch_report(batch: &str) -> String {
        format!("aml.events.batch_report.{batch}")
    }

    /// ShardCompleted of one batch (batch ids are single subject tokens).
    pub fn shard_completed(batch: &str) -> String {
        format!("aml.events.shard_completed.{batch}")
    }

    /// Every shard event of one batch (ShardCompleted and ShardProgress), as one filter.
    pub fn shard_events(batch: &str) -> String {
        format!("aml.events.*.{batch}")
    }

    /// ShardProgress of one batch: a worker still holds the shard.
    pub fn shard_progress(batch: &str) -> String {
        format!("aml.events.shard_progress.{batch}")
    }

    /// The subject a bank publishes its alerts on.
    pub fn alerts(bank: &str) -> String {
        format!("aml.alerts.{bank}")
    }
}

/// The EVENTS published on `subject` (a filter, wildcards allowed) from the stream's start,
/// through an ordered consumer: what a client waiting for the events of its own request or
/// batch reads, those published before it started included.
pub async fn follow_events(jetstream: &Context, subject: &str) -> Result<pull::Ordered> {
    let failed = |error: String| BusError::Topology {
        what: format!("ordered consumer of {subject} on {EVENTS_STREAM}"),
        reason: error,
    };
    jetstream
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|error| failed(error.to_string()))?
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|error| failed(error.to_string()))?
        .messages()
        .await
        .map_err(|error| failed(error.to_string()))
}

/// A well-formed run, request or batch id: the last token of its events' subjects and a
/// folder name, so letters, digits, `-` and `_`, at most 128 characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Refuses (to the DLQ) a message whose `field` is not a valid id (see [`valid_id`]): its
/// events could not be published under it.
pub fn require_id(field: &str, id: &str) -> std::result::Result<(), crate::HandlerError> {
    if valid_id(id) {
        return Ok(());
    }
    Err(crate::HandlerError::invalid(format!(
        "{field} `{id}`: an id is letters, digits, `-` and `_`, at most 128 characters"
    )))
}

/// A well-formed bank name, one subject token of `aml.alerts.<bank>`: lowercase letters,
/// digits, `-` and `_`.
pub fn valid_bank(bank: &str) -> bool {
    !bank.is_empty()
        && bank
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A durable pull consumer: its name, stream and filter subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Durable name.
    pub durable: String,
    /// Stream it reads.
    pub stream: &'static str,
    /// Subject filter.
    pub filter_subject: String,
}

impl ConsumerSpec {
    fn job(durable: &str, subject: &str) -> Self {
        ConsumerSpec {
            durable: durable.to_owned(),
            stream: JOBS_STREAM,
            filter_subject: subject.to_owned(),
        }
    }

    /// The generator's GenerateRequest queue.
    pub fn generator() -> Self {
        Self::job("generator", subjects::GENERATE)
    }

    /// The validator's CandidateChunk queue.
    pub fn validator() -> Self {
        Self::job("validator", subjects::VALIDATE)
    }

    /// The trainer's TrainRequest queue.
    pub fn trainer() -> Self {
        Self::job("trainer", subjects::TRAIN)
    }

    /// The judge's JudgeRequest queue.
    pub fn judge() -> Self {
        Self::job("judge", subjects::JUDGE)
    }

    /// The scheduler's BatchRequest queue.
    pub fn scheduler() -> Self {
        Self::job("scheduler", subjects::BATCH)
    }

    /// The inference workers' shared ScoringJob queue.
    pub fn inference_worker() -> Self {
        Self::job("inference-worker", subjects::SCORE)
    }

    /// A consumer of events (limits stream), e.g. the scheduler following ShardCompleted.
    pub fn events(durable: &str, subject: &str) -> Self {
        ConsumerSpec {
            durable: durable.to_owned(),
            stream: EVENTS_STREAM,
            filter_subject: subject.to_owned(),
        }
    }

    /// The scheduler's intake of every bank's alerts.
    pub fn alert_intake() -> Self {
        ConsumerSpec {
            durable: "scheduler-intake".to_owned(),
            stream: ALERTS_STREAM,
            filter_subject: subjects::ALERTS.to_owned(),
        }
    }
}

/// Creates the streams and consumers; every call is idempotent.
#[derive(Debug, Clone)]
pub struct Topology {
    jetstream: Context,
}

fn stream_configs() -> [StreamConfig; 4] {
    let file_stream = |name: &str, subject: &str, retention: RetentionPolicy| StreamConfig {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        retention,
        storage: StorageType::File,
        duplicate_window: Duration::from_secs(2 * 60),
        ..Default::default()
    };
    let mut alerts = file_stream(ALERTS_STREAM, subjects::ALERTS, RetentionPolicy::Limits);
    alerts.duplicate_window = Duration::from_secs(24 * 60 * 60);
    [
        alerts,
        file_stream(JOBS_STREAM, "aml.jobs.>", RetentionPolicy::WorkQueue),
        file_stream(EVENTS_STREAM, "aml.events.>", RetentionPolicy::Limits),
        file_stream(DLQ_STREAM, "aml.dlq.>", RetentionPolicy::Limits),
    ]
}

impl Topology {
    /// Wraps a JetStream context.
    pub fn new(client: async_nats::Client) -> Self {
        Topology {
            jetstream: jetstream::new(client),
        }
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &Context {
        &self.jetstream
    }

    /// Creates the four streams if they do not exist. Services starting together race to
    /// create them; a creation that fails because another process won is not an error.
    pub async fn ensure_streams(&self) -> Result<()> {
        for config in stream_configs() {
            let name = config.name.clone();
            if let Err(error) = self.jetstream.get_or_create_stream(config).await
                && self.jetstream.get_stream(&name).await.is_err()
            {
                return Err(BusError::Topology {
                    what: format!("stream {name}"),
                    reason: error.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Creates (or finds) a durable pull consumer; the server never drops a message by
    /// delivery count: the runner sends exhausted messages to the DLQ itself.
    pub async fn consumer(
        &self,
        spec: &ConsumerSpec,
        ack_wait: Duration,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>> {
        let topology_error = |error: String| BusError::Topology {
            what: format!("consumer {} on {}", spec.durable, spec.stream),
            reason: error,
        };
        let stream = self
            .jetstream
            .get_stream(spec.stream)
            .await
            .map_err(|error| topology_error(error.to_string()))?;
        let config = pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: spec.filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait,
            max_deliver: -1,
            max_ack_pending: 10_000,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&spec.durable, config)
            .await
            .map_err(|error| topology_error(error.to_string()))
    }
}
