//! The trainer's handler: a TrainRequest runs the curriculum on a blocking thread (the runner
//! keeps the message alive with progress acks) and each finished phase is announced with
//! PhaseCompleted (`Nats-Msg-Id` = `<run>/<phase>`). Checkpoints live in the run's output
//! folder, so a redelivered request after a crash resumes from the last one. Models, data
//! and outputs are local folders (`file://` or paths) or object-store URLs under the
//! service's storage: those are staged in a local folder, the output uploaded after each
//! phase (checkpoints included) before its PhaseCompleted is sent.

use std::path::PathBuf;

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::Difficulty;
use aml_model::{CausalLm, LoadOptions, TextTokenizer};
use aml_proto::v1::{self, PhaseCompleted, TrainRequest};
use aml_storage::Storage;
use aml_trainer::{Observer, PhaseSummary, TrainError, TrainerConfig, train_curriculum_observed};
use tracing::{info, warn};

/// Handles TrainRequests.
pub struct TrainHandler {
    publisher: Publisher,
    storage: Storage,
    staging: PathBuf,
}

impl TrainHandler {
    /// A handler publishing PhaseCompleted through `publisher`, staging object-store folders
    /// of `storage` under `staging`.
    pub fn new(publisher: Publisher, storage: Storage, staging: PathBuf) -> Self {
        TrainHandler {
            publisher,
            storage,
            staging,
        }
    }

    /// Where the folder at `url` is: a local path, or keys of the storage staged locally.
    fn place(&self, url: &str, field: &str) -> Result<Place, HandlerError> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Place::Local(PathBuf::from(path)));
        }
        let Some(key) = self.storage.key_of(url) else {
            if url.contains("://") {
                return Err(HandlerError::invalid(format!(
                    "{field} {url} is neither a local folder nor under {}",
                    self.storage.url()
                )));
            }
            return Ok(Place::Local(PathBuf::from(url)));
        };
        let key = key.trim_matches('/').to_owned();
        Ok(Place::Stored {
            dir: self.staging.join(&key),
            key,
        })
    }

    /// The local folder of an input `place` (a model or dataset, never rewritten), its
    /// objects downloaded once when it is stored.
    async fn fetch_input(&self, place: &Place, url: &str) -> Result<PathBuf, HandlerError> {
        match place {
            Place::Local(path) => Ok(path.clone()),
            Place::Stored { key, dir } => {
                let found = self
                    .storage
                    .get_dir_once(key, dir)
                    .await
                    .map_err(HandlerError::transient)?;
                if !found {
                    return Err(HandlerError::invalid(format!("no objects under {url}")));
                }
                Ok(dir.clone())
            }
        }
    }

    /// The local folder of the output `place`, with what a stored one already holds
    /// (checkpoints to resume from) downloaded first.
    async fn fetch_output(&self, place: &Place) -> Result<PathBuf, HandlerError> {
        match place {
            Place::Local(path) => Ok(path.clone()),
            Place::Stored { key, dir } => {
                self.storage
                    .get_dir(key, dir)
                    .await
                    .map_err(HandlerError::transient)?;
                Ok(dir.clone())
            }
        }
    }

    /// Makes a stored output's objects a copy of its staged folder (rotated-away checkpoints
    /// deleted); a local one needs nothing.
    async fn upload(&self, place: &Place) -> Result<(), HandlerError> {
        if let Place::Stored { key, dir } = place {
            self.storage
                .sync_dir(dir, key)
                .await
                .map_err(HandlerError::transient)?;
        }
        Ok(())
    }

    /// The URL of `relative` inside the output `place`.
    fn url_in(&self, place: &Place, relative: &str) -> String {
        match place {
            Place::Local(path) => format!("file://{}", path.join(relative).display()),
            Place::Stored { key, .. } => self.storage.url_of(&format!("{key}/{relative}")),
        }
    }

    /// Uploads the output as the finished phase left it, then publishes its PhaseCompleted
    /// (`Nats-Msg-Id` `<run>/<phase>`: a resumed run tells it again, at least once in all,
    /// and a repeat within the stream's duplicate window is dropped).
    async fn announce(
        &self,
        run_id: &str,
        output: &Place,
        summary: &PhaseSummary,
    ) -> Result<(), HandlerError> {
        self.upload(output).await?;
        let event = self.phase_event(run_id, output, summary, true);
        let id = format!("{run_id}/{}", summary.phase);
        self.publisher
            .publish(subjects::PHASE_COMPLETED, &event, Some(&id))
            .await
            .map_err(HandlerError::transient)?;
        info!(run = %run_id, phase = %summary.phase, "phase completed");
        Ok(())
    }

    fn phase_event(
        &self,
        run_id: &str,
        out: &Place,
        summary: &PhaseSummary,
        gate_passed: bool,
    ) -> PhaseCompleted {
        let phase: Difficulty = summary.phase.parse().unwrap_or(Difficulty::Easy);
        PhaseCompleted {
            run_id: run_id.to_owned(),
            phase: v1::Difficulty::from(phase) as i32,
            adapter_url: self.url_in(out, &format!("{}/adapter", summary.phase)),
            train_loss: summary.last_epoch_loss,
            validation_loss: summary.best_eval_loss,
            epochs: summary.epochs as u32,
            steps: 0,
            gate_passed,
            judge_report_url: self.url_in(out, &format!("{}/eval_report.json", summary.phase)),
        }
    }
}

/// A finished phase on its way from the training thread to the handler, with the answer the
/// thread waits for: sent once the phase is uploaded and announced, dropped on failure.
type PhaseHandOff = (PhaseSummary, tokio::sync::oneshot::Sender<()>);

/// Hands each finished phase to the handler and waits until it is uploaded and announced, so
/// the upload never races the next checkpoint's writes and rotation.
struct PhaseSender(tokio::sync::mpsc::UnboundedSender<PhaseHandOff>);

impl Observer for PhaseSender {
    fn phase(&mut self, summary: &PhaseSummary) -> Result<(), TrainError> {
        let stopped = |reason: &str| TrainError::Stopped {
            phase: summary.phase.clone(),
            reason: reason.to_owned(),
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        self.0
            .send((summary.clone(), done))
            .map_err(|_| stopped("the handler is gone"))?;
        answer
            .blocking_recv()
            .map_err(|_| stopped("its upload or announcement failed"))
    }
}

/// A request's folder: local, or keys in object storage staged in a local folder.
enum Place {
    Local(PathBuf),
    Stored { key: String, dir: PathBuf },
}

impl Handler<TrainRequest> for TrainHandler {
    async fn handle(&self, delivery: Delivery<TrainRequest>) -> Result<(), HandlerError> {
        let request = delivery.message;
        let base = self
            .fetch_input(
                &self.place(&request.base_model, "base_model")?,
                &request.base_model,
            )
            .await?;
        let data = self
            .fetch_input(
                &self.place(&request.dataset_url, "dataset_url")?,
                &request.dataset_url,
            )
            .await?;
        let output = if request.output_url.is_empty() {
            Place::Local(PathBuf::from("models").join(&request.run_id))
        } else {
            self.place(&request.output_url, "output_url")?
        };
        let out = self.fetch_output(&output).await?;
        let config: TrainerConfig = if request.config_json.trim().is_empty() {
            TrainerConfig::default()
        } else {
            serde_json::from_str(&request.config_json)
                .map_err(|error| HandlerError::invalid(format!("config_json: {error}")))?
        };
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<PhaseHandOff>();
        let (run_out, run_base) = (out.clone(), base.display().to_string());
        let training = tokio::task::spawn_blocking(move || -> Result<(), TrainError> {
            std::fs::create_dir_all(&run_out).map_err(|source| TrainError::Io {
                path: run_out.clone(),
                source,
            })?;
            let tokenizer = TextTokenizer::load(&base)?;
            let mut model = CausalLm::load(&base, LoadOptions::cpu_f32())?;
            train_curriculum_observed(
                &mut model,
                &tokenizer,
                &data,
                &config,
                &run_base,
                &run_out,
                &mut PhaseSender(sender),
            )?;
            Ok(())
        });
        let mut failure = None;
        while let Some((summary, done)) = receiver.recv().await {
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
        self.upload(&output).await?;
        match outcome {
            Ok(()) => Ok(()),
            Err(TrainError::GateFailed {
                phase,
                metric,
                value,
                threshold,
                report,
            }) => {
                warn!(run = %request.run_id, %phase, metric, value, threshold, report = %report.display(), "gate failed; the curriculum stops");
                let summary = PhaseSummary {
                    phase: phase.clone(),
                    epochs: 0,
                    early_stopped: false,
                    first_epoch_loss: f64::NAN,
                    last_epoch_loss: f64::NAN,
                    best_eval_loss: f64::NAN,
                    padding_share: 0.0,
                    learning_rate: 0.0,
                };
                let event = self.phase_event(&request.run_id, &output, &summary, false);
                let id = format!("{}/{phase}", request.run_id);
                self.publisher
                    .publish(subjects::PHASE_COMPLETED, &event, Some(&id))
                    .await
                    .map_err(HandlerError::transient)?;
                Ok(())
            }
            Err(
                error @ (TrainError::Schema(_)
                | TrainError::EmptyFile(_)
                | TrainError::NoRoomForAnswer { .. }),
            ) => Err(HandlerError::invalid(error)),
            Err(error) => Err(HandlerError::transient(error)),
        }
    }
}
