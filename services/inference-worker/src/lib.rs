//! The inference worker's handler. For each ScoringJob: load the model once (base + adapter,
//! cached by URL), encode the job's shared prefix once per (model, prefix), score the shard's
//! alerts in batches, escalate those with P(match) + P(edge) >= tau (with a rationale when
//! asked), write the results under the bank's keys, then announce ShardCompleted. The runner
//! acks only after that, so a worker killed mid-shard leaves the job to be redelivered, and a
//! redelivered shard overwrites its own results object.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aml_batch::{decode_shard, put_results};
use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::Label;
use aml_model::LoadOptions;
use aml_proto::v1::{Alert, ScoreResult, ScoringJob, ShardCompleted};
use aml_scoring::{LabelProbabilities, RemoteEndpoint, RemoteScorer, ScoringEngine};
use aml_storage::Storage;
use tokio::sync::Mutex;
use tracing::info;

/// Longest rationale generated for an escalated alert, in tokens.
const RATIONALE_TOKENS: i64 = 96;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Its name in ShardCompleted.
    pub worker_id: String,
    /// Alerts per forward pass.
    pub batch_size: usize,
    /// Where models named by object-store URLs are downloaded.
    pub model_cache: PathBuf,
    /// Where the forward passes run.
    pub backend: Backend,
    /// Bytes the local engine's encoded prefixes may take together.
    pub prefix_cache_bytes: i64,
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
    Local(SharedEngine),
    Remote(Arc<Mutex<RemoteScorer>>),
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

/// The engine is not `Sync` (tensors are not); one blocking task at a time uses it.
type SharedEngine = Arc<std::sync::Mutex<ScoringEngine>>;

fn lock(engine: &SharedEngine) -> std::sync::MutexGuard<'_, ScoringEngine> {
    engine
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The result of one alert the model scored (it passed the prescreen, whose score is kept
/// beside the model's).
pub fn score_result(alert: &Alert, probabilities: &LabelProbabilities, tau: f64) -> ScoreResult {
    let label = match probabilities.label() {
        Label::Match => aml_proto::v1::Label::Match,
        Label::NoMatch => aml_proto::v1::Label::NoMatch,
        Label::Edge => aml_proto::v1::Label::Edge,
    };
    ScoreResult {
        alert_id: alert.alert_id.clone(),
        bank: alert.bank.clone(),
        p_match: probabilities.p_match,
        p_no_match: probabilities.p_no_match,
        p_edge: probabilities.p_edge,
        score: probabilities.score(),
        escalated: probabilities.score() >= tau,
        label: label as i32,
        rationale: String::new(),
        cleared_reason: String::new(),
        prescreen_score: aml_prescreen::prescreen_alert(alert).score,
        answer_mass: probabilities.answer_mass,
    }
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
        let engine = match &self.settings.backend {
            Backend::Remote(endpoint) => {
                let scorer = RemoteScorer::new(&model_dir, endpoint.clone()).map_err(|error| {
                    HandlerError::invalid(format!("cannot load the tokenizer: {error}"))
                })?;
                Engine::Remote(Arc::new(Mutex::new(scorer)))
            }
            Backend::Local(options) => {
                let options = *options;
                let adapter_dir = if job.adapter_url.is_empty() {
                    None
                } else {
                    Some(self.local_dir(&job.adapter_url).await?)
                };
                let budget = self.settings.prefix_cache_bytes;
                let engine = tokio::task::spawn_blocking(move || {
                    ScoringEngine::load(&model_dir, adapter_dir.as_deref(), options)
                        .map(|engine| engine.with_prefix_budget(budget))
                })
                .await
                .map_err(HandlerError::transient)?
                .map_err(|error| {
                    HandlerError::invalid(format!("cannot load the model: {error}"))
                })?;
                Engine::Local(Arc::new(std::sync::Mutex::new(engine)))
            }
        };
        info!(model = %job.model_url, adapter = %job.adapter_url, "model loaded");
        *slot = Some((wanted, engine.clone()));
        Ok(engine)
    }

    async fn results_of(
        &self,
        job: &ScoringJob,
        alerts: Vec<Alert>,
        engine: Engine,
        policy: String,
    ) -> Result<(Vec<ScoreResult>, u64, f64), HandlerError> {
        let batch_size = self.settings.batch_size;
        let (tau, rationale) = (job.tau, job.rationale);
        let start = Instant::now();
        let (results, prefix_encodes) = match engine {
            Engine::Local(engine) => tokio::task::spawn_blocking(move || {
                let mut engine = lock(&engine);
                let probabilities = engine.score(&policy, &alerts, batch_size)?;
                let mut results = Vec::with_capacity(alerts.len());
                for (alert, p) in alerts.iter().zip(&probabilities) {
                    let mut result = score_result(alert, p, tau);
                    if rationale && result.escalated {
                        result.rationale = engine.rationale(&policy, alert, RATIONALE_TOKENS)?;
                    }
                    results.push(result);
                }
                Ok::<_, aml_scoring::ScoringError>((results, engine.prefix_encodes()))
            })
            .await
            .map_err(HandlerError::transient)?,
            Engine::Remote(scorer) => {
                let mut scorer = scorer.lock().await;
                remote_results(&mut scorer, &policy, &alerts, batch_size, tau, rationale)
                    .await
                    .map(|results| (results, scorer.prefix_encodes()))
            }
        }
        .map_err(|error| match error {
            // The same prompt would be too long on every delivery.
            aml_scoring::ScoringError::TooLong { .. } => HandlerError::invalid(error),
            other => HandlerError::transient(other),
        })?;
        Ok((results, prefix_encodes, start.elapsed().as_secs_f64()))
    }
}

/// Scores `alerts` on the OpenAI-compatible server, with rationales for escalated ones when asked.
async fn remote_results(
    scorer: &mut RemoteScorer,
    policy: &str,
    alerts: &[Alert],
    batch_size: usize,
    tau: f64,
    rationale: bool,
) -> Result<Vec<ScoreResult>, aml_scoring::ScoringError> {
    let probabilities = scorer.score(policy, alerts, batch_size).await?;
    let mut results = Vec::with_capacity(alerts.len());
    for (alert, p) in alerts.iter().zip(&probabilities) {
        let mut result = score_result(alert, p, tau);
        if rationale && result.escalated {
            result.rationale = scorer.rationale(policy, alert, RATIONALE_TOKENS).await?;
        }
        results.push(result);
    }
    Ok(results)
}

/// Reads a shard's alerts from its object.
async fn read_shard(storage: &Storage, key: &str) -> Result<Vec<Alert>, HandlerError> {
    let bytes = storage.get(key).await.map_err(HandlerError::transient)?;
    decode_shard(bytes).map_err(|error| HandlerError::invalid(format!("{key}: {error}")))
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
        let alerts = read_shard(&self.storage, self.key(&job.shard_url, "shard")?).await?;
        let (results, prefix_encodes, model_seconds) =
            self.results_of(&job, alerts, engine, policy).await?;
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
