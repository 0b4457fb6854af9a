//! The cutoff calibrated on one set of synthetic alerts keeps recall on another.

use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_prescreen::{calibrate_cutoff, prescreen_alert};
use aml_synth::case::Synthesizer;

fn scored(seed: u64, per_cell: usize) -> Vec<(f64, bool)> {
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::new();
    for difficulty in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
        for label in [Label::Match, Label::NoMatch, Label::Edge] {
            for _ in 0..per_cell {
                let case = synthesizer.case(&mut rng, difficulty, label);
                out.push((prescreen_alert(&case.alert).score, label != Label::NoMatch));
            }
        }
    }
    out
}

#[test]
fn calibrated_cutoff_keeps_recall_on_held_out_alerts() {
    let calibration = calibrate_cutoff(&scored(1, 400), 0.995);
    assert!(calibration.recall >= 0.995);
    let held_out = scored(2, 400);
    let positives: Vec<f64> = held_out
        .iter()
        .filter(|(_, p)| *p)
        .map(|(s, _)| *s)
        .collect();
    let kept = positives
        .iter()
        .filter(|s| **s >= calibration.cutoff)
        .count();
    let recall = kept as f64 / positives.len() as f64;
    let negatives_cleared = held_out
        .iter()
        .filter(|(s, p)| !p && *s < calibration.cutoff)
        .count();
    println!(
        "cutoff {:.3}: held-out recall {recall:.4}, negatives cleared {negatives_cleared} of {}",
        calibration.cutoff,
        held_out.len() - positives.len()
    );
    assert!(recall >= 0.99, "held-out recall {recall}");
    assert!(negatives_cleared > 0, "the cutoff clears nothing");
}
