//! `aml summary`: the end-of-lifecycle table (what `make demo` ends with): data counts, loss
//! and judge metrics per phase, the batch report, tau and the false-positive rate at the
//! recall target on the batch's results, and `aml plan`'s estimate for the same batch at 8B.

use std::collections::HashMap;
use std::path::PathBuf;

use aml_batch::layout;
use aml_core::Label;
use aml_core::capacity::{Workload, gpu};
use aml_proto::v1::{BatchReport, ScoreResult};
use aml_runtime::AmlConfig;
use aml_storage::Storage;
use aml_trainer::TrainerState;
use anyhow::Context;

use crate::commands::calibrate::calibrate;
use crate::commands::prescreen::read_labelled;

/// Options of `aml summary`.
#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// The validated dataset folder (holds manifest.json).
    #[arg(long)]
    data: PathBuf,
    /// The training output folder (trainer_state.json, <tier>/eval_report.json).
    #[arg(long)]
    run: PathBuf,
    /// The scoring batch.
    #[arg(long)]
    batch: String,
    /// Gold labels of the batch's alerts (`aml alerts synth` writes them).
    #[arg(long)]
    gold: PathBuf,
    /// Recall target for tau.
    #[arg(long, default_value_t = 0.99)]
    recall: f64,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: unexpected content", path.display()))
}

/// Prints the table.
pub async fn run(config: &AmlConfig, args: &SummaryArgs) -> anyhow::Result<()> {
    let manifest: serde_json::Value = read_json(&args.data.join("manifest.json"))?;
    let state: TrainerState = read_json(&args.run.join("trainer_state.json"))?;
    let storage = Storage::open_configured(&config.storage.url, &config.storage)?;
    let report: BatchReport = storage.get_json(&layout::report(&args.batch)).await?;
    let mut results: Vec<ScoreResult> = Vec::new();
    for bank in report.per_bank.keys() {
        for key in storage
            .list(&layout::results_prefix(bank, &args.batch))
            .await?
        {
            results.extend(storage.get_jsonl::<ScoreResult>(&key).await?);
        }
    }
    let gold: HashMap<String, Label> = read_labelled(&args.gold)?
        .into_iter()
        .map(|item| (item.alert.alert_id, item.label))
        .collect();
    let calibration = calibrate(&results, &gold, args.recall)?;

    println!("\n== AML screening lifecycle: summary ==");
    println!("data      | {}", files_line(&manifest));
    println!(
        "training  | phase   | epochs | first loss | last loss | best eval loss | judge acc | recall MATCH | macro-F1 | rubric"
    );
    for phase in &state.phases {
        let judge: Option<serde_json::Value> =
            read_json(&args.run.join(&phase.phase).join("eval_report.json")).ok();
        let metric = |name: &str, digits: usize| {
            judge
                .as_ref()
                .and_then(|report| {
                    report
                        .get(name)
                        .or_else(|| report.get("classification").and_then(|c| c.get(name)))
                })
                .and_then(serde_json::Value::as_f64)
                .map_or("-".to_owned(), |value| format!("{value:.digits$}"))
        };
        let (accuracy, recall, macro_f1, rubric) = (
            metric("accuracy", 3),
            metric("recall_match", 3),
            metric("macro_f1", 3),
            metric("rubric_mean", 2),
        );
        println!(
            "          | {:<7} | {:>6} | {:>10.4} | {:>9.4} | {:>14.4} | {accuracy:>9} | {recall:>12} | {macro_f1:>8} | {rubric:>6}",
            phase.phase,
            phase.epochs,
            phase.first_epoch_loss,
            phase.last_epoch_loss,
            phase.best_eval_loss
        );
    }
    let cleared: u64 = report
        .per_bank
        .values()
        .map(|bank| bank.cleared_by_prescreen)
        .sum();
    println!(
        "batch     | {}: {} alerts from {} banks, {} scored by the model, {} cleared by the prescreen, {} escalated at tau {:.2}",
        report.batch_id,
        report.alerts_in,
        report.per_bank.len(),
        report.scored,
        cleared,
        report.escalated,
        report.tau
    );
    println!(
        "          | completion {:.1}%, {:.1} alerts/s, {} shards ({} republished), prefix encoded {} time(s), {:.1} model-seconds, ${:.5}",
        report.completion_rate * 100.0,
        report.alerts_per_s,
        report.shards,
        report.shards_republished,
        report.prefix_encodes,
        report.gpu_seconds,
        report.cost_usd
    );
    println!(
        "calibrate | tau {:.7} for recall >= {:.2}: recall {:.4}, false-positive rate {:.4} ({} positives, {} negatives)",
        calibration["tau"].as_f64().unwrap_or(f64::NAN),
        args.recall,
        calibration["recall"].as_f64().unwrap_or(f64::NAN),
        calibration["false_positive_rate"]
            .as_f64()
            .unwrap_or(f64::NAN),
        calibration["positives"],
        calibration["negatives"]
    );
    let card = gpu("a100-80gb").context("the A100 is in the GPU table")?;
    let plan = Workload {
        jobs: report.alerts_in as f64,
        ..Workload::default()
    }
    .compare(card, card.price_per_hour);
    println!(
        "plan (8B)  | {} alerts x 200 tokens behind a 30k prefix on A100-80GB: {:.3} GPU-hours, ${:.2} cached; {:.2} GPU-hours, ${:.2} uncached",
        report.alerts_in,
        plan.cached.gpu_hours,
        plan.cached.cost_usd,
        plan.uncached.gpu_hours,
        plan.uncached.cost_usd
    );
    Ok(())
}

fn files_line(manifest: &serde_json::Value) -> String {
    let count = |name: &str| manifest["files"][name]["records"].as_u64().unwrap_or(0);
    format!(
        "easy {}, medium {}, hard {} training samples; validation {}",
        count("easy.jsonl"),
        count("medium.jsonl"),
        count("hard.jsonl"),
        count("validation.jsonl")
    )
}
