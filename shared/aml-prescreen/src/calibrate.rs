//! Choosing the prescreen cutoff on labelled alerts so that recall stays at a target.

use serde::Serialize;

/// The cutoff chosen and what it does on the labelled data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutoffCalibration {
    /// Alerts scoring below this are cleared.
    pub cutoff: f64,
    /// Recall of positives (MATCH and EDGE) kept for the model.
    pub recall: f64,
    /// The recall asked for.
    pub recall_target: f64,
    /// Positives in the data.
    pub positives: usize,
    /// Negatives in the data.
    pub negatives: usize,
    /// Negatives the cutoff clears (work the model is spared).
    pub negatives_cleared: usize,
    /// Share of all alerts cleared.
    pub cleared_share: f64,
}

/// The highest cutoff that keeps at least `recall_target` of the positives at or above it.
/// `scored` holds (prescreen score, is positive). With no positives the cutoff is 0 (clear
/// nothing): recall cannot be measured, so nothing is risked.
pub fn calibrate_cutoff(scored: &[(f64, bool)], recall_target: f64) -> CutoffCalibration {
    let mut positives: Vec<f64> = scored
        .iter()
        .filter(|(_, positive)| *positive)
        .map(|(score, _)| *score)
        .collect();
    positives.sort_by(f64::total_cmp);
    let allowed_misses =
        ((1.0 - recall_target.clamp(0.0, 1.0)) * positives.len() as f64 + 1e-9).floor() as usize;
    let cutoff = positives.get(allowed_misses).copied().unwrap_or(0.0);
    let kept = positives.iter().filter(|score| **score >= cutoff).count();
    let negatives = scored.len() - positives.len();
    let negatives_cleared = scored
        .iter()
        .filter(|(score, positive)| !positive && *score < cutoff)
        .count();
    let cleared = scored.iter().filter(|(score, _)| *score < cutoff).count();
    CutoffCalibration {
        cutoff,
        recall: if positives.is_empty() {
            1.0
        } else {
            kept as f64 / positives.len() as f64
        },
        recall_target,
        positives: positives.len(),
        negatives,
        negatives_cleared,
        cleared_share: if scored.is_empty() {
            0.0
        } else {
            cleared as f64 / scored.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_recall_target_exactly() {
        let mut scored: Vec<(f64, bool)> = (0..200).map(|i| (i as f64 / 200.0, true)).collect();
        scored.extend((0..100).map(|i| (i as f64 / 400.0, false)));
        let calibration = calibrate_cutoff(&scored, 0.995);
        assert_eq!(calibration.cutoff, 1.0 / 200.0);
        assert_eq!(calibration.recall, 199.0 / 200.0);
        assert_eq!(calibration.negatives_cleared, 2);
        let strict = calibrate_cutoff(&scored, 1.0);
        assert_eq!(strict.cutoff, 0.0);
        assert_eq!(strict.recall, 1.0);
    }

    #[test]
    fn no_positives_clears_nothing() {
        let calibration = calibrate_cutoff(&[(0.2, false), (0.9, false)], 0.99);
        assert_eq!(calibration.cutoff, 0.0);
        assert_eq!(calibration.negatives_cleared, 0);
    }
}
