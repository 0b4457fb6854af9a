//! The curriculum: easy -> medium -> hard, each phase its own cycle from the previous phase's
//! weights, resumable from the last checkpoint, then the final adapter and the run's reports.

use std::path::{Path, PathBuf};

use aml_core::record::{AnswerFormat, RECORD_FILE, RECORD_VERSION, TrainingRecord};
use aml_judge::AnyJudge;
use aml_model::merge::copy_tokenizer_files;
use aml_model::training::loss_and_backward;
use aml_model::{CausalLm, Lora, LoraInit, TextTokenizer};
use tch::Tensor;
use tracing::info;

use crate::batching::{Batch, buckets, collate};
use crate::checkpoint::{self, Progress};
use crate::data::{Example, PreparedData, Target};
use crate::optim::{Optimizer, clip_gradients, zero_gradients};
use crate::state::{PhaseSummary, TrainerState};
use crate::{TrainError, TrainerConfig};

/// Where a run reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPaths {
    /// The base model's folder (its tokenizer files are copied beside every adapter).
    pub base_dir: PathBuf,
    /// The base model as the user named it (a Hub id or a path), recorded in the adapters.
    pub base_name: String,
    /// The dataset folder: `easy.jsonl`, `medium.jsonl`, `hard.jsonl`, `validation.jsonl`.
    pub data_dir: PathBuf,
    /// The output folder.
    pub out: PathBuf,
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
    /// Asked after each optimiser step: true stops the run there with a checkpoint (a
    /// later run resumes from it) and [`TrainError::Stopped`].
    fn stop_requested(&self) -> bool {
        false
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

/// The state a run carries from phase to phase.
pub(crate) struct Curriculum<'a> {
    pub(crate) model: &'a CausalLm,
    pub(crate) tokenizer: &'a TextTokenizer,
    pub(crate) data: &'a PreparedData,
    pub(crate) config: &'a TrainerConfig,
    pub(crate) paths: &'a RunPaths,
    pub(crate) judge: Option<AnyJudge>,
    pub(crate) lora: &'a Lora,
    /// The adapter's tensors under their PEFT names, sorted (checkpoint order).
    pub(crate) named: Vec<(String, Tensor)>,
    pub(crate) parameters: Vec<Tensor>,
    pub(crate) optimizer: Optimizer,
    pub(crate) state: TrainerState,
    pub(crate) pad_id: i64,
    /// How the run trains, written beside every adapter.
    pub(crate) record: TrainingRecord,
}

impl Curriculum<'_> {
    /// Saves the adapter as it is now under `dir`, with the base model's tokenizer files
    /// and chat template, so the folder loads as it is with PEFT + AutoTokenizer and vLLM.
    pub(crate) fn save_adapter(&self, dir: &Path) -> Result<(), TrainError> {
        self.lora.save(dir)?;
        copy_tokenizer_files(&self.paths.base_dir, dir)?;
        write_record(dir, &self.record)
    }
}

/// How a run on `data` under `config` trains: what its model answers first, the base, and
/// the digests of the system prompt and chat template its examples were rendered with.
pub fn training_record(
    config: &TrainerConfig,
    base_name: &str,
    tokenizer: &TextTokenizer,
    data: &PreparedData,
) -> TrainingRecord {
    let sha = |text: &str| aml_core::digest::sha256_hex(text.as_bytes());
    TrainingRecord {
        version: RECORD_VERSION,
        answer_format: match config.target() {
            Target::CotThenOutput => AnswerFormat::ReasoningFirst,
            Target::OutputOnly => AnswerFormat::DecisionFirst,
        },
        cot: config.cot,
        distilled_from: data.distilled_from.clone(),
        base_model: base_name.to_owned(),
        system_prompt_sha256: config.system_prompt.as_deref().map(sha),
        chat_template_sha256: tokenizer.chat_template().map(sha),
    }
}

/// Writes `record` as `dir`'s `aml_training.json`.
pub(crate) fn write_record(dir: &Path, record: &TrainingRecord) -> Result<(), TrainError> {
    write_file(
        &dir.join(RECORD_FILE),
        &serde_json::to_vec_pretty(record).unwrap_or_default(),
    )
}

/// Trains easy -> medium -> hard on `data`, saving each phase's adapter under
/// `out/<phase>/adapter` and the final one under `out/adapter`, each with the tokenizer
/// files; resumes from the last checkpoint in `out` when there is one.
pub fn train_curriculum(
    model: &mut CausalLm,
    tokenizer: &TextTokenizer,
    data: &PreparedData,
    config: &TrainerConfig,
    paths: &RunPaths,
    observer: &mut dyn Observer,
) -> Result<TrainerState, TrainError> {
    let out = &paths.out;
    let judge = if config.run_judge {
        let judge = AnyJudge::from_name(
            &config.judge_provider,
            &config.judge_model,
            &config.judge_credentials.0,
            &out.join(".judge-cache"),
        )
        .map_err(|error| TrainError::Judge(error.to_string()))?;
        Some(judge)
    } else {
        None
    };
    let lora_config = config.lora_config(&paths.base_name, config.lora_dropout)?;
    let lora = Lora::attach_new(model, lora_config, LoraInit::Standard(config.seed))?;
    let mut named: Vec<(String, Tensor)> = lora.vars.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let parameters: Vec<Tensor> = named
        .iter()
        .map(|(_, tensor)| tensor.shallow_clone())
        .collect();
    let mut optimizer = Optimizer::new(config.optimizer, config.weight_decay, &parameters);
    let resumed = checkpoint::resume(out, &mut named, &mut optimizer)?;
    if let Some(progress) = &resumed {
        let layout = checkpoint::batch_layout(config, data.max_len);
        if progress.batch_layout != layout {
            return Err(TrainError::Checkpoint {
                path: checkpoint::at_step(out, progress.state.global_step),
                reason: format!(
                    "written with {}, resumed with {layout}: resume with the same flags, or train into a new output folder",
                    progress.batch_layout
                ),
            });
        }
        info!(
            phase = progress.phase_index,
            epoch = progress.epoch,
            batches_done = progress.batches_done,
            step = progress.state.global_step,
            "resuming from checkpoint"
        );
    }
    let mut run = Curriculum {
        model,
        tokenizer,
        data,
        config,
        paths,
        judge,
        lora: &lora,
        named,
        parameters,
        optimizer,
        state: resumed
            .as_ref()
            .map(|progress| progress.state.clone())
            .unwrap_or_default(),
        pad_id: tokenizer.eos_ids().first().copied().unwrap_or(0),
        record: training_record(config, &paths.base_name, tokenizer, data),
    };
    if let Some(progress) = resumed.as_ref().filter(|progress| progress.phase_over)
        && let Some(summary) = progress.state.phases.last()
    {
        observer.phase(summary)?;
    }
    for (phase_index, (tier, examples)) in data.tiers.iter().enumerate() {
        let continuing: Option<&Progress> = match &resumed {
            Some(progress)
                if phase_index < progress.phase_index
                    || (phase_index == progress.phase_index && progress.phase_over) =>
            {
                continue;
            }
            Some(progress) if phase_index == progress.phase_index => Some(progress),
            _ => None,
        };
        run.run_phase(phase_index, *tier, examples, continuing, observer)?;
    }
    run.save_adapter(&out.join("adapter"))?;
    let state = run.state;
    write_file(
        &out.join("loss_curve.svg"),
        crate::report::loss_curve_svg(&state).as_bytes(),
    )?;
    write_file(
        &out.join("README.md"),
        crate::report::readme(&paths.base_name, config.lora_r, config.merge_lora).as_bytes(),
    )?;
    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
    write_file(&out.join("trainer_state.json"), text.as_bytes())?;
    Ok(state)
}

/// Mean cross-entropy of `examples` (one per row, no dropout), batch by batch.
pub(crate) fn evaluation_loss(
    model: &CausalLm,
    examples: &[Example],
    batch_size: usize,
    pad_id: i64,
) -> Result<f64, TrainError> {
    let _no_grad = tch::no_grad_guard();
    let mut total = 0.0;
    let batches = buckets(examples, batch_size);
    for batch in &batches {
        let train_batch = collate(examples, batch, pad_id, false).to_device(model.device);
        let logits = model.forward(&train_batch.ids)?;
        total += train_batch.loss(&logits).double_value(&[]);
    }
    Ok(total / batches.len().max(1) as f64)
}

/// `--smoke`: one optimisation step on two easy samples; returns the loss before and after.
pub fn smoke_step(
    model: &mut CausalLm,
    tokenizer: &TextTokenizer,
    data: &PreparedData,
    config: &TrainerConfig,
) -> Result<(f64, f64), TrainError> {
    let easy = data
        .tiers
        .first()
        .map(|(_, examples)| &examples[..examples.len().min(2)])
        .unwrap_or_default();
    let pad_id = tokenizer.eos_ids().first().copied().unwrap_or(0);
    let lora_config = config.lora_config("", 0.0)?;
    let lora = Lora::attach_new(model, lora_config, LoraInit::Standard(config.seed))?;
    let mut parameters: Vec<Tensor> = lora.vars.variables().into_values().collect();
    let batch: Batch = (0..easy.len()).map(|index| vec![index]).collect();
    let before = loss_and_backward(
        model,
        &collate(easy, &batch, pad_id, false),
        config.recompute,
        config.seed as i64,
    )?;
    let mut optimizer = Optimizer::new(config.optimizer, config.weight_decay, &parameters);
    clip_gradients(&parameters, config.max_grad_norm);
    optimizer.update(&mut parameters, config.lr);
    zero_gradients(&parameters);
    let after = evaluation_loss(model, easy, easy.len(), pad_id)?;
    Ok((before, after))
}

/// Writes `bytes` to `path`, naming the path on failure.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    std::fs::write(path, bytes).map_err(TrainError::io(path))
}
