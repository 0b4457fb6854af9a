//! `aml calibrate`: choose the prescreen cutoff and tau together on labelled results so that
//! the cascade's recall is certified (one-sided Clopper-Pearson lower bound at a confidence)
//! at the lowest false-positive rate, and write `calibration.json` for the scheduler.

use std::path::{Path, PathBuf};

use aml_batch::{cascade_items, read_gold, read_results_arrow};
use aml_core::cascade::{Calibration, CalibrationTarget, Fingerprints, calibrate_cascade};
use aml_core::digest::sha256_hex;
use aml_core::policy::DEFAULT_POLICY;
use aml_proto::v1::ScoreResult;
use anyhow::{Context, bail};

/// Options of `aml calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Result files as workers write them (JSONL, or Arrow `.arrow`), or folders of them;
    /// cleared alerts are the ones with a `cleared_reason`.
    #[arg(long, required = true, num_args = 1..)]
    results: Vec<PathBuf>,
    /// Gold labels: JSONL of `{"alert_id" (or "id"), "label"}` or of labelled alerts.
    #[arg(long)]
    gold: PathBuf,
    /// Recall of MATCH and EDGE to certify.
    #[arg(long, default_value_t = 0.99)]
    recall: f64,
    /// Confidence of the recall's lower bound.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Where to write calibration.json (the scheduler's `scoring.calibration_url`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the file even when the labelled set cannot certify the target
    /// (`certified: false`).
    #[arg(long)]
    uncertified: bool,
    /// The model folder the results came from (its fingerprint goes in the file).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The adapter folder the results came from.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The policy document the results were scored under (default: the built-in one).
    #[arg(long)]
    policy: Option<PathBuf>,
}

fn result_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let listed = |extension: &str| -> anyhow::Result<Vec<PathBuf>> {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("failed to list {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.extension().is_some_and(|ext| ext == extension))
                .collect();
            inside.sort();
            Ok(inside)
        };
        let jsonl = listed("jsonl")?;
        files.extend(if jsonl.is_empty() {
            listed("arrow")?
        } else {
            jsonl
        });
    }
    Ok(files)
}

/// Reads every result (JSONL lines, or Arrow files); an error names the file (and line).
pub fn read_results(paths: &[PathBuf]) -> anyhow::Result<Vec<ScoreResult>> {
    let mut results = Vec::new();
    for file in result_files(paths)? {
        if file.extension().is_some_and(|ext| ext == "arrow") {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("failed to read {}", file.display()))?;
            results.extend(
                read_results_arrow(&bytes)
                    .with_context(|| format!("{}: not a results file", file.display()))?,
            );
        } else {
            results.extend(aml_storage::read_jsonl_file::<ScoreResult>(&file)?);
        }
    }
    Ok(results)
}

/// The fingerprints a calibration made from these files holds for.
fn fingerprints(args: &CalibrateArgs) -> anyhow::Result<Fingerprints> {
    let folder = |path: &Option<PathBuf>| -> anyhow::Result<Option<String>> {
        path.as_deref()
            .map(|dir| {
                aml_storage::fingerprint_dir(dir)
                    .with_context(|| format!("cannot fingerprint {}", dir.display()))
            })
            .transpose()
    };
    let policy = match &args.policy {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("--policy {}", path.display()))?
        }
        None => DEFAULT_POLICY.to_owned(),
    };
    let gold = std::fs::read(&args.gold)
        .with_context(|| format!("failed to read {}", args.gold.display()))?;
    if args.model.is_none() {
        eprintln!(
            "warning: without --model the calibration names no model, and a scheduler refuses it"
        );
    }
    Ok(Fingerprints {
        model: folder(&args.model)?,
        adapter: folder(&args.adapter)?,
        merged: None,
        policy: Some(sha256_hex(policy.as_bytes())),
        labelled_set: Some(sha256_hex(&gold)),
    })
}

/// One line on what a calibration certifies.
pub fn describe(calibration: &Calibration) -> String {
    let verdict = if calibration.certified {
        "certified"
    } else {
        "NOT certified"
    };
    format!(
        "{verdict}: recall {:.4} >= {:.4} with {:.0}% confidence (lower bound {:.4}, {} positives), tau {:.7}, prescreen cutoff {:.4}, FPR {:.4} [{:.4}, {:.4}] ({} negatives), {:.1}% cleared by the prescreen",
        calibration.recall,
        calibration.recall_target,
        100.0 * calibration.confidence,
        calibration.recall_lower_bound,
        calibration.positives,
        calibration.tau,
        calibration.prescreen_cutoff,
        calibration.fpr,
        calibration.fpr_ci[0],
        calibration.fpr_ci[1],
        calibration.negatives,
        100.0 * calibration.cleared_share
    )
}

/// Writes `calibration` as pretty JSON to `path`.
pub fn write_calibration(path: &Path, calibration: &Calibration) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(calibration)?)
        .with_context(|| format!("failed to write {}", path.display()))
}

/// Runs `aml calibrate`.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    let results = read_results(&args.results)?;
    let gold = read_gold(&args.gold)?;
    let (items, unlabelled) = cascade_items(&results, &gold);
    if items.is_empty() {
        bail!(
            "no result has a gold label in {} (alert ids do not overlap)",
            args.gold.display()
        );
    }
    if unlabelled > 0 {
        eprintln!("{unlabelled} results have no gold label and are left out");
    }
    let target = CalibrationTarget {
        recall: args.recall,
        confidence: args.confidence,
    };
    let mut calibration = calibrate_cascade(&items, target)?;
    calibration.sha256 = fingerprints(args)?;
    calibration.created_unix_ms = chrono::Utc::now().timestamp_millis();
    println!("{}", serde_json::to_string_pretty(&calibration)?);
    eprintln!("{}", describe(&calibration));
    if !calibration.certified && !args.uncertified {
        bail!(
            "the labelled set cannot certify recall {} at {:.0}% confidence: it holds {} positives; at least {} positives, all found, are needed (--uncertified writes the file anyway)",
            args.recall,
            100.0 * args.confidence,
            calibration.positives,
            calibration
                .positives_needed
                .map_or_else(|| "more".to_owned(), |needed| needed.to_string())
        );
    }
    if let Some(out) = &args.out {
        write_calibration(out, &calibration)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
