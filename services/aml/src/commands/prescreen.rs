//! `aml prescreen`: score name pairs from a CSV (`name1,name2[,schema]`) to stdout, or
//! calibrate the prescreen cutoff on labelled alerts.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use aml_core::labelled::LabelledAlert;
use aml_prescreen::calibrate_cutoff;
use aml_prescreen::pairs::{check_header, parse_pair};
use anyhow::{Context, bail};

/// Options of `aml prescreen`.
#[derive(Debug, clap::Args)]
pub struct PrescreenArgs {
    /// CSV with a header `name1,name2[,schema]` (schema Person or Company); prints `score`.
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

fn score_pairs(path: &std::path::Path) -> anyhow::Result<()> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?,
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    writeln!(out, "score")?;
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("{}:{number}: unreadable", path.display()))?;
        if number == 1 {
            check_header(&line).with_context(|| path.display().to_string())?;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let pair = parse_pair(&line, number).with_context(|| path.display().to_string())?;
        writeln!(out, "{:.6}", pair.score())?;
    }
    out.flush()?;
    Ok(())
}
