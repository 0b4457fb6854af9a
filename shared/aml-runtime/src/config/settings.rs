//! The configuration schema: one section per concern, every field with a default.

use std::path::PathBuf;

use aml_core::{DeviceChoice, DtypeChoice};
use serde::{Deserialize, Serialize};

use super::Secret;

/// The whole configuration every `aml` binary reads (`aml.toml`, `.env`, `AML_*`, flags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmlConfig {
    /// The NATS JetStream connection.
    pub nats: NatsConfig,
    /// Object storage.
    pub storage: StorageConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// The pull-consumer runner.
    pub bus: BusConfig,
    /// Batch scoring: intake, scheduler and inference workers.
    pub scoring: ScoringConfig,
    /// LLM providers' keys, the Hub token and the judge's provider.
    pub providers: super::ProvidersConfig,
}

/// Batch scoring settings shared by the scheduler and the inference workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Banks whose alerts are accepted; empty accepts any well-formed bank name.
    pub banks: Vec<String>,
    /// Alerts per shard.
    pub shard_size: u32,
    /// When the scheduler cuts a batch on its own: a cron expression with seconds
    /// (`sec min hour day-of-month month day-of-week`); empty disables. Weekly by default.
    pub schedule: String,
    /// A shard not completed this long after it was published is published again.
    pub shard_timeout_secs: u64,
    /// The scheduler stops waiting for a batch after this long and reports what it has.
    pub batch_timeout_secs: u64,
    /// The model (a directory or object-store URL holding config, weights and tokenizer).
    pub model_url: String,
    /// A LoRA adapter (PEFT format) applied on the model; empty for none or merged weights.
    pub adapter_url: String,
    /// The shared prefix (policy / instructions document); empty uses the built-in one.
    pub policy_url: String,
    /// `calibration.json` (a path or an object-store URL) the thresholds come from: tau and
    /// the prescreen cutoff, certified for one model, adapter and policy. Empty: uncalibrated
    /// (the prescreen clears nothing, alerts are escalated at `tau`).
    pub calibration_url: String,
    /// Score a batch whose model, adapter or policy differs from the calibration's, as
    /// uncalibrated, instead of refusing it.
    pub allow_uncalibrated: bool,
    /// Uncalibrated banks escalate alerts with P(match) + P(edge) >= tau; a calibration's tau
    /// replaces it.
    pub tau: f64,
    /// Per bank: its own tau, policy, adapter or calibration (`[scoring.per_bank.alpha]`).
    pub per_bank: std::collections::BTreeMap<String, BankOverrides>,
    /// Generate a rationale for escalated alerts.
    pub rationale: bool,
    /// Largest accepted alert, in encoded bytes.
    pub max_alert_bytes: usize,
    /// An alert id already cut into a batch within this many days is dropped as a duplicate
    /// (the stream itself drops repeats within 24 hours); 0 looks back no further.
    pub dedup_days: u32,
    /// Alerts per forward pass in a worker.
    pub worker_batch_size: usize,
    /// Where a worker's local backend runs the model: `auto` (the first CUDA device, else
    /// the CPU), `cpu`, `cuda` or `cuda:N`.
    pub device: DeviceChoice,
    /// The local backend's compute dtype: `auto` (bf16 on CUDA, f32 on the CPU), `f32`, `bf16`.
    pub dtype: DtypeChoice,
    /// Bytes a worker's encoded prefixes (the policies' keys and values) may take together;
    /// past it the least recently used is dropped. 8 GiB keeps two 30k-token policies at 8B.
    pub prefix_cache_bytes: i64,
    /// USD per GPU-hour, for the report's cost estimate.
    pub gpu_price_per_hour: f64,
    /// Where the workers' forward passes run.
    pub backend: ScoringBackend,
    /// The OpenAI-compatible server's base URL (e.g. vLLM's `http://host:8000`), for the
    /// `openai` backend.
    pub openai_url: String,
    /// The model name the OpenAI-compatible server serves (e.g. a `--lora-modules` name).
    pub openai_model: String,
    /// Bearer token for the OpenAI-compatible server.
    pub openai_api_key: Option<Secret>,
    /// Top log-probabilities asked of the server per alert (vLLM allows 20 unless started
    /// with a larger `--max-logprobs`); an answer outside them is scored at the lowest listed.
    pub openai_top_logprobs: usize,
}

/// What one bank sets apart from the scoring defaults; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BankOverrides {
    /// Tau while the bank is uncalibrated.
    pub tau: Option<f64>,
    /// The bank's policy document.
    pub policy_url: Option<String>,
    /// The bank's adapter.
    pub adapter_url: Option<String>,
    /// The bank's calibration.
    pub calibration_url: Option<String>,
}

/// Where an inference worker's forward passes run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoringBackend {
    /// In process, on libtorch (the default).
    #[default]
    Local,
    /// An OpenAI-compatible completions server returning prompt log-probabilities
    /// (vLLM with prefix caching); the worker keeps only the tokenizer.
    Openai,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            banks: Vec::new(),
            shard_size: 1000,
            schedule: "0 0 2 * * Mon".to_owned(),
            shard_timeout_secs: 900,
            batch_timeout_secs: 12 * 60 * 60,
            model_url: String::new(),
            adapter_url: String::new(),
            policy_url: String::new(),
            calibration_url: String::new(),
            allow_uncalibrated: false,
            tau: 0.5,
            per_bank: std::collections::BTreeMap::new(),
            rationale: false,
            max_alert_bytes: 64 * 1024,
            dedup_days: 400,
            worker_batch_size: 16,
            device: DeviceChoice::Auto,
            dtype: DtypeChoice::Auto,
            prefix_cache_bytes: 8 << 30,
            gpu_price_per_hour: 1.10,
            backend: ScoringBackend::Local,
            openai_url: String::new(),
            openai_model: String::new(),
            openai_api_key: None,
            openai_top_logprobs: 20,
        }
    }
}

/// How to reach NATS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// User name for user/password authentication.
    pub user: Option<String>,
    /// Password for user/password authentication.
    pub password: Option<Secret>,
    /// Token authentication.
    pub token: Option<Secret>,
    /// A `.creds` file (JWT + NKey), as issued for remote workers.
    pub credentials_file: Option<PathBuf>,
    /// CA certificate that signs the server's TLS certificate.
    pub tls_ca_file: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub tls_required: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            user: None,
            password: None,
            token: None,
            credentials_file: None,
            tls_ca_file: None,
            tls_required: false,
        }
    }
}

/// Where bulk data lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `file:///abs/dir`, a plain directory path, `s3://bucket/prefix` or `memory://`.
    pub url: String,
    /// Settings for `s3://` URLs.
    pub s3: S3Config,
    /// Days a batch's per-bank objects (shards, results, the policy it ran with) are kept:
    /// `aml retention --apply` deletes older ones. Batch-wide counts (manifest, report) and
    /// the hashed dedup index are kept for `scoring.dedup_days`.
    pub retention_days: u32,
}

impl StorageConfig {
    /// Opens `location` (a URL or a plain directory, see [`super::storage_url`]) with these S3
    /// settings.
    pub fn open(&self, location: &str) -> Result<aml_storage::Storage, aml_storage::StorageError> {
        aml_storage::Storage::open(&super::storage_url(location), &(&self.s3).into())
    }
}

impl From<&S3Config> for aml_storage::S3Options {
    fn from(config: &S3Config) -> Self {
        aml_storage::S3Options {
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config
                .secret_access_key
                .as_ref()
                .map(|secret| secret.expose().to_owned()),
            allow_http: config.allow_http,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: "./aml-data".to_owned(),
            s3: S3Config::default(),
            retention_days: 35,
        }
    }
}

/// S3-compatible storage settings; unset values fall back to the `AWS_*` environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint of an S3-compatible server (MinIO, R2).
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Allow plain HTTP (local MinIO).
    pub allow_http: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Logs and traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `aml_bus=debug,info`.
    pub log_level: String,
    /// OTLP/gRPC endpoint; also read from `OTEL_EXPORTER_OTLP_ENDPOINT`. Unset: no export.
    pub otlp_endpoint: Option<String>,
    /// Address of the Prometheus `/metrics` endpoint, e.g. `0.0.0.0:9464`. Unset: none.
    pub metrics_addr: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
            metrics_addr: None,
        }
    }
}

/// The pull-consumer runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// Handlers running at once per process.
    pub concurrency: usize,
    /// Seconds the server waits for an ack before redelivering.
    pub ack_wait_secs: u64,
    /// Delay before a transiently failed message is redelivered, in milliseconds.
    pub nak_delay_ms: u64,
    /// Deliveries after which a still-failing message goes to the DLQ.
    pub max_deliveries: u32,
    /// Replicas of every stream: 1 on a single server, 3 on a 3-node cluster (a stream
    /// then survives the loss of one node).
    pub replicas: usize,
    /// Days an alert stays on the ALERTS stream (its content is personal data: this is the
    /// bus's PII retention). A batch must be cut within this window.
    pub alerts_max_age_days: u32,
    /// Days an event stays on the EVENTS stream.
    pub events_max_age_days: u32,
    /// Most bytes the EVENTS stream keeps (the oldest go first).
    pub events_max_bytes: i64,
    /// Days a dead letter stays on the DLQ (it may hold an alert's content).
    pub dlq_max_age_days: u32,
    /// Most bytes the DLQ keeps (the oldest go first).
    pub dlq_max_bytes: i64,
    /// Seconds a service given SIGTERM waits for its running handlers to checkpoint and
    /// stop before it hands their messages back unfinished.
    pub shutdown_grace_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            concurrency: 16,
            ack_wait_secs: 30,
            nak_delay_ms: 1_000,
            max_deliveries: 10,
            replicas: 1,
            alerts_max_age_days: 35,
            events_max_age_days: 90,
            events_max_bytes: 1 << 30,
            dlq_max_age_days: 35,
            dlq_max_bytes: 1 << 30,
            shutdown_grace_secs: 20,
        }
    }
}
