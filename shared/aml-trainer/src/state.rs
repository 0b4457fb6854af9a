//! What a run records as it goes: the log (`trainer_state.json`), one summary per phase, and
//! the early-stopping rule over evaluations.

use serde::{Deserialize, Serialize};

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
    /// Validation loss of an evaluation.
    pub eval_loss: Option<f64>,
}

/// How a phase went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// Phase (tier) name.
    pub phase: String,
    /// Epochs run (the last one possibly cut short by early stopping).
    pub epochs: usize,
    /// Optimiser steps the phase ran.
    pub steps: i64,
    /// Validation evaluations the phase ran.
    pub evaluations: usize,
    /// Whether early stopping ended it.
    pub early_stopped: bool,
    /// Mean training loss of the first epoch.
    pub first_epoch_loss: f64,
    /// Mean training loss of the last epoch (over the micro-batches it ran).
    pub last_epoch_loss: f64,
    /// Best validation loss.
    pub best_eval_loss: f64,
    /// The run's step whose weights the phase's adapter holds: the best evaluation's with
    /// `load_best_at_end`, else the last step.
    pub adapter_step: i64,
    /// Share of padding tokens in its batches.
    pub padding_share: f64,
    /// Learning rate of the phase.
    pub learning_rate: f64,
    /// Real (non-padding) tokens trained on, over all its epochs.
    pub tokens: u64,
    /// Causal query-key pairs within those examples (for model FLOPs).
    pub attention_pairs: u64,
    /// Seconds spent in training steps (forward, backward, optimiser; not evaluations).
    pub train_seconds: f64,
}

impl PhaseSummary {
    /// Real tokens trained per second of training steps.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.train_seconds.max(f64::MIN_POSITIVE)
    }
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
/// (relative) across the last `patience` evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_improvement: f64,
    pub(crate) best_after_evaluation: Vec<f64>,
}

impl EarlyStopping {
    /// A rule with its window and threshold.
    pub fn new(patience: usize, min_improvement: f64) -> Self {
        EarlyStopping {
            patience,
            min_improvement,
            best_after_evaluation: Vec::new(),
        }
    }

    /// Records an evaluation's validation loss; true when the phase should stop.
    pub fn should_stop(&mut self, eval_loss: f64) -> bool {
        let best = self
            .best_after_evaluation
            .last()
            .map_or(eval_loss, |best| best.min(eval_loss));
        self.best_after_evaluation.push(best);
        let evaluations = self.best_after_evaluation.len();
        if self.patience == 0 || evaluations <= self.patience {
            return false;
        }
        let before = self.best_after_evaluation[evaluations - 1 - self.patience];
        (before - best) / before.abs().max(f64::MIN_POSITIVE) < self.min_improvement
    }

    /// The best validation loss so far.
    pub fn best(&self) -> f64 {
        self.best_after_evaluation
            .last()
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// Evaluations recorded.
    pub fn evaluations(&self) -> usize {
        self.best_after_evaluation.len()
    }
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
        assert_eq!(plateau.evaluations(), 6);
    }
}
