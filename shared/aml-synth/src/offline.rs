//! Offline generation of a tier: balanced labels, deterministic for a seed.

use aml_core::format::SCREENING_INSTRUCTION;
use aml_core::{Difficulty, Label, SampleRecord};

use crate::case::Synthesizer;
use aml_core::rng::SeededRng;

fn tier_stream(difficulty: Difficulty) -> u64 {
    match difficulty {
        Difficulty::Easy => 1,
        Difficulty::Medium => 2,
        Difficulty::Hard => 3,
    }
}

/// `count` samples of one tier; labels cycle MATCH, NO_MATCH, EDGE so the tier is balanced.
/// Sample `i` depends only on (seed, tier, i).
pub fn generate_tier(
    synthesizer: &Synthesizer,
    difficulty: Difficulty,
    count: usize,
    seed: u64,
) -> Vec<SampleRecord> {
    (0..count)
        .map(|index| {
            let label = Label::ALL[index % Label::ALL.len()];
            let stream = (tier_stream(difficulty) << 32) | index as u64;
            let mut rng = SeededRng::derive(seed, stream);
            let case = synthesizer.case(&mut rng, difficulty, label);
            SampleRecord {
                id: Some(format!("{difficulty}-{seed}-{index:06}")),
                instruction: SCREENING_INSTRUCTION.to_owned(),
                input: case.input(),
                output: case.output,
                cot: case.cot,
                difficulty,
                label: case.label,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_balanced_deterministic_and_consistent() {
        let synthesizer = Synthesizer::default();
        for difficulty in Difficulty::ALL {
            let samples = generate_tier(&synthesizer, difficulty, 300, 7);
            let again = generate_tier(&synthesizer, difficulty, 300, 7);
            assert_eq!(samples, again);
            for label in Label::ALL {
                assert_eq!(samples.iter().filter(|s| s.label == label).count(), 100);
            }
            for sample in &samples {
                assert_eq!(
                    Label::from_decision_line(&sample.output),
                    Some(sample.label),
                    "{}",
                    sample.output
                );
                assert!(sample.cot.contains("Decision:"), "{}", sample.cot);
            }
        }
    }

    #[test]
    fn every_generated_input_reads_back_as_the_alert_it_shows() {
        let synthesizer = Synthesizer::default();
        let mut rng = aml_core::rng::SeededRng::new(11);
        for index in 0..900 {
            let case = synthesizer.case(
                &mut rng,
                Difficulty::ALL[index % 3],
                Label::ALL[(index / 3) % 3],
            );
            let input = case.input();
            let parsed = aml_core::format::parse_alert_input(&input)
                .unwrap_or_else(|| panic!("case {index} does not parse:\n{input}"));
            assert_eq!(aml_core::format::render_alert_input(&parsed), input);
            let mut shown = case.alert.clone();
            if let Some(entry) = shown.entry.as_mut() {
                entry.entry_id.clear();
            }
            assert_eq!(
                (&parsed.party, &parsed.entry, &parsed.context),
                (&shown.party, &shown.entry, &shown.context),
                "case {index}: every field the text shows comes back"
            );
        }
    }
}
