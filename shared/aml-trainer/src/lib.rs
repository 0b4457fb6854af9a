//! Curriculum LoRA fine-tuning: easy -> medium -> hard, each phase its own SFT cycle from the
//! previous phase's weights at a lower learning rate, with validation evaluations every few
//! steps, early stopping and the best checkpoint exported, length bucketing or packing,
//! gradient accumulation and clipping, AdamW or Lion with a cosine schedule and warmup, and
//! optional activation recomputation; on the CPU or a CUDA device, in f32 or bf16, with the
//! frozen base optionally in FP8, after a check that the run fits the device's memory.

pub mod batching;
pub mod calibration;
pub mod checkpoint;
pub mod config;
pub mod curriculum;
pub mod data;
pub mod distill;
pub mod evaluation;
pub mod job;
pub mod memory;
pub mod optim;
mod phase;
pub mod report;
pub mod state;
pub mod wire;

pub use config::TrainerConfig;
pub use curriculum::{Observer, RunPaths, StepProgress, smoke_step, train_curriculum};
pub use data::PreparedData;
pub use job::{Outcome, TrainingJob, TrainingPlan};
pub use memory::MemoryEstimate;
pub use state::{EarlyStopping, LogEntry, PhaseSummary, TrainerState};

use std::path::PathBuf;

/// Why training could not run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A dataset line breaks the schema.
    #[error(transparent)]
    Schema(#[from] aml_dataset::SchemaError),
    /// A tier or validation file holds no sample.
    #[error("{0}: no samples")]
    EmptyFile(PathBuf),
    /// A sample's prompt (system prompt, instruction and input) fills `max_seq_len`, so no
    /// answer token would be left to learn from.
    #[error(
        "{file}: sample {sample}: the prompt alone is {prompt_tokens} tokens and max_seq_len is {max_seq_len}, which leaves no room for the answer; raise --max_seq_len or shorten the system prompt"
    )]
    NoRoomForAnswer {
        /// The dataset file.
        file: PathBuf,
        /// The sample's id, or its position in the file.
        sample: String,
        /// Tokens before the answer.
        prompt_tokens: usize,
        /// The limit in force (the flag, capped by the model's context).
        max_seq_len: usize,
    },
    /// A loss came out infinite or NaN (a learning rate too high, an fp16 overflow): the run
    /// stops before the value reaches a checkpoint.
    #[error("phase {phase}, step {step}: the {what} is {value}; lower --lr or check the data")]
    NonFinite {
        /// The phase.
        phase: String,
        /// The run's step.
        step: i64,
        /// `training loss` or `validation loss`.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// The model runtime failed.
    #[error(transparent)]
    Model(#[from] aml_model::ModelError),
    /// A checkpoint cannot be read.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The scorer could not be distilled from the CoT teacher.
    #[error("distillation: {0}")]
    Distillation(String),
    /// The trained model could not be calibrated.
    #[error("calibration: {0}")]
    Calibration(String),
    /// The judge could not run.
    #[error("judge: {0}")]
    Judge(String),
    /// A training configuration field this trainer cannot use.
    #[error("training configuration field `{field}`: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A phase's judge report missed the gate; the curriculum stops.
    #[error(
        "phase {phase} failed the gate: {metric} {value:.3} < {threshold:.3} (report: {report})"
    )]
    GateFailed {
        /// The phase.
        phase: String,
        /// The metric that missed.
        metric: &'static str,
        /// Its value.
        value: f64,
        /// The threshold.
        threshold: f64,
        /// The judge report.
        report: PathBuf,
    },
    /// The run's estimated peak memory is more than the device has free.
    #[error(
        "this run needs about {needed} on {device} but {free} is free ({breakdown}); to fit, try {suggestions}"
    )]
    WontFit {
        /// The device, e.g. `cuda:0 (NVIDIA A10G)`.
        device: String,
        /// The estimate, human-readable.
        needed: String,
        /// Free memory, human-readable.
        free: String,
        /// Where the estimate goes: weights, adapter and optimiser, activations, logits.
        breakdown: String,
        /// The flags that would lower it.
        suggestions: String,
    },
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// The caller stopped the run: it could not take a finished phase (upload or
    /// announcement failed), or asked it to stop mid-phase (the service is shutting down);
    /// its checkpoint lets a later run resume there.
    #[error("stopped in phase {phase}: {reason}")]
    Stopped {
        /// The phase finished or under way.
        phase: String,
        /// Why the caller stopped.
        reason: String,
    },
}

impl TrainError {
    /// Maps an I/O error on `path` to [`TrainError::Io`] naming it.
    pub(crate) fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}
