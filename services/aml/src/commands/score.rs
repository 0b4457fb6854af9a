//! `aml score`: a bank's ad-hoc run of the worker's scoring on a JSONL file of alerts, with
//! the worker's code (the engine behind its owner thread, the one score-then-rationale loop)
//! and its results format (JSONL of ScoreResult with the Arrow IPC twin beside it). A model
//! or adapter trained reasoning-first is refused as the worker refuses it. The prescreen is
//! not applied: every alert goes to the model (its prescreen score is kept in the result).

use std::path::PathBuf;

use aml_core::{DeviceChoice, DtypeChoice};
use aml_model::LoadOptions;
use aml_scoring::{
    DEFAULT_PREFIX_BUDGET_BYTES, EngineHandle, EngineSource, ShardProgress, ShardSettings,
    score_shard,
};
use aml_storage::Storage;
use anyhow::Context;
use tokio::sync::watch;

use crate::commands::alerts::read_alerts;

/// Options of `aml score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The model folder (Hugging Face layout), or the run's merged/ folder.
    #[arg(long)]
    model: PathBuf,
    /// A PEFT adapter folder (a run's adapter/, its decision-first scorer).
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// JSONL, one Alert per line, as `aml alerts push` reads them.
    #[arg(long)]
    alerts: PathBuf,
    /// Where the results go: JSONL of ScoreResult as the worker writes them, and the Arrow IPC
    /// twin beside it (`.arrow`).
    #[arg(long)]
    out: PathBuf,
    /// The policy document (the shared prefix); default: the built-in one (`aml batch policy`).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Write a rationale for every escalated alert.
    #[arg(long)]
    rationale: bool,
    /// Escalation threshold on P(MATCH) + P(EDGE); default: the tau of --calibration, else 0.5.
    #[arg(long)]
    tau: Option<f64>,
    /// A run's calibration.json, whose tau is used unless --tau is given.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Alerts per forward pass (and per batch of rationales).
    #[arg(long = "batch-size", default_value_t = 16)]
    batch_size: usize,
    /// Where the model runs: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Compute dtype: auto, f32 or bf16.
    #[arg(long, default_value = "auto")]
    dtype: DtypeChoice,
}

/// The threshold: --tau, else the calibration's, else 0.5.
fn threshold(args: &ScoreArgs) -> anyhow::Result<f64> {
    if let Some(tau) = args.tau {
        return Ok(tau);
    }
    let Some(file) = &args.calibration else {
        return Ok(0.5);
    };
    let text = std::fs::read(file).with_context(|| format!("--calibration {}", file.display()))?;
    let calibration: aml_core::cascade::Calibration = serde_json::from_slice(&text)
        .with_context(|| format!("--calibration {}: not a calibration.json", file.display()))?;
    Ok(calibration.tau)
}

/// Scores the file's alerts and writes the results; prints a one-line summary.
pub async fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    let alerts = read_alerts(&args.alerts, None)?;
    let tau = threshold(args)?;
    let policy = match &args.policy {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("--policy {}", file.display()))?
        }
        None => aml_core::policy::DEFAULT_POLICY.to_owned(),
    };
    let options =
        LoadOptions::resolve(args.device, args.dtype, false).context("--device / --dtype")?;
    let engine = EngineHandle::load(EngineSource {
        model_dir: args.model.clone(),
        adapter_dir: args.adapter.clone(),
        options,
        prefix_budget_bytes: DEFAULT_PREFIX_BUDGET_BYTES,
    })
    .await
    .context("cannot load the model")?;
    let settings = ShardSettings {
        batch_size: args.batch_size,
        tau,
        rationale_tokens: args.rationale.then_some(aml_scoring::RATIONALE_TOKENS),
    };
    let (progress, _watched) = watch::channel(ShardProgress::default());
    let started = std::time::Instant::now();
    let results = score_shard(&engine, &policy, &alerts, &settings, &progress).await?;
    let seconds = started.elapsed().as_secs_f64();

    let out =
        std::path::absolute(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let (folder, name) = match (out.parent(), out.file_name()) {
        (Some(folder), Some(name)) => (folder, name.to_string_lossy().into_owned()),
        _ => anyhow::bail!("--out {}: not a file path", args.out.display()),
    };
    std::fs::create_dir_all(folder).with_context(|| format!("--out {}", folder.display()))?;
    let storage = Storage::open(&format!("file://{}", folder.display()), &Default::default())?;
    aml_batch::put_results(&storage, &name, &results)
        .await
        .with_context(|| format!("--out {}", out.display()))?;
    let escalated = results.iter().filter(|result| result.escalated).count();
    println!(
        "{}: {} alerts scored in {seconds:.1} s, {escalated} escalated at tau {tau:.4}{}; results in {} (and {})",
        args.alerts.display(),
        results.len(),
        if args.rationale {
            " with rationales"
        } else {
            ""
        },
        out.display(),
        folder.join(aml_batch::layout::columnar(&name)).display()
    );
    Ok(())
}
