//! `aml train`: the user's `train_unsloth_curriculum.py` command line, on our runtime.

use std::path::PathBuf;

use aml_hub::{HubClient, check_repo_id};
use aml_model::merge::merge_and_save;
use aml_model::{CausalLm, LoadOptions, TextTokenizer};
use aml_runtime::AmlConfig;
use aml_storage::{DirSync, Storage};
use aml_trainer::evaluation::Gate;
use aml_trainer::optim::OptimizerKind;
use aml_trainer::{
    Observer, PhaseSummary, StepProgress, TrainError, TrainerConfig, smoke_step,
    train_curriculum_observed,
};
use anyhow::{Context, bail};
use clap::ArgAction;
use indicatif::{ProgressBar, ProgressStyle};

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
        default_value = "claude-3-5-sonnet-latest"
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

/// The base model's folder: `model_id` itself when it is a local directory, else the Hub
/// snapshot downloaded into the cache.
async fn base_model_dir(args: &TrainArgs, hub: &HubClient) -> anyhow::Result<PathBuf> {
    let local = PathBuf::from(&args.model_id);
    if local.is_dir() {
        if !local.join("config.json").exists() {
            bail!(
                "--model_id {}: config.json missing, not a Hugging Face model directory",
                local.display()
            );
        }
        return Ok(local);
    }
    check_repo_id(&args.model_id).with_context(|| {
        format!(
            "--model_id {}: neither a local directory nor a Hub id",
            args.model_id
        )
    })?;
    eprintln!(
        "downloading {}@{} from the Hub",
        args.model_id, args.revision
    );
    let folder = hub
        .download_model(&args.model_id, &args.revision, &args.hub_cache)
        .await
        .with_context(|| format!("--model_id {}", args.model_id))?;
    Ok(folder)
}

/// Trains and writes the outputs.
pub async fn run(app: &AmlConfig, args: &TrainArgs) -> anyhow::Result<()> {
    if args.push_to_hub && args.hub_model_id.is_none() {
        bail!("--push_to_hub true needs --hub_model_id OWNER/NAME");
    }
    let environment: Vec<(String, String)> = std::env::vars().collect();
    let hub = HubClient::from_environment(&environment)?;
    let model_dir = base_model_dir(args, &hub).await?;
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
    };
    let base = args.model_id.clone();
    let remote = remote_output(app, args)?;
    let output_dir = match &remote {
        Some(remote) => {
            let resumed = remote
                .storage
                .get_dir(&remote.key, &remote.staging)
                .await
                .with_context(|| format!("reading {}", args.output_dir))?;
            if resumed > 0 {
                eprintln!(
                    "{resumed} files of {} fetched to resume from",
                    args.output_dir
                );
            }
            remote.staging.clone()
        }
        None => PathBuf::from(
            args.output_dir
                .strip_prefix("file://")
                .unwrap_or(&args.output_dir),
        ),
    };
    let local = LocalRun {
        model_dir,
        data_dir: args.data_dir.clone(),
        output_dir: output_dir.clone(),
        smoke: args.smoke,
        merge_lora: args.merge_lora,
        base: base.clone(),
        config,
        upload: remote.clone(),
    };
    let trained = tokio::task::spawn_blocking(move || train_locally(&local)).await??;
    if !trained {
        return Ok(());
    }
    if let Some(remote) = &remote {
        let synced = remote.upload(&output_dir).await?;
        println!("{}", synced_text(synced, &args.output_dir));
    }
    println!("adapter in {}", output_dir.join("adapter").display());
    if let Some(repo) = args.hub_model_id.as_deref().filter(|_| args.push_to_hub) {
        let commit = hub
            .push_folder(
                repo,
                &output_dir,
                &format!("aml train: curriculum LoRA on {base}"),
            )
            .await
            .with_context(|| format!("pushing {} to {repo}", output_dir.display()))?;
        println!("pushed to the Hub: {commit}");
    }
    Ok(())
}

/// An --output_dir in object storage: where it is and the local folder it is staged in.
#[derive(Debug, Clone)]
struct RemoteOutput {
    storage: Storage,
    key: String,
    staging: PathBuf,
    url: String,
}

impl RemoteOutput {
    /// Makes the stored output a copy of the staged folder (checkpoints included, so another
    /// machine can resume; those rotated away are deleted).
    async fn upload(&self, dir: &std::path::Path) -> anyhow::Result<DirSync> {
        self.storage
            .sync_dir(dir, &self.key)
            .await
            .with_context(|| format!("uploading {} to {}", dir.display(), self.url))
    }
}

/// "N files uploaded to URL", with the objects deleted there when there were any.
fn synced_text(synced: DirSync, url: &str) -> String {
    match synced.deleted {
        0 => format!("{} files uploaded to {url}", synced.uploaded),
        deleted => format!(
            "{} files uploaded to {url} ({deleted} objects no longer in the run deleted, such as rotated checkpoints)",
            synced.uploaded
        ),
    }
}

/// The object-store output of `args`, which must lie under the configured storage.
fn remote_output(app: &AmlConfig, args: &TrainArgs) -> anyhow::Result<Option<RemoteOutput>> {
    let url = &args.output_dir;
    if !url.contains("://") || url.starts_with("file://") {
        return Ok(None);
    }
    let storage = Storage::open_configured(&app.storage.url, &app.storage)?;
    let key = storage
        .key_of(url)
        .with_context(|| {
            format!(
                "--output_dir {url} is not under the configured storage {} (set AML_STORAGE__URL)",
                storage.url()
            )
        })?
        .trim_matches('/')
        .to_owned();
    if key.is_empty() {
        bail!("--output_dir {url}: name a folder inside the bucket, e.g. {url}/models/run-1");
    }
    Ok(Some(RemoteOutput {
        staging: args.staging_dir.join(&key),
        key,
        storage,
        url: url.clone(),
    }))
}

/// What the blocking part of `aml train` needs.
struct LocalRun {
    model_dir: PathBuf,
    data_dir: PathBuf,
    output_dir: PathBuf,
    smoke: bool,
    merge_lora: bool,
    base: String,
    config: TrainerConfig,
    /// Where each finished phase is uploaded, for an object-store --output_dir.
    upload: Option<RemoteOutput>,
}

/// Loads the model and trains it (or runs the smoke step), on a blocking thread; false when
/// only the smoke step ran.
fn train_locally(run: &LocalRun) -> anyhow::Result<bool> {
    let tokenizer = TextTokenizer::load(&run.model_dir)?;
    let mut model = CausalLm::load(&run.model_dir, LoadOptions::cpu_f32())
        .with_context(|| format!("failed to load {}", run.model_dir.display()))?;
    if run.smoke {
        let (before, after) = smoke_step(&mut model, &tokenizer, &run.data_dir, &run.config)?;
        println!("smoke: one step on 2 easy samples, loss {before:.4} -> {after:.4}");
        return Ok(false);
    }
    std::fs::create_dir_all(&run.output_dir)
        .with_context(|| format!("failed to create {}", run.output_dir.display()))?;
    std::fs::write(
        run.output_dir.join("config.json"),
        serde_json::to_vec_pretty(&run.config)?,
    )?;
    let mut progress = CliProgress {
        bar: None,
        upload: run.upload.as_ref(),
        output_dir: &run.output_dir,
        runtime: tokio::runtime::Handle::current(),
    };
    let state = train_curriculum_observed(
        &mut model,
        &tokenizer,
        &run.data_dir,
        &run.config,
        &run.base,
        &run.output_dir,
        &mut progress,
    )?;
    if let Some((_, bar)) = progress.bar.take() {
        bar.finish_and_clear();
    }
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
    if run.merge_lora {
        let merged = run.output_dir.join("merged");
        merge_and_save(
            &model,
            &run.model_dir,
            &merged,
            tch::Kind::Float,
            5_000_000_000,
        )?;
        println!("merged weights in {}", merged.display());
        let readme = aml_trainer::report::readme(&run.base, run.config.lora_r, true);
        std::fs::write(run.output_dir.join("README.md"), readme)?;
    }
    Ok(true)
}

/// The terminal's view of a run: one progress bar per phase epoch (hidden when stderr is not
/// a terminal) and, for an object-store --output_dir, an upload after each phase.
struct CliProgress<'a> {
    bar: Option<((String, usize), ProgressBar)>,
    upload: Option<&'a RemoteOutput>,
    output_dir: &'a std::path::Path,
    runtime: tokio::runtime::Handle,
}

impl Observer for CliProgress<'_> {
    fn step(&mut self, progress: &StepProgress) {
        let key = (progress.phase.clone(), progress.epoch);
        if self.bar.as_ref().is_none_or(|(current, _)| *current != key) {
            if let Some((_, bar)) = self.bar.take() {
                bar.finish();
            }
            let bar = ProgressBar::new(progress.batches as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {pos}/{len} batches {msg} ({elapsed}, ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!(
                "{} {}/{}",
                progress.phase, progress.epoch, progress.epochs
            ));
            self.bar = Some((key, bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(progress.batches_done as u64);
            bar.set_message(format!(
                "loss {:.4} lr {:.1e}",
                progress.loss, progress.learning_rate
            ));
        }
    }

    fn phase(&mut self, summary: &PhaseSummary) -> Result<(), TrainError> {
        let Some(remote) = self.upload else {
            return Ok(());
        };
        match self.runtime.block_on(remote.upload(self.output_dir)) {
            Ok(synced) => eprintln!(
                "phase {}: {}",
                summary.phase,
                synced_text(synced, &remote.url)
            ),
            Err(error) => eprintln!(
                "phase {}: upload failed ({error:#}); it is retried at the end",
                summary.phase
            ),
        }
        Ok(())
    }
}
