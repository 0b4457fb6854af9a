//! Labelled synthetic alerts spread over banks: what `aml alerts synth` writes and the batch
//! tests and benchmarks push, made one way.

use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_proto::v1::Alert;

use crate::Synthesizer;

/// `count` alerts with their gold labels: the `i`-th has tier `Difficulty::ALL[i % 3]`,
/// label `Label::ALL[(i / 3) % 3]` (so every tier has every label), bank `banks[i % len]` and
/// id `<bank>-<i:06>`.
pub fn bank_alerts(
    synthesizer: &Synthesizer,
    rng: &mut SeededRng,
    banks: &[&str],
    count: usize,
) -> Vec<(Alert, Label)> {
    (0..count)
        .map(|index| {
            let label = Label::ALL[(index / 3) % 3];
            let mut alert = synthesizer
                .case(rng, Difficulty::ALL[index % 3], label)
                .alert;
            let bank = banks[index % banks.len().max(1)];
            alert.bank = bank.to_owned();
            alert.alert_id = format!("{bank}-{index:06}");
            (alert, label)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_cycle_tiers_labels_and_banks_with_ids_per_bank() {
        let alerts = bank_alerts(
            &Synthesizer::default(),
            &mut SeededRng::new(1),
            &["a", "b"],
            9,
        );
        assert_eq!(alerts.len(), 9);
        assert_eq!(alerts[3].0.bank, "b");
        assert_eq!(alerts[3].0.alert_id, "b-000003");
        let labels: Vec<Label> = alerts.iter().map(|(_, label)| *label).collect();
        assert_eq!(
            &labels[..4],
            &[Label::ALL[0], Label::ALL[0], Label::ALL[0], Label::ALL[1]]
        );
        assert!(
            alerts
                .iter()
                .all(|(alert, _)| alert.party.is_some() && alert.entry.is_some())
        );
    }
}
