//! `aml calibrate`: pick tau on labelled data so that recall of MATCH and EDGE stays at a
//! target, and report the false-positive rate there.

use std::collections::HashMap;
use std::path::PathBuf;

use aml_core::Label;
use aml_core::metrics::{ScoredItem, ThresholdMetrics};
use aml_proto::v1::ScoreResult;
use anyhow::{Context, bail};
use serde_json::json;

use crate::commands::prescreen::read_labelled;

/// Options of `aml calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Result files (JSONL of ScoreResult, as workers write them) or folders holding them.
    #[arg(long, required = true, num_args = 1..)]
    results: Vec<PathBuf>,
    /// Gold labels: JSONL of `{"alert": {...}, "label": "match"}`.
    #[arg(long)]
    gold: PathBuf,
    /// Recall of MATCH and EDGE to keep.
    #[arg(long, default_value_t = 0.99)]
    recall: f64,
}

fn result_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("failed to list {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.extension().is_some_and(|ext| ext == "jsonl"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads every result line; an error names the file and line.
pub fn read_results(paths: &[PathBuf]) -> anyhow::Result<Vec<ScoreResult>> {
    let mut results = Vec::new();
    for file in result_files(paths)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("failed to read {}", file.display()))?;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            results.push(serde_json::from_str(line).with_context(|| {
                format!("{}:{}: not a score result", file.display(), index + 1)
            })?);
        }
    }
    Ok(results)
}

/// tau for the recall target and the false-positive rate there, as JSON.
pub fn calibrate(
    results: &[ScoreResult],
    gold: &HashMap<String, Label>,
    recall: f64,
) -> anyhow::Result<serde_json::Value> {
    let mut items = Vec::new();
    let mut unlabelled = 0;
    for result in results {
        match gold.get(&result.alert_id) {
            Some(label) => items.push(ScoredItem {
                score: result.score,
                positive: *label != Label::NoMatch,
            }),
            None => unlabelled += 1,
        }
    }
    if items.is_empty() {
        bail!("no result has a gold label (alert ids do not overlap)");
    }
    let metrics = ThresholdMetrics::new(items.iter().copied());
    let Some(tau) = metrics.tau_for_recall(recall) else {
        bail!("the gold labels hold no MATCH or EDGE: recall cannot be measured");
    };
    Ok(json!({
        "tau": tau,
        "recall_target": recall,
        "recall": metrics.recall_at(tau),
        "false_positive_rate": metrics.fpr_at(tau),
        "positives": items.iter().filter(|item| item.positive).count(),
        "negatives": items.iter().filter(|item| !item.positive).count(),
        "results_without_gold": unlabelled,
    }))
}

/// Runs `aml calibrate`.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    let results = read_results(&args.results)?;
    let gold: HashMap<String, Label> = read_labelled(&args.gold)?
        .into_iter()
        .map(|item| (item.alert.alert_id, item.label))
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&calibrate(&results, &gold, args.recall)?)?
    );
    Ok(())
}
