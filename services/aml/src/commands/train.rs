//! `aml train`: the user's `train_unsloth_curriculum.py` command line, on our runtime.

use std::path::PathBuf;

use aml_model::merge::merge_and_save;
use aml_model::{CausalLm, LoadOptions, TextTokenizer};
use aml_trainer::evaluation::Gate;
use aml_trainer::optim::OptimizerKind;
use aml_trainer::{TrainerConfig, smoke_step, train_curriculum};
use anyhow::{Context, bail};
use clap::ArgAction;

/// Options of `aml train`; snake_case spellings are accepted as aliases.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Base model: a local Hugging Face directory.
    #[arg(long = "model-id", alias = "model_id")]
    model_id: PathBuf,
    /// Dataset folder with easy/medium/hard.jsonl and validation.jsonl.
    #[arg(long = "data-dir", alias = "data_dir")]
    data_dir: PathBuf,
    /// Where adapters, trainer_state.json and config.json go.
    #[arg(long = "output-dir", alias = "output_dir")]
    output_dir: PathBuf,
    /// Longest example in tokens (capped by the model's context).
    #[arg(long = "max-seq-len", alias = "max_seq_len", default_value_t = 4096)]
    max_seq_len: usize,
    /// Epochs of the easy phase.
    #[arg(long = "epochs-easy", alias = "epochs_easy", default_value_t = 2)]
    epochs_easy: usize,
    /// Epochs of the medium phase.
    #[arg(long = "epochs-medium", alias = "epochs_medium", default_value_t = 2)]
    epochs_medium: usize,
    /// Epochs of the hard phase.
    #[arg(long = "epochs-hard", alias = "epochs_hard", default_value_t = 1)]
    epochs_hard: usize,
    /// Learning rate of the first phase.
    #[arg(long, default_value_t = 1e-5)]
    lr: f64,
    /// Factor applied to the rate at each later phase.
    #[arg(
        long = "phase-lr-factor",
        alias = "phase_lr_factor",
        default_value_t = 0.5
    )]
    phase_lr_factor: f64,
    /// Examples per micro-batch.
    #[arg(long = "batch-size", alias = "batch_size", default_value_t = 2)]
    batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long = "grad-accum", alias = "grad_accum", default_value_t = 16)]
    grad_accum: usize,
    /// LoRA rank.
    #[arg(long = "lora-r", alias = "lora_r", default_value_t = 16)]
    lora_r: i64,
    /// LoRA alpha.
    #[arg(long = "lora-alpha", alias = "lora_alpha", default_value_t = 32.0)]
    lora_alpha: f64,
    /// LoRA dropout.
    #[arg(long = "lora-dropout", alias = "lora_dropout", default_value_t = 0.05)]
    lora_dropout: f64,
    /// adamw or lion.
    #[arg(long, default_value = "adamw")]
    optimizer: String,
    /// Train on cot + output (true) or output alone (false: the non-CoT distillation variant).
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    cot: bool,
    /// Recompute activations layer by layer (less memory, more compute).
    #[arg(long)]
    recompute: bool,
    /// Write merged full weights to OUTPUT_DIR/merged after training.
    #[arg(long = "merge-lora", alias = "merge_lora", action = ArgAction::Set, default_value_t = false)]
    merge_lora: bool,
    /// Seed of initialisation, dropout and batch order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Load a tiny batch, run one optimisation step, print the loss before and after.
    #[arg(long)]
    smoke: bool,
    /// Judge the model after each phase (offline judge) and apply the gate.
    #[arg(long = "run-judge", alias = "run_judge", action = ArgAction::Set, default_value_t = true)]
    run_judge: bool,
    /// Validation items judged after each phase (stratified by label x difficulty).
    #[arg(long = "judge-items", alias = "judge_items", default_value_t = 100)]
    judge_items: usize,
    /// Most tokens the model writes per judged answer.
    #[arg(
        long = "judge-max-new-tokens",
        alias = "judge_max_new_tokens",
        default_value_t = 256
    )]
    judge_max_new_tokens: i64,
    /// Gate: least accuracy for the next phase to start.
    #[arg(long = "gate-min-accuracy", alias = "gate_min_accuracy")]
    gate_min_accuracy: Option<f64>,
    /// Gate: least recall of MATCH + EDGE for the next phase to start.
    #[arg(long = "gate-min-positive-recall", alias = "gate_min_positive_recall")]
    gate_min_positive_recall: Option<f64>,
    /// Gate: least rubric mean for the next phase to start.
    #[arg(long = "gate-min-rubric", alias = "gate_min_rubric")]
    gate_min_rubric: Option<f64>,
}

/// Trains and writes the outputs.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if !args.model_id.join("config.json").exists() {
        bail!(
            "--model_id {}: not a local model directory (config.json missing); hub download is not built yet",
            args.model_id.display()
        );
    }
    let optimizer = match args.optimizer.as_str() {
        "adamw" => OptimizerKind::Adamw,
        "lion" => OptimizerKind::Lion,
        other => bail!("unknown --optimizer `{other}`: expected adamw or lion"),
    };
    let config = TrainerConfig {
        lora_r: args.lora_r,
        lora_alpha: args.lora_alpha,
        lora_dropout: args.lora_dropout,
        lr: args.lr,
        phase_lr_factor: args.phase_lr_factor,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        epochs: [args.epochs_easy, args.epochs_medium, args.epochs_hard],
        max_seq_len: args.max_seq_len,
        optimizer,
        cot: args.cot,
        recompute: args.recompute,
        seed: args.seed,
        run_judge: args.run_judge,
        judge_items: args.judge_items,
        judge_max_new_tokens: args.judge_max_new_tokens,
        gate: Gate {
            min_accuracy: args.gate_min_accuracy,
            min_positive_recall: args.gate_min_positive_recall,
            min_rubric: args.gate_min_rubric,
        },
        ..TrainerConfig::default()
    };
    let tokenizer = TextTokenizer::load(&args.model_id)?;
    let mut model = CausalLm::load(&args.model_id, LoadOptions::cpu_f32())
        .with_context(|| format!("failed to load {}", args.model_id.display()))?;
    if args.smoke {
        let (before, after) = smoke_step(&mut model, &tokenizer, &args.data_dir, &config)?;
        println!("smoke: one step on 2 easy samples, loss {before:.4} -> {after:.4}");
        return Ok(());
    }
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("failed to create {}", args.output_dir.display()))?;
    std::fs::write(
        args.output_dir.join("config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    let base = args.model_id.display().to_string();
    let state = train_curriculum(
        &mut model,
        &tokenizer,
        &args.data_dir,
        &config,
        &base,
        &args.output_dir,
    )?;
    println!(
        "{:<8} {:>6} {:>11} {:>11} {:>10} {:>9}",
        "phase", "epochs", "first loss", "last loss", "best eval", "lr"
    );
    for phase in &state.phases {
        println!(
            "{:<8} {:>6} {:>11.4} {:>11.4} {:>10.4} {:>9.2e}{}",
            phase.phase,
            phase.epochs,
            phase.first_epoch_loss,
            phase.last_epoch_loss,
            phase.best_eval_loss,
            phase.learning_rate,
            if phase.early_stopped {
                "  (early stop)"
            } else {
                ""
            }
        );
    }
    if args.merge_lora {
        let merged = args.output_dir.join("merged");
        merge_and_save(
            &model,
            &args.model_id,
            &merged,
            tch::Kind::Float,
            5_000_000_000,
        )?;
        println!("merged weights in {}", merged.display());
        let readme = aml_trainer::report::readme(&base, config.lora_r, true);
        std::fs::write(args.output_dir.join("README.md"), readme)?;
    }
    println!("adapter in {}", args.output_dir.join("adapter").display());
    Ok(())
}
