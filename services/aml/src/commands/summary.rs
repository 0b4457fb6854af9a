//! `aml summary`: the end-of-lifecycle table (what `make demo` ends with): data counts, loss
//! and judge metrics per phase, the calibration training produced, the batch report with each
//! bank's thresholds, drift and answer mass, the deployed cascade's recall on the batch's gold
//! labels with its lower confidence bound and the false-positive rate with its interval, and
//! `aml plan`'s estimate for the same batch at 8B.

use std::path::PathBuf;

use aml_batch::{cascade_items, layout, read_gold};
use aml_core::capacity::{Workload, gpu};
use aml_core::cascade::{Calibration, CascadeCounts, Thresholds, cascade_counts};
use aml_core::stats::{clopper_pearson_interval, clopper_pearson_lower};
use aml_dataset::Manifest;
use aml_judge::JudgeReport;
use aml_proto::v1::{BatchReport, ScoreResult};
use aml_runtime::AmlConfig;
use aml_trainer::TrainerState;
use anyhow::Context;

use crate::commands::calibrate::describe;

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
    /// Confidence of the recall's lower bound.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: unexpected content", path.display()))
}

/// Prints the table.
pub async fn run(config: &AmlConfig, args: &SummaryArgs) -> anyhow::Result<()> {
    let manifest: Manifest = read_json(&args.data.join("manifest.json"))?;
    let state: TrainerState = read_json(&args.run.join("trainer_state.json"))?;
    let storage = config.storage.open(&config.storage.url)?;
    let report: BatchReport = storage.get_json(&layout::report(&args.batch)).await?;
    let gold = read_gold(&args.gold)?;
    let mut cascade = CascadeCounts::default();
    for (bank, summary) in &report.per_bank {
        let mut results: Vec<ScoreResult> = Vec::new();
        for key in storage
            .list(&layout::results_prefix(bank, &args.batch))
            .await?
        {
            results.extend(storage.get_jsonl::<ScoreResult>(&key).await?);
        }
        let thresholds = Thresholds {
            prescreen_cutoff: summary.prescreen_cutoff,
            tau: summary.tau,
        };
        let counts = cascade_counts(&cascade_items(&results, &gold).0, thresholds);
        cascade = cascade + counts;
    }
    let trained: Option<Calibration> = read_json(&args.run.join("calibration.json")).ok();

    println!("\n== AML screening lifecycle: summary ==");
    println!("data      | {}", files_line(&manifest));
    println!(
        "training  | phase   | epochs | first loss | last loss | best eval loss | judge acc | recall MATCH | macro-F1 | rubric"
    );
    for phase in &state.phases {
        // A phase judged nothing when it has no report; a report that does not read is an error.
        let report_file = args.run.join(&phase.phase).join("eval_report.json");
        let judge: Option<JudgeReport> = match report_file.exists() {
            true => Some(read_json(&report_file)?),
            false => None,
        };
        let figure = |value: Option<f64>, digits: usize| {
            value.map_or("-".to_owned(), |value| format!("{value:.digits$}"))
        };
        let metrics = judge.as_ref().map(|report| &report.classification);
        let (accuracy, recall, macro_f1, rubric) = (
            figure(metrics.map(|m| m.accuracy), 3),
            figure(metrics.map(|m| m.recall_match), 3),
            figure(metrics.map(|m| m.macro_f1), 3),
            figure(judge.as_ref().map(|report| report.rubric_mean), 2),
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
    if let Some(calibration) = &trained {
        println!(
            "calibrate | training's calibration.json: {}",
            describe(calibration)
        );
    }
    let cleared: u64 = report
        .per_bank
        .values()
        .map(|bank| bank.cleared_by_prescreen)
        .sum();
    println!(
        "batch     | {}: {} alerts from {} banks, {} scored by the model, {} cleared by the prescreen, {} escalated",
        report.batch_id,
        report.alerts_in,
        report.per_bank.len(),
        report.scored,
        cleared,
        report.escalated,
    );
    for (bank, summary) in &report.per_bank {
        let calibration = summary.calibration.as_ref().map_or_else(
            || "uncalibrated".to_owned(),
            |figures| {
                format!(
                    "{} ({}, recall lower bound {:.4})",
                    if figures.certified {
                        "certified"
                    } else {
                        "not certified"
                    },
                    figures.url,
                    figures.recall_lower_bound
                )
            },
        );
        let psi = summary
            .psi
            .map_or_else(|| "-".to_owned(), |psi| format!("{psi:.3}"));
        println!(
            "          | {bank:<8} tau {:.7}, prescreen cutoff {:.4}, {calibration}; flagged {:.1}%, PSI {psi}, answer mass {:.4}",
            summary.tau,
            summary.prescreen_cutoff,
            100.0 * summary.flagged_share,
            summary.answer_mass_mean
        );
    }
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
    for warning in &report.warnings {
        println!("warning   | {warning}");
    }
    let lower = clopper_pearson_lower(cascade.true_positives, cascade.positives, args.confidence);
    let [fpr_low, fpr_high] =
        clopper_pearson_interval(cascade.false_positives, cascade.negatives, 0.95);
    println!(
        "cascade   | on the batch's gold labels: recall {:.4} (lower bound {lower:.4} at {:.0}% confidence; {} positives, {} cleared by the prescreen, {} below tau), false-positive rate {:.4} [{fpr_low:.4}, {fpr_high:.4}] ({} negatives)",
        cascade.recall(),
        100.0 * args.confidence,
        cascade.positives,
        cascade.cleared_positives,
        cascade.below_tau_positives,
        cascade.false_positive_rate(),
        cascade.negatives
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

fn files_line(manifest: &Manifest) -> String {
    let count = |name: &str| manifest.files.get(name).map_or(0, |file| file.records);
    format!(
        "easy {}, medium {}, hard {} training samples; validation {}",
        count("easy.jsonl"),
        count("medium.jsonl"),
        count("hard.jsonl"),
        count("validation.jsonl")
    )
}
