//! The trainer's handler: a TrainRequest runs the curriculum on a blocking thread (the runner
//! keeps the message alive with progress acks) and each finished phase is announced with
//! PhaseCompleted (`Nats-Msg-Id` = `<run>/<phase>`). Checkpoints live in the run's output
//! folder, so a redelivered request after a crash resumes from the last one. The base model
//! is a local folder, an object-store URL under the service's storage or a Hub id (downloaded
//! once, `HF_TOKEN` for gated models); data and outputs are local folders or object-store
//! URLs, staged locally, the output uploaded after each phase (checkpoints included) before
//! its PhaseCompleted is sent. The TrainRequest's configuration chooses device, dtype, FP8
//! base, packing, merging and the Hub repository to push to, as `aml train`'s flags do.

use std::path::{Path, PathBuf};

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::Difficulty;
use aml_hub::{HubClient, HubError};
use aml_proto::v1::{self, PhaseCompleted, TrainRequest};
use aml_storage::{StagedFolder, Storage};
use aml_trainer::{Observer, PhaseSummary, RunPaths, TrainError, TrainerConfig, TrainingJob};
use tracing::{info, warn};

/// Handles TrainRequests.
pub struct TrainHandler {
    publisher: Publisher,
    storage: Storage,
    staging: PathBuf,
    hub: HubClient,
    judge_credentials: aml_judge::Credentials,
}

impl TrainHandler {
    /// A handler publishing PhaseCompleted through `publisher`, staging object-store folders
    /// of `storage` (and Hub snapshots) under `staging`, reaching the Hub through `hub`.
    pub fn new(
        publisher: Publisher,
        storage: Storage,
        staging: PathBuf,
        hub: HubClient,
        judge_credentials: aml_judge::Credentials,
    ) -> Self {
        TrainHandler {
            publisher,
            storage,
            staging,
            hub,
            judge_credentials,
        }
    }

    fn folder(&self, url: &str, field: &str) -> Result<StagedFolder, HandlerError> {
        self.storage
            .folder(url, &self.staging)
            .map_err(|error| HandlerError::invalid(format!("{field}: {error}")))
    }

    /// The local folder of an input that is never rewritten (a dataset).
    async fn input(&self, url: &str, field: &str) -> Result<PathBuf, HandlerError> {
        let folder = self.folder(url, field)?;
        match folder.fetch_input().await {
            Ok(dir) => Ok(dir.to_owned()),
            Err(error @ aml_storage::StorageError::NotFound { .. }) => {
                Err(HandlerError::invalid(format!("{field} {url}: {error}")))
            }
            Err(error) => Err(HandlerError::transient(error)),
        }
    }

    /// The local copy of a file at `url` (a path, or an object-store URL downloaded into the
    /// staging folder).
    async fn input_file(&self, url: &str) -> Result<PathBuf, HandlerError> {
        let Some(key) = self.storage.key_of(url) else {
            return Ok(PathBuf::from(url.strip_prefix("file://").unwrap_or(url)));
        };
        let bytes = self.storage.get(key).await.map_err(|error| match error {
            aml_storage::StorageError::NotFound { .. } => {
                HandlerError::invalid(format!("calibration_file {url}: {error}"))
            }
            other => HandlerError::transient(other),
        })?;
        let local = self.staging.join(key);
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(HandlerError::transient)?;
        }
        std::fs::write(&local, &bytes).map_err(HandlerError::transient)?;
        Ok(local)
    }

    /// The base model's folder: an object-store URL staged once, a local folder, or a Hub
    /// id downloaded once into the staging folder's `hub-cache`.
    async fn base_model(&self, name: &str) -> Result<PathBuf, HandlerError> {
        let folder = self.folder(name, "base_model")?;
        if folder.is_stored() {
            return self.input(name, "base_model").await;
        }
        let cache = self.staging.join("hub-cache");
        let local_or_hub_id = folder.dir().to_string_lossy();
        self.hub
            .model_folder(&local_or_hub_id, "main", &cache, || {
                info!(model = name, "downloading the base model from the Hub")
            })
            .await
            .map_err(|error| match error {
                HubError::Http { .. } | HubError::Io { .. } => HandlerError::transient(error),
                refused => HandlerError::invalid(format!("base_model {name}: {refused}")),
            })
    }

    /// Uploads the output as the finished phase left it, then publishes its PhaseCompleted
    /// (`Nats-Msg-Id` `<run>/<phase>`: a resumed run tells it again, at least once in all,
    /// and a repeat within the stream's duplicate window is dropped).
    async fn announce(
        &self,
        run_id: &str,
        output: &StagedFolder,
        summary: &PhaseSummary,
    ) -> Result<(), HandlerError> {
        output.upload().await.map_err(HandlerError::transient)?;
        self.publish_phase(run_id, output, summary, true).await?;
        info!(run = %run_id, phase = %summary.phase, steps = summary.steps, "phase completed");
        Ok(())
    }

    async fn publish_phase(
        &self,
        run_id: &str,
        output: &StagedFolder,
        summary: &PhaseSummary,
        gate_passed: bool,
    ) -> Result<(), HandlerError> {
        // A distilling run's teacher phases are `teacher/<tier>`.
        let (stage, tier) = summary
            .phase
            .rsplit_once('/')
            .unwrap_or(("", &summary.phase));
        let phase: Difficulty = tier.parse().unwrap_or(Difficulty::Easy);
        let event = PhaseCompleted {
            run_id: run_id.to_owned(),
            phase: v1::Difficulty::from(phase) as i32,
            adapter_url: output.url_of(&format!("{}/adapter", summary.phase)),
            train_loss: summary.last_epoch_loss,
            validation_loss: summary.best_eval_loss,
            epochs: summary.epochs as u32,
            steps: summary.steps.max(0) as u64,
            gate_passed,
            judge_report_url: output.url_of(&format!("{}/eval_report.json", summary.phase)),
            stage: stage.to_owned(),
        };
        let id = format!("{run_id}/{}", summary.phase);
        self.publisher
            .publish(&subjects::phase_completed(run_id), &event, Some(&id))
            .await
            .map_err(HandlerError::transient)?;
        Ok(())
    }

    /// Pushes the finished output folder to the configured Hub repository.
    async fn push(&self, repo: &str, folder: &Path, base: &str) -> Result<(), HandlerError> {
        let commit = self
            .hub
            .push_folder(
                repo,
                folder,
                &format!("aml trainer: curriculum LoRA on {base}"),
            )
            .await
            .map_err(|error| match error {
                HubError::Http { .. } | HubError::Io { .. } => HandlerError::transient(error),
                refused => HandlerError::invalid(format!("hub_model_id {repo}: {refused}")),
            })?;
        info!(repo, commit, "pushed to the Hub");
        Ok(())
    }
}

/// A finished phase on its way from the training thread to the handler, with the answer the
/// thread waits for: sent once the phase is uploaded and announced, dropped on failure.
type PhaseHandOff = (PhaseSummary, tokio::sync::oneshot::Sender<()>);

/// Hands each finished phase to the handler and waits until it is uploaded and announced, so
/// the upload never races the next checkpoint's writes and rotation; stops the run at the
/// next step once the service is shutting down.
struct PhaseSender {
    phases: tokio::sync::mpsc::UnboundedSender<PhaseHandOff>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Observer for PhaseSender {
    fn phase(&mut self, summary: &PhaseSummary) -> Result<(), TrainError> {
        let stopped = |reason: &str| TrainError::Stopped {
            phase: summary.phase.clone(),
            reason: reason.to_owned(),
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        self.phases
            .send((summary.clone(), done))
            .map_err(|_| stopped("the handler is gone"))?;
        answer
            .blocking_recv()
            .map_err(|_| stopped("its upload or announcement failed"))
    }

    fn stop_requested(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// Whether a failed run would fail the same way again (the request goes to the DLQ).
fn is_bad_request(error: &TrainError) -> bool {
    matches!(
        error,
        TrainError::Schema(_)
            | TrainError::EmptyFile(_)
            | TrainError::NoRoomForAnswer { .. }
            | TrainError::WontFit { .. }
            | TrainError::Model(aml_model::ModelError::Device(_))
            | TrainError::Calibration(_)
    )
}

impl Handler<TrainRequest> for TrainHandler {
    async fn handle(&self, delivery: Delivery<TrainRequest>) -> Result<(), HandlerError> {
        let request = delivery.message;
        let shutdown = delivery.shutdown;
        aml_bus::topology::require_id("run_id", &request.run_id)?;
        let mut config = match &request.config {
            Some(message) => TrainerConfig::from_message(message).map_err(HandlerError::invalid)?,
            None => TrainerConfig::default(),
        };
        config.judge_credentials = self.judge_credentials.clone();
        if let Some(file) = config.calibration_file.take() {
            config.calibration_file = Some(self.input_file(&file.to_string_lossy()).await?);
        }
        let base_dir = self.base_model(&request.base_model).await?;
        let data_dir = self.input(&request.dataset_url, "dataset_url").await?;
        let output = if request.output_url.is_empty() {
            StagedFolder::Local(PathBuf::from("models").join(&request.run_id))
        } else {
            self.folder(&request.output_url, "output_url")?
        };
        output
            .fetch_output()
            .await
            .map_err(HandlerError::transient)?;
        let push_to = config.hub_model_id.clone();
        let job = TrainingJob {
            paths: RunPaths {
                base_dir,
                base_name: request.base_model.clone(),
                data_dir,
                out: output.dir().to_owned(),
            },
            config,
        };
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<PhaseHandOff>();
        let training = tokio::task::spawn_blocking(move || -> Result<(), TrainError> {
            let out = job.paths.out.clone();
            let plan = job.plan()?;
            for line in plan.summary().lines() {
                info!("{line}");
            }
            std::fs::create_dir_all(&out).map_err(|source| TrainError::Io {
                path: out.clone(),
                source,
            })?;
            plan.train(&mut PhaseSender {
                phases: sender,
                shutdown,
            })?;
            Ok(())
        });
        let mut failure = None;
        // The scoring model's hard phase ends the run: it is announced once the whole run
        // (final adapter, calibration, report) is uploaded, so that its PhaseCompleted means
        // the run's outputs can be used.
        let mut last_phase = None;
        while let Some((summary, done)) = receiver.recv().await {
            if summary.phase == Difficulty::Hard.as_str() {
                last_phase = Some(summary);
                let _ = done.send(());
                continue;
            }
            match self.announce(&request.run_id, &output, &summary).await {
                Ok(()) => {
                    let _ = done.send(());
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        drop(receiver);
        let outcome = training.await.map_err(HandlerError::transient)?;
        if let Some(error) = failure {
            return Err(error);
        }
        output.upload().await.map_err(HandlerError::transient)?;
        match outcome {
            Ok(()) => {
                if let Some(repo) = push_to {
                    self.push(&repo, output.dir(), &request.base_model).await?;
                }
                match last_phase {
                    Some(summary) => self.announce(&request.run_id, &output, &summary).await,
                    None => Ok(()),
                }
            }
            Err(TrainError::GateFailed {
                phase,
                metric,
                value,
                threshold,
                report,
            }) => {
                warn!(run = %request.run_id, %phase, metric, value, threshold, report = %report.display(), "gate failed; the curriculum stops");
                let summary = PhaseSummary {
                    phase,
                    epochs: 0,
                    steps: 0,
                    evaluations: 0,
                    early_stopped: false,
                    first_epoch_loss: f64::NAN,
                    last_epoch_loss: f64::NAN,
                    best_eval_loss: f64::NAN,
                    adapter_step: 0,
                    padding_share: 0.0,
                    learning_rate: 0.0,
                    tokens: 0,
                    attention_pairs: 0,
                    train_seconds: 0.0,
                };
                self.publish_phase(&request.run_id, &output, &summary, false)
                    .await
            }
            Err(error) if is_bad_request(&error) => Err(HandlerError::invalid(error)),
            Err(error) => Err(HandlerError::transient(error)),
        }
    }
}
