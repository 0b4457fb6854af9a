//! The streams, subjects and durable consumers of the platform, declared in one place.
//!
//! | stream | subjects | retention |
//! |---|---|---|
//! | `ALERTS` | `aml.alerts.<bank>` | limits, `bus.alerts_max_age_days`; `Nats-Msg-Id` = alert id deduplicates |
//! | `JOBS` | `aml.jobs.<job>` | work queue: one durable pull consumer per service |
//! | `EVENTS` | `aml.events.<event>.<id>` | limits, `bus.events_max_age_days` and `_max_bytes` |
//! | `DLQ` | `aml.dlq.<original subject>` | limits, `bus.dlq_max_age_days` and `_max_bytes`; the reason in a header |
//!
//! Every stream has `bus.replicas` replicas.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};

use aml_runtime::config::BusConfig;

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
}

/// The replicas and retention limits of the streams (see `bus.*` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Replicas of every stream.
    pub replicas: usize,
    /// How long an alert stays on ALERTS.
    pub alerts_max_age: Duration,
    /// How long an event stays on EVENTS.
    pub events_max_age: Duration,
    /// Most bytes EVENTS keeps.
    pub events_max_bytes: i64,
    /// How long a dead letter stays on the DLQ.
    pub dlq_max_age: Duration,
    /// Most bytes the DLQ keeps.
    pub dlq_max_bytes: i64,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl From<&BusConfig> for StreamLimits {
    fn from(config: &BusConfig) -> Self {
        let days = |days: u32| DAY * days;
        StreamLimits {
            replicas: config.replicas.max(1),
            alerts_max_age: days(config.alerts_max_age_days),
            events_max_age: days(config.events_max_age_days),
            events_max_bytes: config.events_max_bytes,
            dlq_max_age: days(config.dlq_max_age_days),
            dlq_max_bytes: config.dlq_max_bytes,
        }
    }
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self::from(&BusConfig::default())
    }
}

impl StreamLimits {
    /// The four streams' configurations under these limits.
    pub fn stream_configs(&self) -> [StreamConfig; 4] {
        let file_stream = |name: &str, subject: &str, retention: RetentionPolicy| StreamConfig {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            retention,
            storage: StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: Duration::from_secs(2 * 60),
            ..Default::default()
        };
        let mut alerts = file_stream(ALERTS_STREAM, subjects::ALERTS, RetentionPolicy::Limits);
        alerts.duplicate_window = DAY.min(self.alerts_max_age.max(Duration::from_secs(60)));
        alerts.max_age = self.alerts_max_age;
        let mut events = file_stream(EVENTS_STREAM, "aml.events.>", RetentionPolicy::Limits);
        events.max_age = self.events_max_age;
        events.max_bytes = self.events_max_bytes;
        let mut dlq = file_stream(DLQ_STREAM, "aml.dlq.>", RetentionPolicy::Limits);
        dlq.max_age = self.dlq_max_age;
        dlq.max_bytes = self.dlq_max_bytes;
        [
            alerts,
            file_stream(JOBS_STREAM, "aml.jobs.>", RetentionPolicy::WorkQueue),
            events,
            dlq,
        ]
    }
}

/// Whether a stream's limits differ from the wanted ones.
fn limits_differ(have: &StreamConfig, want: &StreamConfig) -> bool {
    have.max_age != want.max_age
        || have.max_bytes != want.max_bytes
        || have.num_replicas.max(1) != want.num_replicas
        || have.duplicate_window != want.duplicate_window
}

/// Creates the streams and consumers; every call is idempotent.
#[derive(Debug, Clone)]
pub struct Topology {
    jetstream: Context,
    limits: StreamLimits,
}

impl Topology {
    /// Wraps a JetStream context; streams get the default limits.
    pub fn new(client: async_nats::Client) -> Self {
        Topology {
            jetstream: jetstream::new(client),
            limits: StreamLimits::default(),
        }
    }

    /// Streams created or updated by [`Topology::ensure_streams`] get `limits`.
    pub fn with_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &Context {
        &self.jetstream
    }

    /// Creates the four streams with the configured limits if they do not exist. Services
    /// starting together race to create them; a creation that fails because another process
    /// won is not an error. Existing streams are left as they are: a worker or client with a
    /// default configuration must not scale a cluster's streams down (see
    /// [`Topology::apply_limits`]).
    pub async fn ensure_streams(&self) -> Result<()> {
        self.streams(false).await
    }

    /// [`Topology::ensure_streams`], and brings the replicas and retention limits of existing
    /// streams to the configured ones: what `aml setup` and the scheduler do at start.
    pub async fn apply_limits(&self) -> Result<()> {
        self.streams(true).await
    }

    async fn streams(&self, update: bool) -> Result<()> {
        for want in self.limits.stream_configs() {
            let name = want.name.clone();
            let failed = |error: String| BusError::Topology {
                what: format!("stream {name}"),
                reason: error,
            };
            let stream = match self.jetstream.get_or_create_stream(want.clone()).await {
                Ok(stream) => stream,
                Err(error) => self
                    .jetstream
                    .get_stream(&name)
                    .await
                    .map_err(|_| failed(error.to_string()))?,
            };
            let have = stream.cached_info().config.clone();
            if update && limits_differ(&have, &want) {
                let updated = StreamConfig {
                    max_age: want.max_age,
                    max_bytes: want.max_bytes,
                    num_replicas: want.num_replicas,
                    duplicate_window: want.duplicate_window,
                    ..have
                };
                self.jetstream
                    .update_stream(updated)
                    .await
                    .map_err(|error| failed(format!("updating its limits: {error}")))?;
                tracing::info!(stream = %name, "stream limits updated to the configuration");
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
