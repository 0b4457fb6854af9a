//! The training loop: phases, epochs, optimiser steps, validation loss and early stopping.

use std::path::Path;

use aml_core::rng::SeededRng;
use aml_core::{Difficulty, SampleRecord};
use aml_model::training::{TrainBatch, loss_and_backward};
use aml_model::{CausalLm, Lora, LoraInit, TextTokenizer};
use serde::{Deserialize, Serialize};
use tch::Tensor;
use tracing::info;

use crate::batching::{buckets, collate, padding_share};
use crate::checkpoint::{self, Progress};
use crate::data::{Example, Target, encode, read_file, read_tier};
use crate::evaluation::judge_phase;
use crate::optim::{Optimizer, clip_gradients, cosine_with_warmup, zero_gradients};
use crate::{TrainError, TrainerConfig};
use aml_judge::AnyJudge;

/// One line of the training log, like transformers' `log_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Phase (tier) name.
    pub phase: String,
    /// Epoch within the phase, from 1.
    pub epoch: usize,
    /// Optimiser steps so far over the whole run.
    pub step: i64,
    /// Mean training loss over the step's micro-batches.
    pub loss: Option<f64>,
    /// Learning rate of the step.
    pub learning_rate: Option<f64>,
    /// Validation loss at the end of an epoch.
    pub eval_loss: Option<f64>,
}

/// How a phase went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// Phase (tier) name.
    pub phase: String,
    /// Epochs run.
    pub epochs: usize,
    /// Whether early stopping ended it.
    pub early_stopped: bool,
    /// Mean training loss of the first and last epoch.
    pub first_epoch_loss: f64,
    /// Mean training loss of the last epoch.
    pub last_epoch_loss: f64,
    /// Best validation loss.
    pub best_eval_loss: f64,
    /// Share of padding tokens in its batches.
    pub padding_share: f64,
    /// Learning rate of the phase.
    pub learning_rate: f64,
}

/// The state written as `trainer_state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Every step and evaluation.
    pub log_history: Vec<LogEntry>,
    /// One summary per phase run.
    pub phases: Vec<PhaseSummary>,
    /// Optimiser steps over the run.
    pub global_step: i64,
}

/// Stops a phase when the best validation loss improved by less than `min_improvement`
/// (relative) across the last `patience` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_improvement: f64,
    pub(crate) best_after_epoch: Vec<f64>,
}

impl EarlyStopping {
    /// A rule with its window and threshold.
    pub fn new(patience: usize, min_improvement: f64) -> Self {
        EarlyStopping {
            patience,
            min_improvement,
            best_after_epoch: Vec::new(),
        }
    }

    /// Records an epoch's validation loss; true when the phase should stop.
    pub fn should_stop(&mut self, eval_loss: f64) -> bool {
        let best = self
            .best_after_epoch
            .last()
            .map_or(eval_loss, |best| best.min(eval_loss));
        self.best_after_epoch.push(best);
        let epochs = self.best_after_epoch.len();
        if self.patience == 0 || epochs <= self.patience {
            return false;
        }
        let before = self.best_after_epoch[epochs - 1 - self.patience];
        (before - best) / before.abs().max(f64::MIN_POSITIVE) < self.min_improvement
    }

    /// The best validation loss so far.
    pub fn best(&self) -> f64 {
        self.best_after_epoch
            .last()
            .copied()
            .unwrap_or(f64::INFINITY)
    }
}

/// Encodes the samples of `file`; one whose prompt leaves no room for the answer is an
/// error naming the file and the sample.
fn encode_all(
    tokenizer: &TextTokenizer,
    file: &Path,
    samples: &[SampleRecord],
    target: Target,
    max_len: usize,
    system: Option<&str>,
) -> Result<Vec<Example>, TrainError> {
    let mut examples = Vec::with_capacity(samples.len());
    for (index, sample) in samples.iter().enumerate() {
        let example = encode(tokenizer, sample, target, max_len, system)?;
        if example.target_start >= example.ids.len() {
            return Err(TrainError::NoRoomForAnswer {
                file: file.to_owned(),
                sample: sample
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("#{}", index + 1)),
                prompt_tokens: example.target_start,
                max_seq_len: max_len,
            });
        }
        examples.push(example);
    }
    Ok(examples)
}

fn evaluation_loss(
    model: &CausalLm,
    examples: &[Example],
    batch_size: usize,
    pad_id: i64,
) -> Result<f64, TrainError> {
    let _no_grad = tch::no_grad_guard();
    let mut total = 0.0;
    let batches = buckets(examples, batch_size);
    for batch in &batches {
        let TrainBatch { ids, labels } = collate(examples, batch, pad_id);
        let logits = model.forward(&ids)?;
        let (rows, seq, vocab) = logits.size3()?;
        let loss = logits
            .narrow(1, 0, seq - 1)
            .reshape([rows * (seq - 1), vocab])
            .cross_entropy_loss::<Tensor>(
                &labels.narrow(1, 1, seq - 1).reshape([rows * (seq - 1)]),
                None,
                tch::Reduction::Mean,
                aml_model::training::IGNORE_INDEX,
                0.0,
            );
        total += loss.double_value(&[]);
    }
    Ok(total / batches.len().max(1) as f64)
}

/// Trains easy -> medium -> hard from `data_dir` (tier files and `validation.jsonl`), saving
/// each phase's adapter under `out/<phase>/adapter` and the final one under `out/adapter`.
/// Every file is read and checked before the first step.
pub fn train_curriculum(
    model: &mut CausalLm,
    tokenizer: &TextTokenizer,
    data_dir: &Path,
    config: &TrainerConfig,
    base_model: &str,
    out: &Path,
) -> Result<TrainerState, TrainError> {
    train_curriculum_observed(model, tokenizer, data_dir, config, base_model, out, &mut ())
}

/// What a caller sees of a run as it goes (progress bars, uploads, events).
pub trait Observer {
    /// An optimiser step finished.
    fn step(&mut self, _progress: &StepProgress) {}
    /// A phase ended: its adapter, judge report and checkpoint are written and the gate
    /// passed. The run waits for it, so the output folder stands still meanwhile; an error
    /// stops the run. A resumed run tells again of the phase its checkpoint ended, which a
    /// crash may have kept from being told.
    fn phase(&mut self, _summary: &PhaseSummary) -> Result<(), TrainError> {
        Ok(())
    }
}

/// Observes nothing.
impl Observer for () {}

/// Where one optimiser step sits in the run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepProgress {
    /// `easy`, `medium` or `hard`.
    pub phase: String,
    /// The epoch, from 1.
    pub epoch: usize,
    /// Epochs of the phase.
    pub epochs: usize,
    /// Micro-batches done in this epoch.
    pub batches_done: usize,
    /// Micro-batches in an epoch.
    pub batches: usize,
    /// Mean loss of the step's micro-batches.
    pub loss: f64,
    /// The learning rate the step used.
    pub learning_rate: f64,
}

/// [`train_curriculum`], telling `observer` of each step and each finished phase.
pub fn train_curriculum_observed(
    model: &mut CausalLm,
    tokenizer: &TextTokenizer,
    data_dir: &Path,
    config: &TrainerConfig,
    base_model: &str,
    out: &Path,
    observer: &mut dyn Observer,
) -> Result<TrainerState, TrainError> {
    let target = config.target();
    let max_len = config
        .max_seq_len
        .min(model.config.max_position_embeddings as usize);
    let mut tiers = Vec::new();
    for tier in Difficulty::ALL {
        tiers.push((tier, read_tier(data_dir, tier)?));
    }
    let validation_file = data_dir.join("validation.jsonl");
    let validation_samples = read_file(&validation_file)?;
    let judge = if config.run_judge {
        let environment: Vec<(String, String)> = std::env::vars().collect();
        let judge = AnyJudge::from_name(
            &config.judge_provider,
            &config.judge_model,
            &environment,
            &out.join(".judge-cache"),
        )
        .map_err(|error| TrainError::Judge(error.to_string()))?;
        Some(judge)
    } else {
        None
    };
    let system = config.system_prompt.as_deref();
    let validation = encode_all(
        tokenizer,
        &validation_file,
        &validation_samples,
        target,
        max_len,
        system,
    )?;
    let mut encoded_tiers = Vec::with_capacity(tiers.len());
    for (tier, samples) in &tiers {
        let file = data_dir.join(format!("{tier}.jsonl"));
        let examples = encode_all(tokenizer, &file, samples, target, max_len, system)?;
        encoded_tiers.push((*tier, examples));
    }
    let pad_id = tokenizer.eos_ids().first().copied().unwrap_or(0);
    let lora_config = config.lora_config(base_model, config.lora_dropout)?;
    let lora = Lora::attach_new(model, lora_config, LoraInit::Standard(config.seed))?;
    let mut named: Vec<(String, Tensor)> = lora.vars.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parameters: Vec<Tensor> = named
        .iter()
        .map(|(_, tensor)| tensor.shallow_clone())
        .collect();
    let mut optimizer = Optimizer::new(config.optimizer, config.weight_decay, &parameters);
    let resumed = checkpoint::resume(out, &mut named, &mut optimizer)?;
    if let Some(progress) = &resumed {
        info!(
            phase = progress.phase_index,
            epochs_done = progress.epochs_done,
            step = progress.state.global_step,
            "resuming from checkpoint"
        );
    }
    let mut state = resumed
        .as_ref()
        .map(|progress| progress.state.clone())
        .unwrap_or_default();
    if let Some(progress) = resumed.as_ref().filter(|progress| progress.phase_over)
        && let Some(summary) = progress.state.phases.last()
    {
        observer.phase(summary)?;
    }
    for (phase_index, (tier, examples)) in encoded_tiers.into_iter().enumerate() {
        let lr = config.lr * config.phase_lr_factor.powi(phase_index as i32);
        let continuing = match &resumed {
            Some(progress)
                if phase_index < progress.phase_index
                    || (phase_index == progress.phase_index && progress.phase_over) =>
            {
                continue;
            }
            Some(progress) if phase_index == progress.phase_index => Some(progress),
            _ => None,
        };
        let epochs = config.epochs[tier as usize];
        let batches = buckets(&examples, config.batch_size);
        let steps_per_epoch = batches.len().div_ceil(config.grad_accum.max(1)) as i64;
        let total_steps = steps_per_epoch * epochs as i64;
        let warmup = (total_steps as f64 * config.warmup_ratio).round() as i64;
        let mut stopping = EarlyStopping::new(config.patience, config.min_improvement);
        let mut first_epoch_loss = f64::NAN;
        let (mut phase_step, mut ran) = (0i64, 0usize);
        match continuing {
            Some(progress) => {
                stopping.best_after_epoch = progress.best_after_epoch.clone();
                first_epoch_loss = progress.first_epoch_loss;
                phase_step = progress.phase_step;
                ran = progress.epochs_done;
            }
            None => optimizer = Optimizer::new(config.optimizer, config.weight_decay, &parameters),
        }
        for epoch in ran + 1..=epochs {
            let mut order = batches.clone();
            SeededRng::new(config.seed ^ 0xB47C ^ ((tier as u64) << 16) ^ epoch as u64)
                .shuffle(&mut order);
            let (mut epoch_loss, mut step_loss, mut micro) = (0.0, 0.0, 0usize);
            for (position, batch) in order.iter().enumerate() {
                let seed =
                    (config.seed as i64).wrapping_add(state.global_step * 1000 + position as i64);
                let loss = loss_and_backward(
                    model,
                    &collate(&examples, batch, pad_id),
                    config.recompute,
                    seed,
                )?;
                epoch_loss += loss;
                step_loss += loss;
                micro += 1;
                let last = position + 1 == order.len();
                if micro == config.grad_accum.max(1) || last {
                    for parameter in &parameters {
                        let mut grad = parameter.grad();
                        if grad.defined() {
                            let _ = grad.g_div_scalar_(micro as f64);
                        }
                    }
                    clip_gradients(&parameters, config.max_grad_norm);
                    let rate = cosine_with_warmup(lr, phase_step, total_steps, warmup);
                    optimizer.update(&mut parameters, rate);
                    zero_gradients(&parameters);
                    phase_step += 1;
                    state.global_step += 1;
                    state.log_history.push(LogEntry {
                        phase: tier.to_string(),
                        epoch,
                        step: state.global_step,
                        loss: Some(step_loss / micro as f64),
                        learning_rate: Some(rate),
                        eval_loss: None,
                    });
                    observer.step(&StepProgress {
                        phase: tier.to_string(),
                        epoch,
                        epochs,
                        batches_done: position + 1,
                        batches: order.len(),
                        loss: step_loss / micro as f64,
                        learning_rate: rate,
                    });
                    step_loss = 0.0;
                    micro = 0;
                }
            }
            let mean = epoch_loss / order.len().max(1) as f64;
            if epoch == 1 {
                first_epoch_loss = mean;
            }
            let last_epoch_loss = mean;
            ran = epoch;
            let eval_loss = evaluation_loss(model, &validation, config.batch_size, pad_id)?;
            state.log_history.push(LogEntry {
                phase: tier.to_string(),
                epoch,
                step: state.global_step,
                loss: None,
                learning_rate: None,
                eval_loss: Some(eval_loss),
            });
            info!(phase = %tier, epoch, train_loss = mean, eval_loss, "epoch done");
            let early_stopped = stopping.should_stop(eval_loss);
            let phase_over = early_stopped || epoch == epochs;
            if phase_over {
                lora.save(&out.join(tier.as_str()).join("adapter"))?;
                if let Some(judge) = &judge {
                    let (report, predictions) =
                        judge_phase(model, tokenizer, &validation_samples, config, judge)?;
                    let report_path = out.join(tier.as_str()).join("eval_report.json");
                    write_file(
                        &report_path,
                        &serde_json::to_vec_pretty(&report).unwrap_or_default(),
                    )?;
                    let mut lines = Vec::new();
                    for prediction in &predictions {
                        lines.extend(serde_json::to_vec(prediction).unwrap_or_default());
                        lines.push(b'\n');
                    }
                    write_file(&out.join(tier.as_str()).join("predictions.jsonl"), &lines)?;
                    info!(phase = %tier, accuracy = report.classification.accuracy, rubric = report.rubric_mean, "phase judged");
                    if let Some((metric, value, threshold)) = config.gate.failure(&report) {
                        return Err(TrainError::GateFailed {
                            phase: tier.to_string(),
                            metric,
                            value,
                            threshold,
                            report: report_path,
                        });
                    }
                }
                state.phases.push(PhaseSummary {
                    phase: tier.to_string(),
                    epochs: ran,
                    early_stopped,
                    first_epoch_loss,
                    last_epoch_loss,
                    best_eval_loss: stopping.best(),
                    padding_share: padding_share(&examples, &batches),
                    learning_rate: lr,
                });
            }
            let progress = Progress {
                phase_index,
                epochs_done: epoch,
                phase_over,
                phase_step,
                first_epoch_loss,
                best_after_epoch: stopping.best_after_epoch.clone(),
                eval_loss,
                state: state.clone(),
            };
            checkpoint::save(out, &named, &optimizer, &progress)?;
            checkpoint::rotate(out, 2)?;
            if phase_over {
                if let Some(summary) = state.phases.last() {
                    observer.phase(summary)?;
                }
                break;
            }
        }
    }
    lora.save(&out.join("adapter"))?;
    write_file(
        &out.join("loss_curve.svg"),
        crate::report::loss_curve_svg(&state).as_bytes(),
    )?;
    write_file(
        &out.join("README.md"),
        crate::report::readme(base_model, config.lora_r, false).as_bytes(),
    )?;
    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
    write_file(&out.join("trainer_state.json"), text.as_bytes())?;
    Ok(state)
}

/// `--smoke`: one optimisation step on two easy samples; returns the loss before and after.
pub fn smoke_step(
    model: &mut CausalLm,
    tokenizer: &TextTokenizer,
    data_dir: &Path,
    config: &TrainerConfig,
) -> Result<(f64, f64), TrainError> {
    let target = config.target();
    let samples = read_tier(data_dir, Difficulty::Easy)?;
    let examples = encode_all(
        tokenizer,
        &data_dir.join(format!("{}.jsonl", Difficulty::Easy)),
        &samples[..samples.len().min(2)],
        target,
        config.max_seq_len,
        config.system_prompt.as_deref(),
    )?;
    let pad_id = tokenizer.eos_ids().first().copied().unwrap_or(0);
    let lora_config = config.lora_config("", 0.0)?;
    let lora = Lora::attach_new(model, lora_config, LoraInit::Standard(config.seed))?;
    let mut parameters: Vec<Tensor> = lora.vars.variables().into_values().collect();
    let batch: Vec<usize> = (0..examples.len()).collect();
    let before = loss_and_backward(
        model,
        &collate(&examples, &batch, pad_id),
        config.recompute,
        config.seed as i64,
    )?;
    let mut optimizer = Optimizer::new(config.optimizer, config.weight_decay, &parameters);
    clip_gradients(&parameters, config.max_grad_norm);
    optimizer.update(&mut parameters, config.lr);
    zero_gradients(&parameters);
    let after = evaluation_loss(model, &examples, examples.len(), pad_id)?;
    Ok((before, after))
}

/// Writes `bytes` to `path`, naming the path on failure.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    std::fs::write(path, bytes).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_fires_on_a_plateau_only() {
        let mut falling = EarlyStopping::new(3, 0.05);
        for loss in [2.0, 1.6, 1.3, 1.0, 0.8, 0.6] {
            assert!(!falling.should_stop(loss), "still improving at {loss}");
        }
        let mut plateau = EarlyStopping::new(3, 0.05);
        let decisions: Vec<bool> = [2.0, 1.5, 1.49, 1.48, 1.47, 1.46]
            .iter()
            .map(|&loss| plateau.should_stop(loss))
            .collect();
        assert_eq!(decisions, vec![false, false, false, false, true, true]);
        assert_eq!(plateau.best(), 1.46);
    }
}
