//! The trainer's handler: a TrainRequest runs the curriculum on a blocking thread (the runner
//! keeps the message alive with progress acks) and each finished phase is announced with
//! PhaseCompleted (`Nats-Msg-Id` = `<run>/<phase>`). Checkpoints live in the run's output
//! folder, so a redelivered request after a crash resumes from the last one.

use std::path::PathBuf;

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::Difficulty;
use aml_model::{CausalLm, LoadOptions, TextTokenizer};
use aml_proto::v1::{self, PhaseCompleted, TrainRequest};
use aml_trainer::{PhaseSummary, TrainError, TrainerConfig, train_curriculum_observed};
use tracing::{info, warn};

/// Handles TrainRequests; local folders (`file://` URLs or paths) for models, data and outputs.
pub struct TrainHandler {
    publisher: Publisher,
}

impl TrainHandler {
    /// A handler publishing PhaseCompleted through `publisher`.
    pub fn new(publisher: Publisher) -> Self {
        TrainHandler { publisher }
    }
}

fn local(url: &str, field: &str) -> Result<PathBuf, HandlerError> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(PathBuf::from(path));
    }
    if url.contains("://") {
        return Err(HandlerError::invalid(format!(
            "{field} {url}: the trainer reads and writes local folders (file://) only"
        )));
    }
    Ok(PathBuf::from(url))
}

fn phase_event(
    run_id: &str,
    out: &std::path::Path,
    summary: &PhaseSummary,
    gate_passed: bool,
) -> PhaseCompleted {
    let phase: Difficulty = summary.phase.parse().unwrap_or(Difficulty::Easy);
    let folder = out.join(&summary.phase);
    PhaseCompleted {
        run_id: run_id.to_owned(),
        phase: v1::Difficulty::from(phase) as i32,
        adapter_url: format!("file://{}", folder.join("adapter").display()),
        train_loss: summary.last_epoch_loss,
        validation_loss: summary.best_eval_loss,
        epochs: summary.epochs as u32,
        steps: 0,
        gate_passed,
        judge_report_url: format!("file://{}", folder.join("eval_report.json").display()),
    }
}

impl Handler<TrainRequest> for TrainHandler {
    async fn handle(&self, delivery: Delivery<TrainRequest>) -> Result<(), HandlerError> {
        let request = delivery.message;
        let base = local(&request.base_model, "base_model")?;
        let data = local(&request.dataset_url, "dataset_url")?;
        let out = if request.output_url.is_empty() {
            PathBuf::from("models").join(&request.run_id)
        } else {
            local(&request.output_url, "output_url")?
        };
        let config: TrainerConfig = if request.config_json.trim().is_empty() {
            TrainerConfig::default()
        } else {
            serde_json::from_str(&request.config_json)
                .map_err(|error| HandlerError::invalid(format!("config_json: {error}")))?
        };
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<PhaseSummary>();
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
                &mut |summary| {
                    let _ = sender.send(summary.clone());
                },
            )?;
            Ok(())
        });
        while let Some(summary) = receiver.recv().await {
            let event = phase_event(&request.run_id, &out, &summary, true);
            let id = format!("{}/{}", request.run_id, summary.phase);
            self.publisher
                .publish(subjects::PHASE_COMPLETED, &event, Some(&id))
                .await
                .map_err(HandlerError::transient)?;
            info!(run = %request.run_id, phase = %summary.phase, "phase completed");
        }
        match training.await.map_err(HandlerError::transient)? {
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
                let event = phase_event(&request.run_id, &out, &summary, false);
                let id = format!("{}/{phase}", request.run_id);
                self.publisher
                    .publish(subjects::PHASE_COMPLETED, &event, Some(&id))
                    .await
                    .map_err(HandlerError::transient)?;
                Ok(())
            }
            Err(error @ (TrainError::Schema(_) | TrainError::EmptyFile(_))) => {
                Err(HandlerError::invalid(error))
            }
            Err(error) => Err(HandlerError::transient(error)),
        }
    }
}
