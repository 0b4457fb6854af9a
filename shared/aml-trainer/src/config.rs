//! Every training hyper-parameter, with the defaults of the user's notes.

use serde::{Deserialize, Serialize};

use aml_core::{DeviceChoice, DtypeChoice};
use aml_model::LoraConfig;

use crate::data::Target;
use crate::optim::OptimizerKind;

/// Hyper-parameters of a curriculum run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// LoRA rank.
    pub lora_r: i64,
    /// LoRA alpha.
    pub lora_alpha: f64,
    /// LoRA dropout.
    pub lora_dropout: f64,
    /// Projections to adapt.
    pub target_modules: Vec<String>,
    /// Learning rate of the first phase.
    pub lr: f64,
    /// Each later phase's rate is the previous one times this.
    pub phase_lr_factor: f64,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Epochs of the easy, medium and hard phases.
    pub epochs: [usize; 3],
    /// Longest example, in tokens (capped by the model's context).
    pub max_seq_len: usize,
    /// Share of a phase's steps spent warming up.
    pub warmup_ratio: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient clipping norm (0: off).
    pub max_grad_norm: f64,
    /// AdamW or Lion.
    pub optimizer: OptimizerKind,
    /// Train on `cot` + `output` (true) or `output` alone (a decision-first scorer).
    pub cot: bool,
    /// With `cot`: train the CoT model as the teacher (under `teacher/`), then a decision-first
    /// scorer (the run's top-level `adapter/`, the one workers score with) on the teacher's
    /// label distribution after its own reasoning, mixed with the gold label.
    pub distill: bool,
    /// The gold label's share of the scorer's target; the teacher's distribution has the rest.
    pub distill_gold_weight: f64,
    /// Most tokens of reasoning the teacher writes per training input.
    pub distill_max_new_tokens: i64,
    /// Recompute activations layer by layer in the backward pass.
    pub recompute: bool,
    /// Where the model trains: `auto` (the first CUDA device, else the CPU), `cpu`, `cuda:N`.
    pub device: DeviceChoice,
    /// Compute dtype: `auto` (bf16 on CUDA, f32 on the CPU), `f32` or `bf16`.
    pub dtype: DtypeChoice,
    /// Keep the frozen base projections in FP8 e4m3 with per-row scales (LoRA weights,
    /// activations and optimiser state keep their precision): an 8B base in about 8 GB.
    pub fp8_base: bool,
    /// Pack several examples into each row up to `max_seq_len` (attention never crosses two
    /// examples, positions restart at each); `batch_size` then counts packed rows.
    pub packing: bool,
    /// Optimiser steps between validation evaluations (each writes a checkpoint); `None`:
    /// four evaluations per epoch.
    pub eval_steps: Option<usize>,
    /// Export each phase's best-validation checkpoint as its adapter and start the next
    /// phase from it (transformers' `load_best_model_at_end`).
    pub load_best_at_end: bool,
    /// Write the merged model (base checkpoint dtype, shards of at most 5 GB) to `merged/`.
    pub merge_lora: bool,
    /// A bank's labelled alerts (JSONL of `{"alert", "label"}`) scored with the validation set
    /// after training to calibrate the cascade (`calibration.json`).
    pub calibration_file: Option<std::path::PathBuf>,
    /// Recall the calibration certifies.
    pub calibration_recall: f64,
    /// Confidence of the calibration's lower bound on recall.
    pub calibration_confidence: f64,
    /// Push the output folder (adapters with tokenizer, reports, merged weights; not
    /// checkpoints) to this Hub model repository (`owner/name`) when training ends.
    pub hub_model_id: Option<String>,
    /// Evaluations over which the best validation loss must improve...
    pub patience: usize,
    /// ...by at least this relative amount, else the phase stops.
    pub min_improvement: f64,
    /// Seed of initialisation, dropout and batch order.
    pub seed: u64,
    /// Judge the model after each phase.
    pub run_judge: bool,
    /// Validation items the judge grades after each phase (stratified).
    pub judge_items: usize,
    /// Most tokens the model writes per judged answer.
    pub judge_max_new_tokens: i64,
    /// Who grades each phase: `offline` (rubric checks, no network) or an LLM provider
    /// (`anthropic`, `perplexity`, `openai`), its key read from the environment.
    pub judge_provider: String,
    /// The LLM judge's model name.
    pub judge_model: String,
    /// The LLM judge's key and endpoint (from the configuration: `.env` or the environment);
    /// never serialised into requests, checkpoints or reports.
    #[serde(skip)]
    pub judge_credentials: aml_judge::Credentials,
    /// The system message every example is trained under. Give the policy document the
    /// workers score with (`scoring.policy_url`, or the built-in one) so that training and
    /// scoring prompts are the same; none by default (short prompts for small runs).
    pub system_prompt: Option<String>,
    /// What a phase's judge report must reach for the next phase to start.
    pub gate: Gate,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            lora_r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.05,
            target_modules: aml_model::lora::TARGETABLE
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            lr: 1e-5,
            phase_lr_factor: 0.5,
            batch_size: 2,
            grad_accum: 16,
            epochs: [2, 2, 1],
            max_seq_len: 4096,
            warmup_ratio: 0.03,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            optimizer: OptimizerKind::Adamw,
            cot: true,
            distill: true,
            distill_gold_weight: 0.5,
            distill_max_new_tokens: 256,
            recompute: false,
            device: DeviceChoice::Auto,
            dtype: DtypeChoice::Auto,
            fp8_base: false,
            packing: false,
            eval_steps: None,
            load_best_at_end: true,
            merge_lora: false,
            hub_model_id: None,
            calibration_file: None,
            calibration_recall: 0.99,
            calibration_confidence: 0.95,
            patience: 3,
            min_improvement: 0.05,
            seed: 42,
            run_judge: true,
            judge_items: 100,
            judge_max_new_tokens: 256,
            judge_provider: "offline".to_owned(),
            judge_model: aml_judge::DEFAULT_MODEL.to_owned(),
            judge_credentials: aml_judge::Credentials::default(),
            system_prompt: None,
            gate: Gate::default(),
        }
    }
}

impl TrainerConfig {
    /// Whether the run trains a CoT teacher and then a scorer distilled from it.
    pub fn distills(&self) -> bool {
        self.cot && self.distill
    }

    /// What the model learns to write: `cot` + `output`, or `output` alone.
    pub fn target(&self) -> Target {
        if self.cot {
            Target::CotThenOutput
        } else {
            Target::OutputOnly
        }
    }

    /// Optimiser steps between evaluations in a phase of `steps_per_epoch` steps per epoch.
    pub fn eval_interval(&self, steps_per_epoch: i64) -> i64 {
        match self.eval_steps {
            Some(steps) => steps.max(1) as i64,
            None => (steps_per_epoch.max(1) + 3) / 4,
        }
    }

    /// The LoRA settings of this run, with the given dropout.
    pub fn lora_config(
        &self,
        base_model: &str,
        dropout: f64,
    ) -> Result<LoraConfig, aml_model::ModelError> {
        Ok(LoraConfig {
            r: self.lora_r,
            alpha: self.lora_alpha,
            dropout,
            target_modules: LoraConfig::normalise_targets(&self.target_modules)?,
            use_rslora: false,
            base_model: base_model.to_owned(),
        })
    }
}

/// Thresholds a phase's judge report must reach for the next phase to start; unset ones
/// are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gate {
    /// Least recall of MATCH + EDGE at tau 0.5 (share of positives the model escalates).
    pub min_positive_recall: Option<f64>,
    /// Least accuracy.
    pub min_accuracy: Option<f64>,
    /// Least rubric mean.
    pub min_rubric: Option<f64>,
}
