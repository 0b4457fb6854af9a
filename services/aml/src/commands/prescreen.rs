//! `aml prescreen`: score name pairs from a CSV (header with `name1`, `name2`, optional
//! `schema` as FollowTheMoney names it) to stdout, or calibrate the prescreen cutoff on
//! labelled alerts.

use std::io::Write;
use std::path::PathBuf;

use aml_core::labelled::LabelledAlert;
use aml_prescreen::calibrate_cutoff;
use aml_prescreen::pairs::read_pairs;
use anyhow::{Context, bail};

/// Options of `aml prescreen`.
#[derive(Debug, clap::Args)]
pub struct PrescreenArgs {
    /// CSV with a header naming `name1` and `name2` (and optionally `schema`: Person,
    /// Company, Organization, LegalEntity, Vessel, Airplane, ... as FollowTheMoney names them;
    /// other columns ignored); prints `score` per row, or nothing when a row is bad.
    #[arg(long, conflicts_with = "alerts")]
    pairs: Option<PathBuf>,
    /// Labelled alerts (JSONL of `{"alert": {...}, "label": "match"}`, labels `match`, `no_match`, `edge`): calibrate the cutoff.
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Recall of MATCH and EDGE the cutoff must keep.
    #[arg(long, default_value_t = 0.995)]
    recall: f64,
}

/// Runs `aml prescreen`.
pub fn run(args: &PrescreenArgs) -> anyhow::Result<()> {
    match (&args.pairs, &args.alerts) {
        (Some(pairs), None) => score_pairs(pairs),
        (None, Some(alerts)) => {
            let labelled: Vec<LabelledAlert> = aml_storage::read_jsonl_file(alerts)?;
            let scored: Vec<(f64, bool)> = labelled
                .iter()
                .map(|item| {
                    (
                        aml_prescreen::prescreen_alert(&item.alert).score,
                        item.label != aml_core::Label::NoMatch,
                    )
                })
                .collect();
            let calibration = calibrate_cutoff(&scored, args.recall);
            println!("{}", serde_json::to_string_pretty(&calibration)?);
            Ok(())
        }
        _ => bail!("give --pairs FILE.csv or --alerts LABELLED.jsonl"),
    }
}

/// Prints the score of every row; a bad row stops it before anything is printed.
fn score_pairs(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let pairs = read_pairs(&text).with_context(|| path.display().to_string())?;
    let mut out = String::with_capacity(10 * pairs.len() + 8);
    out.push_str("score\n");
    for pair in &pairs {
        out.push_str(&format!("{:.6}\n", pair.score()));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}
