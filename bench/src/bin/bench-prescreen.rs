//! Prescreen throughput on one core: name pairs from the synthetic generator (persons and
//! companies, every tier and label, transliterations and noise included) scored end to end
//! (normalisation, transliteration, token alignment, Jaro-Winkler, phonetic keys), and whole
//! alerts (names and aliases, dates, countries, identifiers). Median of 5 runs.
//!
//! Quality on public labelled name pairs (OpenSanctions' `name_bench/cases.csv`, MIT, bundled
//! in `shared/aml-prescreen/data/name-bench`): the false-positive rate at 99% recall of our
//! name similarity, of plain Jaro-Winkler on the lowercased names, and of OpenSanctions'
//! logic_v2 (its frozen scores on the same rows), in the same run; and how many of the
//! public non-matches the prescreen would clear at the cutoff calibrated on our synthetic
//! alerts (99.5% recall there), beside the share of our own NO_MATCH alerts it clears.
//! Writes `target/bench/prescreen.json`.

use std::path::PathBuf;
use std::time::Instant;

use aml_bench::{median, write_json};
use aml_core::metrics::{ScoredItem, ThresholdMetrics};
use aml_core::rng::SeededRng;

use aml_prescreen::jaro::jaro_winkler;
use aml_prescreen::pairs::{Pair, PairsHeader, read_pairs, split_fields};
use aml_prescreen::{Schema, calibrate_cutoff, prescreen_alert};
use aml_proto::v1::EntityKind;
use aml_synth::Synthesizer;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Distinct alerts generated (each gives one name pair).
    #[arg(long, default_value_t = 20_000)]
    alerts: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Output JSON.
    #[arg(long, default_value = "target/bench/prescreen.json")]
    out: PathBuf,
}

/// False-positive rate at the highest threshold keeping `recall` of the positives.
fn fpr_at_recall(scored: &[(f64, bool)], recall: f64) -> f64 {
    let metrics = ThresholdMetrics::new(
        scored
            .iter()
            .map(|&(score, positive)| ScoredItem { score, positive }),
    );
    metrics
        .tau_for_recall(recall)
        .map_or(f64::NAN, |tau| metrics.fpr_at(tau))
}

/// Whether a case group is real (hand-written checks, real clusters and customer cases)
/// rather than LLM-proposed near-collisions.
fn real_group(group: &str) -> bool {
    !group.starts_with("synth_")
}

/// The public pairs' quality figures, printed and as JSON.
fn public_pairs(synthetic_cutoff: f64) -> anyhow::Result<serde_json::Value> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/aml-prescreen/data/name-bench");
    let pairs = read_pairs(&std::fs::read_to_string(folder.join("cases.csv"))?)?;
    let reference = std::fs::read_to_string(folder.join("logicv2-frozen.csv"))?;
    let mut lines = reference.lines();
    let header_line = lines.next().unwrap_or_default();
    let reference_header = PairsHeader::parse(header_line)?;
    let score_column = split_fields(header_line, 1)?
        .iter()
        .position(|name| name == "score")
        .ok_or_else(|| anyhow::anyhow!("logicv2-frozen.csv: no score column"))?;
    let mut logic_v2 = std::collections::HashMap::new();
    for (index, line) in lines.enumerate() {
        let pair = reference_header.pair(line, index + 2)?;
        let fields = split_fields(line, index + 2)?;
        let score: f64 = fields
            .get(score_column)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("logicv2-frozen.csv:{}: no score", index + 2))?;
        logic_v2.insert((pair.group, pair.name1, pair.name2), score);
    }
    let plain_jw = |pair: &Pair| {
        jaro_winkler(
            pair.name1.to_lowercase().as_bytes(),
            pair.name2.to_lowercase().as_bytes(),
        )
    };
    let mut rows = Vec::new();
    let mut report = serde_json::Map::new();
    println!();
    println!(
        "{:<34} | {:>5} | {:>9} | {:>13} | {:>13} | {:>13}",
        "public name pairs: FPR at 99% recall",
        "pairs",
        "positives",
        "ours",
        "Jaro-Winkler",
        "logic_v2"
    );
    for (name, keep) in [
        ("all", (|_: &Pair| true) as fn(&Pair) -> bool),
        ("real (nk_*, cluster, customer)", |pair| {
            real_group(pair.group.as_deref().unwrap_or(""))
        }),
        ("LLM-proposed (synth_*)", |pair| {
            !real_group(pair.group.as_deref().unwrap_or(""))
        }),
    ] {
        let chosen: Vec<&Pair> = pairs
            .iter()
            .filter(|pair| keep(pair) && pair.is_match.is_some())
            .collect();
        let ours: Vec<(f64, bool)> = chosen
            .iter()
            .map(|pair| (pair.score(), pair.is_match == Some(true)))
            .collect();
        let jw: Vec<(f64, bool)> = chosen
            .iter()
            .map(|pair| (plain_jw(pair), pair.is_match == Some(true)))
            .collect();
        let with_reference: Vec<(&Pair, f64)> = chosen
            .iter()
            .filter_map(|pair| {
                logic_v2
                    .get(&(pair.group.clone(), pair.name1.clone(), pair.name2.clone()))
                    .map(|score| (*pair, *score))
            })
            .collect();
        let label = |pair: &Pair| pair.is_match == Some(true);
        let reference_fpr = fpr_at_recall(
            &with_reference
                .iter()
                .map(|(pair, score)| (*score, label(pair)))
                .collect::<Vec<_>>(),
            0.99,
        );
        let ours_on_reference = fpr_at_recall(
            &with_reference
                .iter()
                .map(|(pair, _)| (pair.score(), label(pair)))
                .collect::<Vec<_>>(),
            0.99,
        );
        let (ours_fpr, jw_fpr) = (fpr_at_recall(&ours, 0.99), fpr_at_recall(&jw, 0.99));
        let positives = ours.iter().filter(|(_, positive)| *positive).count();
        println!(
            "{name:<34} | {:>5} | {positives:>9} | {ours_fpr:>13.3} | {jw_fpr:>13.3} | {reference_fpr:>5.3} ({ours_on_reference:.3})",
            chosen.len()
        );
        report.insert(
            name.to_owned(),
            json!({"pairs": chosen.len(), "positives": positives, "ours_fpr_at_99": ours_fpr,
                   "jaro_winkler_fpr_at_99": jw_fpr, "logic_v2_fpr_at_99": reference_fpr,
                   "logic_v2_rows": with_reference.len(), "ours_fpr_at_99_on_logic_v2_rows": ours_on_reference}),
        );
        rows.extend(ours);
    }
    println!("(logic_v2 on the rows of its frozen run; ours on the same rows in brackets)");
    let negatives: Vec<f64> = pairs
        .iter()
        .filter(|pair| pair.is_match == Some(false))
        .map(Pair::score)
        .collect();
    let positives: Vec<f64> = pairs
        .iter()
        .filter(|pair| pair.is_match == Some(true))
        .map(Pair::score)
        .collect();
    let cleared = negatives
        .iter()
        .filter(|score| **score < synthetic_cutoff)
        .count();
    let lost = positives
        .iter()
        .filter(|score| **score < synthetic_cutoff)
        .count();
    println!(
        "at the cutoff calibrated on our synthetic alerts ({synthetic_cutoff:.4}): {:.1}% of the public non-matches cleared, {:.1}% of the public matches lost",
        100.0 * cleared as f64 / negatives.len().max(1) as f64,
        100.0 * lost as f64 / positives.len().max(1) as f64
    );
    report.insert(
        "at_synthetic_cutoff".to_owned(),
        json!({"cutoff": synthetic_cutoff,
               "public_negatives_cleared_share": cleared as f64 / negatives.len().max(1) as f64,
               "public_positives_lost_share": lost as f64 / positives.len().max(1) as f64}),
    );
    Ok(serde_json::Value::Object(report))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(7);
    let mut alerts = Vec::with_capacity(args.alerts);
    let mut labels = Vec::with_capacity(args.alerts);
    for (alert, label) in aml_synth::bank_alerts(&synthesizer, &mut rng, &["bench"], args.alerts) {
        alerts.push(alert);
        labels.push(label);
    }
    let pairs: Vec<Pair> = alerts
        .iter()
        .map(|alert| {
            let party = alert.party.clone().unwrap_or_default();
            let entry = alert.entry.clone().unwrap_or_default();
            Pair {
                name1: party.name,
                name2: entry.name,
                schema: if party.kind == EntityKind::Organization as i32 {
                    Schema::Company
                } else {
                    Schema::Person
                },
                is_match: None,
                group: None,
            }
        })
        .collect();
    let mut pair_rates = Vec::new();
    let mut alert_rates = Vec::new();
    let mut checksum = 0.0;
    for _ in 0..args.runs.max(1) {
        let start = Instant::now();
        for pair in &pairs {
            checksum += pair.score();
        }
        pair_rates.push(pairs.len() as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        for alert in &alerts {
            checksum += prescreen_alert(alert).score;
        }
        alert_rates.push(alerts.len() as f64 / start.elapsed().as_secs_f64());
    }
    let pairs_per_s = median(&pair_rates);
    let alerts_per_s = median(&alert_rates);
    println!("{:<44} | {:>12}", "prescreen (one core)", "per second");
    println!("{:-<44}-+-{:->12}", "", "");
    println!(
        "{:<44} | {:>12.0}",
        "name pairs (normalise + compare)", pairs_per_s
    );
    println!(
        "{:<44} | {:>12.0}",
        "alerts (names, aliases, DOB, country, IDs)", alerts_per_s
    );
    println!("target >= 100,000 pairs/s: {:.2}x", pairs_per_s / 100_000.0);
    let scored: Vec<(f64, bool)> = alerts
        .iter()
        .zip(&labels)
        .map(|(alert, label)| (prescreen_alert(alert).score, label.is_positive()))
        .collect();
    let synthetic = calibrate_cutoff(&scored, 0.995);
    let synthetic_negatives_cleared =
        synthetic.negatives_cleared as f64 / synthetic.negatives.max(1) as f64;
    println!(
        "our synthetic alerts: cutoff {:.4} keeps {:.1}% of the positives and clears {:.1}% of the NO_MATCH alerts",
        synthetic.cutoff,
        100.0 * synthetic.recall,
        100.0 * synthetic_negatives_cleared
    );
    // Like for like with the public pairs, which carry names only: our NO_MATCH alerts' names
    // scored alone at the same cutoff.
    let negative_names: Vec<f64> = pairs
        .iter()
        .zip(&labels)
        .filter(|(_, label)| !label.is_positive())
        .map(|(pair, _)| pair.score())
        .collect();
    let names_only_cleared = negative_names
        .iter()
        .filter(|score| **score < synthetic.cutoff)
        .count() as f64
        / negative_names.len().max(1) as f64;
    println!(
        "their names alone (as the public pairs are scored): {:.1}% of the NO_MATCH alerts below that cutoff",
        100.0 * names_only_cleared
    );
    let public = public_pairs(synthetic.cutoff)?;
    write_json(
        &args.out,
        &json!({
            "pairs_per_s": pairs_per_s, "alerts_per_s": alerts_per_s,
            "pairs_runs": pair_rates, "alerts_runs": alert_rates, "threads": 1,
            "pairs": pairs.len(), "target_pairs_per_s": 100_000, "checksum": checksum,
            "synthetic_cutoff_at_99_5": synthetic.cutoff,
            "synthetic_no_match_cleared_share": synthetic_negatives_cleared,
            "synthetic_no_match_names_only_cleared_share": names_only_cleared,
            "public_name_pairs": public,
        }),
    )
}
