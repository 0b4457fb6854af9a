//! The inference worker's handler. For each ScoringJob: load the model once (base + adapter,
//! cached by URL; a folder whose training record says it answers reasoning-first is refused
//! and the job goes to the DLQ), score the shard through the one score-then-rationale loop
//! ([`aml_scoring::score_shard`]) with rationales for escalated alerts in batches when asked,
//! publish ShardProgress as the batches finish (so the scheduler does not publish the shard
//! again while it is held), write the results under the bank's keys, then announce
//! ShardCompleted. The runner acks only after that, so a worker killed mid-shard leaves the
//! job to be redelivered, and a redelivered shard overwrites its own results object.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aml_batch::{decode_shard, put_results};
use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_model::LoadOptions;
use aml_proto::v1::{Alert, ScoreResult, ScoringJob, ShardCompleted};
use aml_scoring::{
    EngineHandle, EngineSource, RemoteEndpoint, RemoteScorer, Scorer, ScoringError, ShardProgress,
    ShardSettings, score_shard,
};
use aml_storage::Storage;
use bytes::Bytes;
use tokio::sync::{Mutex, watch};
use tracing::{info, warn};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Its name in ShardCompleted.
    pub worker_id: String,
    /// Alerts per forward pass, request or batch of rationales.
    pub batch_size: usize,
    /// Where models named by object-store URLs are downloaded.
    pub model_cache: PathBuf,
    /// Where the forward passes run.
    pub backend: Backend,
    /// Bytes the local engine's encoded prefixes may take together.
    pub prefix_cache_bytes: i64,
    /// Least time between two ShardProgress events of a shard.
    pub progress_interval: Duration,
}

/// Where a worker's forward passes run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In process on libtorch, on this device and dtype: the job's model and adapter are
    /// loaded here.
    Local(LoadOptions),
    /// An OpenAI-compatible server (vLLM) serving the model; the job's model URL needs
    /// only the model's `config.json` and tokenizer files, no weights.
    Remote(RemoteEndpoint),
}

/// A loaded engine, shared by the jobs of one model.
#[derive(Clone)]
enum Engine {
    Local(EngineHandle),
    Remote(Arc<RemoteScorer>),
}

/// Handles ScoringJobs.
pub struct ScoreHandler {
    storage: Storage,
    publisher: Publisher,
    settings: WorkerSettings,
    engine: Mutex<Option<(String, Engine)>>,
    counters: WorkerCounters,
}

/// What this worker scored, for its `/metrics`.
#[derive(Debug, Default)]
struct WorkerCounters {
    scored: AtomicU64,
    escalated: AtomicU64,
    model_micros: AtomicU64,
}

/// A failed scoring call as the runner should treat it: a prompt too long for the model
/// would be too long on every delivery, so it goes to the DLQ; the rest is retried.
fn handler_error(error: ScoringError) -> HandlerError {
    match error {
        ScoringError::TooLong { .. } => HandlerError::invalid(error),
        other => HandlerError::transient(other),
    }
}

/// A model that cannot be loaded (a missing file, a CoT adapter) fails the same way on every
/// delivery: the job goes to the DLQ with the reason.
fn load_error(error: ScoringError) -> HandlerError {
    HandlerError::invalid(format!("cannot load the model: {error}"))
}

impl ScoreHandler {
    /// A handler reading and writing `storage`, announcing on `publisher`.
    pub fn new(storage: Storage, publisher: Publisher, settings: WorkerSettings) -> Self {
        ScoreHandler {
            storage,
            publisher,
            settings,
            engine: Mutex::new(None),
            counters: WorkerCounters::default(),
        }
    }

    fn key<'a>(&self, url: &'a str, what: &str) -> Result<&'a str, HandlerError> {
        self.storage.key_of(url).ok_or_else(|| {
            HandlerError::invalid(format!(
                "{what} {url} is not under this worker's storage {}",
                self.storage.url()
            ))
        })
    }

    /// A local directory holding the model or adapter at `url`: a path or `file://` URL as
    /// it is, an object-store URL downloaded once into the model cache.
    async fn local_dir(&self, url: &str) -> Result<PathBuf, HandlerError> {
        let folder = self
            .storage
            .folder(url, &self.settings.model_cache)
            .map_err(|error| HandlerError::invalid(format!("model {url}: {error}")))?;
        match folder.fetch_input().await {
            Ok(dir) => Ok(dir.to_owned()),
            Err(error @ aml_storage::StorageError::NotFound { .. }) => Err(HandlerError::invalid(
                format!("no objects under {url}: {error}"),
            )),
            Err(error) => Err(HandlerError::transient(error)),
        }
    }

    async fn engine(&self, job: &ScoringJob) -> Result<Engine, HandlerError> {
        let wanted = format!("{}\n{}", job.model_url, job.adapter_url);
        let mut slot = self.engine.lock().await;
        if let Some((loaded, engine)) = slot.as_ref()
            && *loaded == wanted
        {
            return Ok(engine.clone());
        }
        let model_dir = self.local_dir(&job.model_url).await?;
        let adapter_dir = if job.adapter_url.is_empty() {
            None
        } else {
            Some(self.local_dir(&job.adapter_url).await?)
        };
        let engine = match &self.settings.backend {
            Backend::Remote(endpoint) => Engine::Remote(Arc::new(
                RemoteScorer::new(&model_dir, adapter_dir.as_deref(), endpoint.clone())
                    .map_err(load_error)?,
            )),
            Backend::Local(options) => Engine::Local(
                EngineHandle::load(EngineSource {
                    model_dir,
                    adapter_dir,
                    options: *options,
                    prefix_budget_bytes: self.settings.prefix_cache_bytes,
                })
                .await
                .map_err(load_error)?,
            ),
        };
        info!(model = %job.model_url, adapter = %job.adapter_url, "model loaded");
        *slot = Some((wanted, engine.clone()));
        Ok(engine)
    }

    /// Scores the shard on `scorer`, publishing ShardProgress as its batches finish.
    async fn score_on<S: Scorer>(
        &self,
        scorer: &S,
        job: &ScoringJob,
        alerts: &[Alert],
        policy: &str,
    ) -> Result<(Vec<ScoreResult>, u64), ScoringError> {
        let settings = ShardSettings {
            batch_size: self.settings.batch_size,
            tau: job.tau,
            rationale_tokens: job.rationale.then_some(aml_scoring::RATIONALE_TOKENS),
        };
        let (progress, mut watched) = watch::channel(ShardProgress::default());
        let scoring = score_shard(scorer, policy, alerts, &settings, &progress);
        let reporting = async {
            loop {
                let now = *watched.borrow_and_update();
                self.publish_progress(job, alerts.len(), now).await;
                tokio::time::sleep(self.settings.progress_interval).await;
                if watched.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let results = tokio::select! {
            results = scoring => results?,
            () = reporting => unreachable!("reporting runs until scoring ends"),
        };
        Ok((results, scorer.prefix_encodes().await?))
    }

    async fn publish_progress(&self, job: &ScoringJob, alerts: usize, now: ShardProgress) {
        let event = aml_proto::v1::ShardProgress {
            batch_id: job.batch_id.clone(),
            shard: job.shard,
            worker_id: self.settings.worker_id.clone(),
            alerts: alerts as u64,
            scored: now.scored,
            rationales: now.rationales,
        };
        if let Err(error) = self
            .publisher
            .publish(&subjects::shard_progress(&job.batch_id), &event, None)
            .await
        {
            warn!(batch = %job.batch_id, shard = job.shard, %error, "shard progress not published");
        }
    }

    async fn results_of(
        &self,
        job: &ScoringJob,
        alerts: &[Alert],
        engine: Engine,
        policy: &str,
    ) -> Result<(Vec<ScoreResult>, u64, f64), HandlerError> {
        let start = Instant::now();
        let (results, prefix_encodes) = match &engine {
            Engine::Local(handle) => self.score_on(handle, job, alerts, policy).await,
            Engine::Remote(scorer) => self.score_on(scorer.as_ref(), job, alerts, policy).await,
        }
        .map_err(handler_error)?;
        Ok((results, prefix_encodes, start.elapsed().as_secs_f64()))
    }
}

/// Reads a shard's alerts from its object: as many as the job says, or an error (a shard
/// cut short at an alert's end would otherwise decode, and its last alerts go unscored).
async fn read_shard(
    storage: &Storage,
    key: &str,
    expected: u32,
) -> Result<Vec<Alert>, HandlerError> {
    let bytes = storage.get(key).await.map_err(HandlerError::transient)?;
    shard_alerts(key, bytes, expected)
}

fn shard_alerts(key: &str, bytes: Bytes, expected: u32) -> Result<Vec<Alert>, HandlerError> {
    let alerts =
        decode_shard(bytes).map_err(|error| HandlerError::invalid(format!("{key}: {error}")))?;
    if alerts.len() != expected as usize {
        return Err(HandlerError::invalid(format!(
            "{key}: {} alerts, but the job names {expected}",
            alerts.len()
        )));
    }
    Ok(alerts)
}

impl Handler<ScoringJob> for ScoreHandler {
    async fn handle(&self, delivery: Delivery<ScoringJob>) -> Result<(), HandlerError> {
        let job = delivery.message;
        let engine = self.engine(&job).await?;
        let prefix_key = self.key(&job.prefix_url, "prefix")?;
        let policy = self
            .storage
            .get(prefix_key)
            .await
            .map_err(HandlerError::transient)?;
        let policy = String::from_utf8(policy.to_vec())
            .map_err(|_| HandlerError::invalid(format!("{prefix_key} is not UTF-8")))?;
        let shard_key = self.key(&job.shard_url, "shard")?;
        let alerts = read_shard(&self.storage, shard_key, job.alert_count).await?;
        let (results, prefix_encodes, model_seconds) =
            self.results_of(&job, &alerts, engine, &policy).await?;
        let results_key = self.key(&job.results_url, "results")?;
        put_results(&self.storage, results_key, &results)
            .await
            .map_err(HandlerError::transient)?;
        let completed = ShardCompleted {
            batch_id: job.batch_id.clone(),
            shard: job.shard,
            worker_id: self.settings.worker_id.clone(),
            scored: results.len() as u64,
            escalated: results.iter().filter(|result| result.escalated).count() as u64,
            results_url: job.results_url.clone(),
            gpu_seconds: model_seconds,
            prefix_encodes,
            score_histogram: aml_core::cascade::score_histogram(
                results.iter().map(|result| result.score),
            ),
            answer_mass_sum: results.iter().map(|result| result.answer_mass).sum(),
        };
        self.publisher
            .publish(
                &subjects::shard_completed(&job.batch_id),
                &completed,
                Some(&format!("{}.{}", job.batch_id, job.shard)),
            )
            .await
            .map_err(HandlerError::transient)?;
        let counters = &self.counters;
        counters
            .scored
            .fetch_add(completed.scored, Ordering::Relaxed);
        counters
            .escalated
            .fetch_add(completed.escalated, Ordering::Relaxed);
        counters
            .model_micros
            .fetch_add((model_seconds * 1e6) as u64, Ordering::Relaxed);
        info!(batch = %job.batch_id, shard = job.shard, scored = results.len(), "shard scored");
        Ok(())
    }

    fn metrics(&self) -> String {
        let counters = &self.counters;
        let label = format!("{{worker=\"{}\"}}", self.settings.worker_id);
        let mut text = String::new();
        for (name, help, value) in [
            (
                "aml_worker_alerts_scored_total",
                "Alerts scored and written.",
                counters.scored.load(Ordering::Relaxed) as f64,
            ),
            (
                "aml_worker_alerts_escalated_total",
                "Alerts escalated (score >= tau).",
                counters.escalated.load(Ordering::Relaxed) as f64,
            ),
            (
                "aml_worker_model_seconds_total",
                "Seconds spent in forward passes (or the OpenAI-compatible server).",
                counters.model_micros.load(Ordering::Relaxed) as f64 / 1e6,
            ),
        ] {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{label} {value}\n"
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use aml_batch::encode_shard;
    use prost::Message;

    use super::*;

    #[test]
    fn a_shard_holds_as_many_alerts_as_its_job_names() {
        let alerts: Vec<Vec<u8>> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                Alert {
                    alert_id: (*id).to_owned(),
                    ..Default::default()
                }
                .encode_to_vec()
            })
            .collect();
        let whole = encode_shard(&alerts);
        assert_eq!(shard_alerts("s", whole.clone(), 3).expect("whole").len(), 3);
        let cut_at_an_alert = encode_shard(&alerts[..2]);
        let error = shard_alerts("s", cut_at_an_alert, 3).expect_err("short");
        assert!(
            error.to_string().contains("2 alerts, but the job names 3"),
            "{error}"
        );
    }
}
