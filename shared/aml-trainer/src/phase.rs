//! One curriculum phase: epochs of shuffled micro-batches, optimiser steps with gradient
//! accumulation and clipping, a validation evaluation (and a checkpoint) every `eval_steps`
//! steps, early stopping over evaluations, and at the end the best evaluation's weights as
//! the phase's adapter (with `load_best_at_end`), judged and gated.

use aml_core::Difficulty;
use aml_core::rng::SeededRng;
use aml_model::training::loss_and_backward;
use tracing::info;

use crate::TrainError;
use crate::batching::{Batch, batch_tokens, buckets, collate, packed, padding_share};
use crate::checkpoint::{self, Progress, Throughput};
use crate::curriculum::{Curriculum, Observer, StepProgress, evaluation_loss, write_file};
use crate::data::Example;
use crate::evaluation::judge_phase;
use crate::optim::{Optimizer, clip_gradients, cosine_with_warmup, zero_gradients};
use crate::state::{EarlyStopping, LogEntry, PhaseSummary};

/// Checkpoints kept besides each phase's best.
const KEEP_LAST: usize = 2;

/// Where a phase stands: what a checkpoint records of it.
struct Cursor {
    epoch: usize,
    batches_done: usize,
    phase_step: i64,
    first_epoch_loss: Option<f64>,
    epoch_loss_sum: f64,
    best_step: i64,
    throughput: Throughput,
}

/// Causal query-key pairs within the examples of a batch.
fn attention_pairs(examples: &[Example], batch: &Batch) -> u64 {
    batch
        .iter()
        .flatten()
        .map(|&index| {
            let len = examples[index].ids.len() as u64;
            len * (len + 1) / 2
        })
        .sum()
}

impl Curriculum<'_> {
    /// Runs phase `phase_index` (`tier`) on `examples`, from its start or from `resume`.
    pub(crate) fn run_phase(
        &mut self,
        phase_index: usize,
        tier: Difficulty,
        examples: &[Example],
        resume: Option<&Progress>,
        observer: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        let config = self.config;
        let lr = config.lr * config.phase_lr_factor.powi(phase_index as i32);
        let epochs = config.epochs[tier as usize].max(1);
        let batches: Vec<Batch> = if config.packing {
            packed(examples, self.data.max_len, config.batch_size)
        } else {
            buckets(examples, config.batch_size)
        };
        let accumulation = config.grad_accum.max(1);
        let steps_per_epoch = batches.len().div_ceil(accumulation) as i64;
        let total_steps = steps_per_epoch * epochs as i64;
        let warmup = (total_steps as f64 * config.warmup_ratio).round() as i64;
        let eval_every = config.eval_interval(steps_per_epoch);
        let mut stopping = EarlyStopping::new(config.patience, config.min_improvement);
        let mut cursor = Cursor {
            epoch: 1,
            batches_done: 0,
            phase_step: 0,
            first_epoch_loss: None,
            epoch_loss_sum: 0.0,
            best_step: self.state.global_step,
            throughput: Throughput::default(),
        };
        match resume {
            Some(progress) => {
                stopping.best_after_evaluation = progress.best_after_evaluation.clone();
                cursor = Cursor {
                    epoch: progress.epoch,
                    batches_done: progress.batches_done,
                    phase_step: progress.phase_step,
                    first_epoch_loss: progress.first_epoch_loss,
                    epoch_loss_sum: progress.epoch_loss_sum,
                    best_step: progress.best_step,
                    throughput: progress.throughput,
                };
            }
            None => {
                self.optimizer =
                    Optimizer::new(config.optimizer, config.weight_decay, &self.parameters)
            }
        }
        let phase = tier.to_string();
        for epoch in cursor.epoch..=epochs {
            let mut order = batches.clone();
            SeededRng::new(config.seed ^ 0xB47C ^ ((tier as u64) << 16) ^ epoch as u64)
                .shuffle(&mut order);
            let start = if epoch == cursor.epoch {
                cursor.batches_done
            } else {
                cursor.epoch_loss_sum = 0.0;
                0
            };
            let (mut step_loss, mut micro) = (0.0, 0usize);
            for position in start..order.len() {
                let started = std::time::Instant::now();
                let seed = (config.seed as i64)
                    .wrapping_add(self.state.global_step * 1000 + position as i64);
                let batch = &order[position];
                let loss = loss_and_backward(
                    self.model,
                    &collate(examples, batch, self.pad_id, config.packing),
                    config.recompute,
                    seed,
                )?;
                if !loss.is_finite() {
                    return Err(TrainError::NonFinite {
                        phase,
                        step: self.state.global_step + 1,
                        what: "training loss",
                        value: loss,
                    });
                }
                cursor.throughput.tokens += batch_tokens(examples, batch) as u64;
                cursor.throughput.attention_pairs += attention_pairs(examples, batch);
                cursor.epoch_loss_sum += loss;
                step_loss += loss;
                micro += 1;
                let epoch_done = position + 1 == order.len();
                if micro < accumulation && !epoch_done {
                    cursor.throughput.seconds += started.elapsed().as_secs_f64();
                    continue;
                }
                let rate = cosine_with_warmup(lr, cursor.phase_step, total_steps, warmup);
                self.optimizer_step(micro, rate);
                cursor.throughput.seconds += started.elapsed().as_secs_f64();
                cursor.phase_step += 1;
                self.state.global_step += 1;
                self.state.log_history.push(LogEntry {
                    phase: phase.clone(),
                    epoch,
                    step: self.state.global_step,
                    loss: Some(step_loss / micro as f64),
                    learning_rate: Some(rate),
                    eval_loss: None,
                });
                observer.step(&StepProgress {
                    phase: phase.clone(),
                    epoch,
                    epochs,
                    batches_done: position + 1,
                    batches: order.len(),
                    loss: step_loss / micro as f64,
                    learning_rate: rate,
                });
                (step_loss, micro) = (0.0, 0);
                cursor.epoch = epoch;
                cursor.batches_done = position + 1;
                let epoch_mean = cursor.epoch_loss_sum / (position + 1) as f64;
                if epoch_done && epoch == 1 {
                    cursor.first_epoch_loss = Some(epoch_mean);
                }
                let last_step = epoch_done && epoch == epochs;
                if !last_step && observer.stop_requested() {
                    // Not evaluated: the largest finite loss keeps it from counting as the
                    // phase's best while rotation keeps it as the latest.
                    self.checkpoint(phase_index, false, &cursor, &stopping, f64::MAX)?;
                    return Err(TrainError::Stopped {
                        phase,
                        reason: format!(
                            "asked to stop; a checkpoint at step {} resumes it",
                            self.state.global_step
                        ),
                    });
                }
                if cursor.phase_step % eval_every != 0 && !last_step {
                    continue;
                }
                let eval_loss = evaluation_loss(
                    self.model,
                    &self.data.validation,
                    config.batch_size,
                    self.pad_id,
                )?;
                if !eval_loss.is_finite() {
                    return Err(TrainError::NonFinite {
                        phase,
                        step: self.state.global_step,
                        what: "validation loss",
                        value: eval_loss,
                    });
                }
                self.state.log_history.push(LogEntry {
                    phase: phase.clone(),
                    epoch,
                    step: self.state.global_step,
                    loss: None,
                    learning_rate: None,
                    eval_loss: Some(eval_loss),
                });
                if eval_loss < stopping.best() {
                    cursor.best_step = self.state.global_step;
                }
                let early_stopped = stopping.should_stop(eval_loss) && !last_step;
                info!(%phase, epoch, step = self.state.global_step, train_loss = epoch_mean, eval_loss, "evaluated");
                if early_stopped || last_step {
                    let first_epoch_loss = cursor.first_epoch_loss.unwrap_or(epoch_mean);
                    let summary = PhaseSummary {
                        phase: phase.clone(),
                        epochs: epoch,
                        steps: cursor.phase_step,
                        evaluations: stopping.evaluations(),
                        early_stopped,
                        first_epoch_loss,
                        last_epoch_loss: epoch_mean,
                        best_eval_loss: stopping.best(),
                        adapter_step: self.state.global_step,
                        padding_share: padding_share(examples, &batches),
                        learning_rate: lr,
                        tokens: cursor.throughput.tokens,
                        attention_pairs: cursor.throughput.attention_pairs,
                        train_seconds: cursor.throughput.seconds,
                    };
                    cursor.first_epoch_loss = Some(first_epoch_loss);
                    return self.finish_phase(
                        phase_index,
                        summary,
                        &cursor,
                        &stopping,
                        eval_loss,
                        observer,
                    );
                }
                self.checkpoint(phase_index, false, &cursor, &stopping, eval_loss)?;
            }
        }
        Ok(())
    }

    /// Averages the accumulated gradients over `micro` micro-batches, clips them, steps the
    /// optimiser at `rate` and clears the gradients.
    fn optimizer_step(&mut self, micro: usize, rate: f64) {
        for parameter in &self.parameters {
            let mut grad = parameter.grad();
            if grad.defined() {
                let _ = grad.g_div_scalar_(micro as f64);
            }
        }
        clip_gradients(&self.parameters, self.config.max_grad_norm);
        self.optimizer.update(&mut self.parameters, rate);
        zero_gradients(&self.parameters);
    }

    fn checkpoint(
        &self,
        phase_index: usize,
        phase_over: bool,
        cursor: &Cursor,
        stopping: &EarlyStopping,
        eval_loss: f64,
    ) -> Result<(), TrainError> {
        let progress = Progress {
            batch_layout: checkpoint::batch_layout(self.config, self.data.max_len),
            phase_index,
            epoch: cursor.epoch,
            batches_done: cursor.batches_done,
            phase_over,
            phase_step: cursor.phase_step,
            first_epoch_loss: cursor.first_epoch_loss,
            epoch_loss_sum: cursor.epoch_loss_sum,
            throughput: cursor.throughput,
            best_after_evaluation: stopping.best_after_evaluation.clone(),
            best_step: cursor.best_step,
            eval_loss,
            state: self.state.clone(),
        };
        checkpoint::save(&self.paths.out, &self.named, &self.optimizer, &progress)?;
        checkpoint::rotate(&self.paths.out, KEEP_LAST)?;
        Ok(())
    }

    /// Ends a phase: the best evaluation's weights back in place (with `load_best_at_end`),
    /// the phase's adapter, the judge's report and the gate, the phase-over checkpoint, and
    /// the observer told.
    fn finish_phase(
        &mut self,
        phase_index: usize,
        mut summary: PhaseSummary,
        cursor: &Cursor,
        stopping: &EarlyStopping,
        last_eval_loss: f64,
        observer: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        let mut eval_loss = last_eval_loss;
        if self.config.load_best_at_end && cursor.best_step != self.state.global_step {
            let best = checkpoint::at_step(&self.paths.out, cursor.best_step);
            checkpoint::load_parameters(&best, &mut self.named)?;
            info!(phase = %summary.phase, step = cursor.best_step, eval_loss = stopping.best(), "the phase's best evaluation is its adapter");
            summary.adapter_step = cursor.best_step;
            eval_loss = stopping.best();
        }
        let folder = self.paths.out.join(&summary.phase);
        self.save_adapter(&folder.join("adapter"))?;
        if let Some(judge) = &self.judge {
            let (report, predictions) = judge_phase(
                self.model,
                self.tokenizer,
                &self.data.validation_samples,
                self.config,
                judge,
            )?;
            let report_path = folder.join("eval_report.json");
            write_file(
                &report_path,
                &serde_json::to_vec_pretty(&report).unwrap_or_default(),
            )?;
            let mut lines = Vec::new();
            for prediction in &predictions {
                lines.extend(serde_json::to_vec(prediction).unwrap_or_default());
                lines.push(b'\n');
            }
            write_file(&folder.join("predictions.jsonl"), &lines)?;
            info!(phase = %summary.phase, accuracy = report.classification.accuracy, rubric = report.rubric_mean, "phase judged");
            if let Some((metric, value, threshold)) = self.config.gate.failure(&report) {
                return Err(TrainError::GateFailed {
                    phase: summary.phase,
                    metric,
                    value,
                    threshold,
                    report: report_path,
                });
            }
        }
        self.state.phases.push(summary);
        self.checkpoint(phase_index, true, cursor, stopping, eval_loss)?;
        match self.state.phases.last() {
            Some(summary) => observer.phase(summary),
            None => Ok(()),
        }
    }
}
