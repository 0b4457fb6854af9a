//! Prescreen throughput on one core: name pairs from the synthetic generator (persons and
//! companies, every tier and label, transliterations and noise included) scored end to end
//! (normalisation, transliteration, token alignment, Jaro-Winkler, phonetic keys), and whole
//! alerts (names and aliases, dates, countries, identifiers). Median of 5 runs. Writes
//! `target/bench/prescreen.json` with `pairs_per_s` and `alerts_per_s`.

use std::path::PathBuf;
use std::time::Instant;

use aml_bench::{median, write_json};
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_prescreen::pairs::Pair;
use aml_prescreen::{Schema, prescreen_alert};
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(7);
    let mut alerts = Vec::with_capacity(args.alerts);
    for index in 0..args.alerts {
        let difficulty = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard][index % 3];
        let label = [Label::Match, Label::NoMatch, Label::Edge][(index / 3) % 3];
        alerts.push(synthesizer.case(&mut rng, difficulty, label).alert);
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
    write_json(
        &args.out,
        &json!({
            "pairs_per_s": pairs_per_s, "alerts_per_s": alerts_per_s,
            "pairs_runs": pair_rates, "alerts_runs": alert_rates, "threads": 1,
            "pairs": pairs.len(), "target_pairs_per_s": 100_000, "checksum": checksum,
        }),
    )
}
