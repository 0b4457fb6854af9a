//! Checkpoints at every evaluation and at the end of each phase: the adapter, the optimiser's
//! moments and the run's progress, so a killed run resumes where its last checkpoint left it
//! (mid-epoch too) and ends in the same state. The last two checkpoints and each phase's best
//! (lowest validation loss) are kept; the best is what `load_best_at_end` exports.

use std::path::{Path, PathBuf};

use aml_model::safetensors_io::{WeightFiles, save_file};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::TrainError;
use crate::optim::Optimizer;
use crate::state::TrainerState;

/// What a phase's training steps processed, and how long they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Real (non-padding) tokens.
    pub tokens: u64,
    /// Causal query-key pairs within examples.
    pub attention_pairs: u64,
    /// Seconds in forward, backward and optimiser steps.
    pub seconds: f64,
}

/// Where the run stood when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The flags that decide the micro-batches and steps (packing, batch size, accumulation,
    /// evaluation interval, sequence length, seed): a resume under others is refused.
    pub batch_layout: String,
    /// Phase index (0 easy, 1 medium, 2 hard).
    pub phase_index: usize,
    /// The epoch of that phase the checkpoint fell in, from 1.
    pub epoch: usize,
    /// Micro-batches of that epoch done (all of them when the epoch ended there).
    pub batches_done: usize,
    /// Whether that phase is over (last epoch or early stop).
    pub phase_over: bool,
    /// Optimiser steps within the phase.
    pub phase_step: i64,
    /// Mean training loss of the phase's first epoch, once it has ended.
    pub first_epoch_loss: Option<f64>,
    /// Sum of the training losses of the micro-batches done in this epoch.
    pub epoch_loss_sum: f64,
    /// Real tokens, causal pairs and seconds of the phase's training steps so far.
    pub throughput: Throughput,
    /// Best validation loss after each evaluation of the phase (the early-stopping history).
    pub best_after_evaluation: Vec<f64>,
    /// The run's step of the phase's best evaluation so far (its checkpoint is kept).
    pub best_step: i64,
    /// Validation loss of the weights this checkpoint holds.
    pub eval_loss: f64,
    /// The log so far.
    pub state: TrainerState,
}

/// What decides a run's micro-batches and steps: a checkpoint resumes only under the same.
pub(crate) fn batch_layout(config: &crate::TrainerConfig, max_len: usize) -> String {
    format!(
        "packing {}, batch_size {}, grad_accum {}, eval_steps {:?}, max_seq_len {max_len}, seed {}",
        config.packing, config.batch_size, config.grad_accum, config.eval_steps, config.seed
    )
}

fn folder(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The checkpoint folder of the run's step `step`.
pub fn at_step(out: &Path, step: i64) -> PathBuf {
    folder(out).join(format!("step-{step:08}"))
}

/// Writes a checkpoint; `progress.json` goes last and marks it complete.
pub fn save(
    out: &Path,
    parameters: &[(String, Tensor)],
    optimizer: &Optimizer,
    progress: &Progress,
) -> Result<PathBuf, TrainError> {
    let dir = at_step(out, progress.state.global_step);
    std::fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
    let marker = dir.join("progress.json");
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(TrainError::io(&marker))?;
    }
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    for (index, (name, tensor)) in parameters.iter().enumerate() {
        tensors.push((
            format!("parameter.{name}"),
            tensor.detach().to_kind(Kind::Float),
        ));
        tensors.push((
            format!("first.{index}"),
            optimizer.first[index].shallow_clone(),
        ));
        tensors.push((
            format!("second.{index}"),
            optimizer.second[index].shallow_clone(),
        ));
    }
    tensors.push(("step".to_owned(), Tensor::from_slice(&[optimizer.step])));
    save_file(&dir.join("state.safetensors"), &tensors, None)?;
    let text = serde_json::to_vec_pretty(progress).unwrap_or_default();
    std::fs::write(dir.join("progress.json"), text).map_err(TrainError::io(&dir))?;
    Ok(dir)
}

/// The complete checkpoints, oldest first.
fn complete(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(folder(out))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|dir| dir.join("progress.json").exists());
    dirs.sort();
    dirs
}

/// The latest complete checkpoint's progress, restoring parameters and optimiser state.
pub fn resume(
    out: &Path,
    parameters: &mut [(String, Tensor)],
    optimizer: &mut Optimizer,
) -> Result<Option<Progress>, TrainError> {
    let Some(dir) = complete(out).pop() else {
        return Ok(None);
    };
    let progress_path = dir.join("progress.json");
    let text = std::fs::read_to_string(&progress_path).map_err(TrainError::io(&progress_path))?;
    let progress: Progress =
        serde_json::from_str(&text).map_err(|error| TrainError::Checkpoint {
            path: progress_path.clone(),
            reason: error.to_string(),
        })?;
    let files = load_parameters(&dir, parameters)?;
    let _no_grad = tch::no_grad_guard();
    for (index, (_, tensor)) in parameters.iter().enumerate() {
        optimizer.first[index] = files.load(
            &format!("first.{index}"),
            None,
            Kind::Float,
            tensor.device(),
        )?;
        optimizer.second[index] = files.load(
            &format!("second.{index}"),
            None,
            Kind::Float,
            tensor.device(),
        )?;
    }
    optimizer.step = files
        .load("step", None, Kind::Int64, Device::Cpu)?
        .int64_value(&[0]);
    Ok(Some(progress))
}

/// Copies the adapter parameters of the checkpoint in `dir` into `parameters`; returns its
/// files for the caller to read more from.
pub fn load_parameters(
    dir: &Path,
    parameters: &mut [(String, Tensor)],
) -> Result<WeightFiles, TrainError> {
    let files = WeightFiles::open_file(&dir.join("state.safetensors"))?;
    let _no_grad = tch::no_grad_guard();
    for (name, tensor) in parameters.iter_mut() {
        let stored = files.load(
            &format!("parameter.{name}"),
            Some(&tensor.size()),
            Kind::Float,
            tensor.device(),
        )?;
        tensor.copy_(&stored);
    }
    Ok(files)
}

/// Keeps the last `keep_last` checkpoints and each phase's best (lowest validation loss).
pub fn rotate(out: &Path, keep_last: usize) -> Result<Vec<PathBuf>, TrainError> {
    let dirs = complete(out);
    let progress: Vec<Option<Progress>> = dirs
        .iter()
        .map(|dir| {
            std::fs::read_to_string(dir.join("progress.json"))
                .ok()
                .and_then(|text| serde_json::from_str::<Progress>(&text).ok())
        })
        .collect();
    let mut best_of_phase: std::collections::BTreeMap<usize, (f64, usize)> =
        std::collections::BTreeMap::new();
    for (position, progress) in progress.iter().enumerate() {
        if let Some(progress) = progress {
            let best = best_of_phase
                .entry(progress.phase_index)
                .or_insert((f64::INFINITY, position));
            if progress.eval_loss < best.0 {
                *best = (progress.eval_loss, position);
            }
        }
    }
    let first_kept = dirs.len().saturating_sub(keep_last);
    let mut kept = Vec::new();
    for (position, dir) in dirs.iter().enumerate() {
        let a_best = best_of_phase.values().any(|(_, best)| *best == position);
        if position >= first_kept || a_best {
            kept.push(dir.clone());
        } else {
            std::fs::remove_dir_all(dir).map_err(TrainError::io(dir))?;
        }
    }
    Ok(kept)
}
