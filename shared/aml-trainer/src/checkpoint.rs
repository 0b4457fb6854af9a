//! Checkpoints after every epoch: the adapter, the optimiser's moments and the run's
//! progress, so a killed run resumes where its last checkpoint left it and ends in the same
//! state. The last two checkpoints and the best (lowest validation loss) are kept.

use std::path::{Path, PathBuf};

use aml_model::safetensors_io::{WeightFiles, save_file};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::TrainError;
use crate::optim::Optimizer;
use crate::phase::TrainerState;

/// Where the run stood when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Phase index (0 easy, 1 medium, 2 hard).
    pub phase_index: usize,
    /// Epochs of that phase completed.
    pub epochs_done: usize,
    /// Whether that phase is over (last epoch or early stop).
    pub phase_over: bool,
    /// Optimiser steps within the phase.
    pub phase_step: i64,
    /// Mean training loss of the phase's first epoch.
    pub first_epoch_loss: f64,
    /// Best validation loss after each epoch of the phase (the early-stopping history).
    pub best_after_epoch: Vec<f64>,
    /// Validation loss of this checkpoint's epoch.
    pub eval_loss: f64,
    /// The log so far.
    pub state: TrainerState,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

fn folder(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes a checkpoint; `progress.json` goes last and marks it complete.
pub fn save(
    out: &Path,
    parameters: &[(String, Tensor)],
    optimizer: &Optimizer,
    progress: &Progress,
) -> Result<PathBuf, TrainError> {
    let dir = folder(out).join(format!("step-{:08}", progress.state.global_step));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
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
    std::fs::write(dir.join("progress.json"), text).map_err(io(&dir))?;
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
    let text = std::fs::read_to_string(&progress_path).map_err(io(&progress_path))?;
    let progress: Progress =
        serde_json::from_str(&text).map_err(|error| TrainError::Checkpoint {
            path: progress_path.clone(),
            reason: error.to_string(),
        })?;
    let files = WeightFiles::open_file(&dir.join("state.safetensors"))?;
    let _no_grad = tch::no_grad_guard();
    for (index, (name, tensor)) in parameters.iter_mut().enumerate() {
        let stored = files.load(
            &format!("parameter.{name}"),
            Some(&tensor.size()),
            Kind::Float,
            tensor.device(),
        )?;
        tensor.copy_(&stored);
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

/// Keeps the last `keep_last` checkpoints and the one with the lowest validation loss.
pub fn rotate(out: &Path, keep_last: usize) -> Result<Vec<PathBuf>, TrainError> {
    let dirs = complete(out);
    let eval_loss = |dir: &PathBuf| {
        std::fs::read_to_string(dir.join("progress.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Progress>(&text).ok())
            .map_or(f64::INFINITY, |progress| progress.eval_loss)
    };
    let best = dirs
        .iter()
        .min_by(|a, b| eval_loss(a).total_cmp(&eval_loss(b)))
        .cloned();
    let first_kept = dirs.len().saturating_sub(keep_last);
    let mut kept = Vec::new();
    for (position, dir) in dirs.iter().enumerate() {
        if position >= first_kept || Some(dir) == best.as_ref() {
            kept.push(dir.clone());
        } else {
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
    }
    Ok(kept)
}
