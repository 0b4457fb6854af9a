//! `aml train`: the user's `train_unsloth_curriculum.py` command line, on our runtime.

mod progress;

use std::path::PathBuf;

use aml_core::{DeviceChoice, DtypeChoice};
use aml_hub::HubClient;
use aml_runtime::AmlConfig;
use aml_storage::StagedFolder;
use aml_trainer::config::Gate;
use aml_trainer::optim::OptimizerKind;
use aml_trainer::{RunPaths, TrainerConfig, TrainingJob};
use anyhow::{Context, bail};
use clap::ArgAction;

use progress::{CliProgress, synced_text};

/// Options of `aml train`; snake_case spellings are accepted as aliases.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Base model: a local Hugging Face directory, or a Hub id (`meta-llama/Llama-3.1-8B-Instruct`)
    /// downloaded once into --hub-cache (HF_TOKEN for gated models, HF_ENDPOINT for a mirror).
    #[arg(long = "model-id", alias = "model_id")]
    model_id: String,
    /// Hub revision (branch, tag or commit) of a Hub model id.
    #[arg(long, default_value = "main")]
    revision: String,
    /// Where Hub models are downloaded.
    #[arg(
        long = "hub-cache",
        alias = "hub_cache",
        default_value = "./aml-data/.hub-cache"
    )]
    hub_cache: PathBuf,
    /// Push the output folder (adapter, tokenizer, reports; not checkpoints) to the Hub.
    #[arg(long = "push-to-hub", alias = "push_to_hub", action = ArgAction::Set, default_value_t = false)]
    push_to_hub: bool,
    /// The model repository to push to (`owner/name`); needed with --push_to_hub true.
    #[arg(long = "hub-model-id", alias = "hub_model_id")]
    hub_model_id: Option<String>,
    /// Dataset folder with easy/medium/hard.jsonl and validation.jsonl.
    #[arg(long = "data-dir", alias = "data_dir")]
    data_dir: PathBuf,
    /// Where adapters, trainer_state.json and config.json go: a local folder, or an object-store
    /// URL under the configured storage (e.g. s3://aml/models/run-1), uploaded after each phase.
    #[arg(long = "output-dir", alias = "output_dir")]
    output_dir: String,
    /// Local folder where a run whose --output_dir is an object-store URL is written before
    /// each upload (and resumed from).
    #[arg(
        long = "staging-dir",
        alias = "staging_dir",
        default_value = "./aml-data/.staging"
    )]
    staging_dir: PathBuf,
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
    /// Train on cot + output (true) or output alone (false: a decision-first scorer).
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    cot: bool,
    /// With --cot true: train the CoT model as a teacher (OUTPUT_DIR/teacher), then a
    /// decision-first scorer (OUTPUT_DIR/adapter, what workers score with) on the teacher's
    /// label distribution after its own reasoning, mixed with the gold label. Without it a
    /// CoT run's adapter cannot score alerts: workers refuse it.
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    distill: bool,
    /// The gold label's share of the distilled scorer's target (the teacher has the rest).
    #[arg(
        long = "distill-gold-weight",
        alias = "distill_gold_weight",
        default_value_t = 0.5
    )]
    distill_gold_weight: f64,
    /// Most tokens of reasoning the teacher writes per training input.
    #[arg(
        long = "distill-max-new-tokens",
        alias = "distill_max_new_tokens",
        default_value_t = 256
    )]
    distill_max_new_tokens: i64,
    /// Recompute activations layer by layer (less memory, about a third more compute).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, default_value_t = false)]
    recompute: bool,
    /// Where to train: auto (the first CUDA device, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Compute dtype: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16.
    #[arg(long, default_value = "auto")]
    dtype: DtypeChoice,
    /// Keep the frozen base weights in FP8 e4m3 with per-row scales (an 8B base in about 8 GB);
    /// LoRA weights, activations and optimiser state keep their precision.
    #[arg(long = "fp8-base", alias = "fp8_base", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, default_value_t = false)]
    fp8_base: bool,
    /// Pack several examples into each row up to --max_seq_len (attention never crosses two
    /// examples; --batch_size then counts packed rows).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, default_value_t = false)]
    packing: bool,
    /// Optimiser steps between validation evaluations (each writes a checkpoint); default:
    /// four evaluations per epoch, so early stopping can act within a phase.
    #[arg(long = "eval-steps", alias = "eval_steps")]
    eval_steps: Option<usize>,
    /// Export each phase's best-validation checkpoint as its adapter and start the next phase
    /// from it.
    #[arg(long = "load-best-at-end", alias = "load_best_at_end", action = ArgAction::Set, default_value_t = true)]
    load_best_at_end: bool,
    /// Write the merged model to OUTPUT_DIR/merged after training, in the base checkpoint's
    /// dtype (bf16 for Llama 3 and Mistral), in shards of at most 5 GB.
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
    /// Train under this system prompt: the policy file the workers score with
    /// (scoring.policy_url), so that training and scoring prompts are the same.
    #[arg(long = "system-prompt-file", alias = "system_prompt_file")]
    system_prompt_file: Option<PathBuf>,
    /// Who grades each phase: offline (rubric checks, no network), anthropic, perplexity or
    /// openai (the provider's key from the environment, e.g. ANTHROPIC_API_KEY).
    #[arg(
        long = "judge-provider",
        alias = "judge_provider",
        default_value = "offline"
    )]
    judge_provider: String,
    /// The LLM judge's model.
    #[arg(
        long = "judge-model",
        alias = "judge_model",
        default_value = aml_judge::DEFAULT_MODEL
    )]
    judge_model: String,
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
    /// A bank's labelled alerts (JSONL of `{"alert", "label"}`, e.g. past dispositions):
    /// after training the final model scores them with the validation set, through the
    /// workers' prompt and scorer, to calibrate the cascade (OUTPUT_DIR/calibration.json).
    #[arg(long = "calibration-file", alias = "calibration_file")]
    calibration_file: Option<PathBuf>,
    /// Recall of MATCH and EDGE the calibration certifies.
    #[arg(
        long = "calibration-recall",
        alias = "calibration_recall",
        default_value_t = 0.99
    )]
    calibration_recall: f64,
    /// Confidence of the calibration's lower bound on recall.
    #[arg(
        long = "calibration-confidence",
        alias = "calibration_confidence",
        default_value_t = 0.95
    )]
    calibration_confidence: f64,
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

/// The trainer configuration the flags describe.
fn trainer_config(args: &TrainArgs) -> anyhow::Result<TrainerConfig> {
    let optimizer = match args.optimizer.as_str() {
        "adamw" => OptimizerKind::Adamw,
        "lion" => OptimizerKind::Lion,
        other => bail!("unknown --optimizer `{other}`: expected adamw or lion"),
    };
    Ok(TrainerConfig {
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
        distill: args.distill,
        distill_gold_weight: args.distill_gold_weight,
        distill_max_new_tokens: args.distill_max_new_tokens,
        recompute: args.recompute,
        device: args.device,
        dtype: args.dtype,
        fp8_base: args.fp8_base,
        packing: args.packing,
        eval_steps: args.eval_steps,
        load_best_at_end: args.load_best_at_end,
        merge_lora: args.merge_lora,
        hub_model_id: args.hub_model_id.clone().filter(|_| args.push_to_hub),
        calibration_file: args.calibration_file.clone(),
        calibration_recall: args.calibration_recall,
        calibration_confidence: args.calibration_confidence,
        seed: args.seed,
        run_judge: args.run_judge,
        judge_items: args.judge_items,
        judge_max_new_tokens: args.judge_max_new_tokens,
        judge_provider: args.judge_provider.clone(),
        judge_model: args.judge_model.clone(),
        system_prompt: match &args.system_prompt_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("--system_prompt_file {}", path.display()))?,
            ),
            None => None,
        },
        gate: Gate {
            min_accuracy: args.gate_min_accuracy,
            min_positive_recall: args.gate_min_positive_recall,
            min_rubric: args.gate_min_rubric,
        },
        ..TrainerConfig::default()
    })
}

/// The output folder: local, or an object-store URL under the configured storage, staged in
/// --staging_dir.
fn output_folder(app: &AmlConfig, args: &TrainArgs) -> anyhow::Result<StagedFolder> {
    let url = &args.output_dir;
    if !url.contains("://") || url.starts_with("file://") {
        return Ok(StagedFolder::Local(PathBuf::from(
            url.strip_prefix("file://").unwrap_or(url),
        )));
    }
    let storage = app.storage.open(&app.storage.url)?;
    storage.folder(url, &args.staging_dir).with_context(|| {
        format!("--output_dir {url} (set AML_STORAGE__URL to the storage it lies in)")
    })
}

/// Trains and writes the outputs.
pub async fn run(app: &AmlConfig, args: &TrainArgs) -> anyhow::Result<()> {
    if args.push_to_hub && args.hub_model_id.is_none() {
        bail!("--push_to_hub true needs --hub_model_id OWNER/NAME");
    }
    let mut config = trainer_config(args)?;
    let credentials = app.providers.variables();
    config.judge_credentials = aml_judge::Credentials(credentials.clone());
    let push_to = config.hub_model_id.clone();
    let hub = HubClient::from_environment(&credentials)?;
    let base_dir = hub
        .model_folder(&args.model_id, &args.revision, &args.hub_cache, || {
            eprintln!(
                "downloading {}@{} from the Hub",
                args.model_id, args.revision
            )
        })
        .await
        .with_context(|| format!("--model_id {}", args.model_id))?;
    let output = output_folder(app, args)?;
    let resumed = output
        .fetch_output()
        .await
        .with_context(|| format!("reading {}", args.output_dir))?;
    if resumed > 0 {
        eprintln!(
            "{resumed} files of {} fetched to resume from",
            args.output_dir
        );
    }
    let job = TrainingJob {
        paths: RunPaths {
            base_dir,
            base_name: args.model_id.clone(),
            data_dir: args.data_dir.clone(),
            out: output.dir().to_owned(),
        },
        config,
    };
    let (smoke, url) = (args.smoke, args.output_dir.clone());
    let blocking_output = output.clone();
    let trained =
        tokio::task::spawn_blocking(move || train_locally(job, smoke, &blocking_output, &url))
            .await??;
    if !trained {
        return Ok(());
    }
    if let Some(synced) = output.upload().await.with_context(|| {
        format!(
            "uploading {} to {}",
            output.dir().display(),
            args.output_dir
        )
    })? {
        println!("{}", synced_text(synced, &args.output_dir));
    }
    println!("adapter in {}", output.dir().join("adapter").display());
    if let Some(repo) = push_to.as_deref() {
        let commit = hub
            .push_folder(
                repo,
                output.dir(),
                &format!("aml train: curriculum LoRA on {}", args.model_id),
            )
            .await
            .with_context(|| format!("pushing {} to {repo}", output.dir().display()))?;
        println!("pushed to the Hub: {commit}");
    }
    Ok(())
}

/// Plans the run (printing what it will do), then trains it or runs the smoke step, on a
/// blocking thread; false when only the smoke step ran.
fn train_locally(
    job: TrainingJob,
    smoke: bool,
    output: &StagedFolder,
    url: &str,
) -> anyhow::Result<bool> {
    let out = job.paths.out.clone();
    let plan = job.plan()?;
    eprintln!("{}", plan.summary());
    if smoke {
        let (before, after) = plan.smoke()?;
        println!("smoke: one step on 2 easy samples, loss {before:.4} -> {after:.4}");
        return Ok(false);
    }
    std::fs::create_dir_all(&out).with_context(|| format!("failed to create {}", out.display()))?;
    std::fs::write(
        out.join("config.json"),
        serde_json::to_vec_pretty(&plan.job.config)?,
    )?;
    let mut progress = CliProgress::new(output, url, tokio::runtime::Handle::current());
    let outcome = plan.train(&mut progress)?;
    progress.finish();
    println!(
        "{:<8} {:>6} {:>6} {:>5} {:>10} {:>10} {:>10} {:>8} {:>9} {:>7} {:>9}",
        "phase",
        "epochs",
        "steps",
        "evals",
        "first loss",
        "last loss",
        "best eval",
        "adapter",
        "tokens/s",
        "MFU",
        "lr"
    );
    for phase in &outcome.state.phases {
        let mfu = plan
            .mfu(phase)
            .map_or("-".to_owned(), |mfu| format!("{:.1}%", 100.0 * mfu));
        println!(
            "{:<8} {:>6} {:>6} {:>5} {:>10.4} {:>10.4} {:>10.4} {:>8} {:>9.0} {mfu:>7} {:>9.2e}{}",
            phase.phase,
            phase.epochs,
            phase.steps,
            phase.evaluations,
            phase.first_epoch_loss,
            phase.last_epoch_loss,
            phase.best_eval_loss,
            phase.adapter_step,
            phase.tokens_per_second(),
            phase.learning_rate,
            if phase.early_stopped {
                "  (early stop)"
            } else {
                ""
            }
        );
    }
    if let Some(report) = &outcome.distillation {
        println!(
            "distilled scorer (adapter/) vs CoT teacher (teacher/adapter) on {} validation inputs: agreement {:.1}%, mean total variation {:.3}; accuracy: teacher {:.1}%, scorer {:.1}% (distillation.json)",
            report.items,
            100.0 * report.agreement,
            report.mean_total_variation,
            100.0 * report.teacher_accuracy,
            100.0 * report.scorer_accuracy
        );
    } else if plan.job.config.cot {
        eprintln!(
            "warning: adapter/ was trained reasoning-first (--cot true --distill false): workers refuse it; it serves rationales and the judge"
        );
    }
    if let Some((folder, kind)) = &outcome.merged {
        println!("merged weights ({kind:?}) in {}", folder.display());
    }
    match &outcome.calibration {
        Ok(calibration) => {
            println!(
                "calibration.json: {}",
                crate::commands::calibrate::describe(calibration)
            );
            if let Some(needed) = calibration.positives_needed {
                println!(
                    "  to certify it, give --calibration_file with labelled alerts: at least {needed} positives (MATCH or EDGE), all found"
                );
            }
        }
        Err(reason) => eprintln!("warning: no calibration.json: {reason}"),
    }
    Ok(true)
}
