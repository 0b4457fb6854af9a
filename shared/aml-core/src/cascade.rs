//! The screening cascade as one decision, and its certified calibration.
//!
//! An alert is flagged if and only if it passes the prescreen (score at or above the cutoff)
//! and the model's P(match) + P(edge) is at least tau. A positive (MATCH or EDGE) that the
//! prescreen clears is a miss whatever tau is. Calibration chooses the cutoff and tau together:
//! the lowest false-positive rate whose one-sided Clopper-Pearson lower bound on recall, at the
//! asked confidence, reaches the recall target (tau is chosen on model scores only).

use serde::{Deserialize, Serialize};

use crate::stats::{clopper_pearson_interval, clopper_pearson_lower, positives_needed};

/// The version of `calibration.json` this code writes and reads.
pub const CALIBRATION_SCHEMA: &str = "aml.calibration/v1";

/// Bins of the score histograms (equal width on [0, 1]) that batches are compared on.
pub const HISTOGRAM_BINS: usize = 20;

/// Population stability index above which a batch's scores have drifted from the
/// calibration set's (the usual rule of thumb: 0.1 watch, 0.2 act).
pub const PSI_WARNING: f64 = 0.2;

/// One labelled alert as the cascade sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeItem {
    /// The prescreen's score; `None` when it could not read the alert (it is never cleared).
    pub prescreen: Option<f64>,
    /// The model's P(match) + P(edge); `None` when the model did not score it (it was cleared).
    pub model: Option<f64>,
    /// The gold label is MATCH or EDGE.
    pub positive: bool,
}

/// The cascade's two thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Alerts whose prescreen score is below this are cleared (0 clears nothing).
    pub prescreen_cutoff: f64,
    /// Alerts that pass the prescreen are flagged when the model's score is at least this.
    pub tau: f64,
}

impl CascadeItem {
    /// Whether the prescreen clears it at `cutoff`.
    pub fn cleared(&self, cutoff: f64) -> bool {
        self.prescreen.is_some_and(|score| score < cutoff)
    }

    /// Whether the cascade flags it; `None` when it passes the prescreen but has no model
    /// score (the results came from a run with a higher cutoff).
    pub fn flagged(&self, thresholds: Thresholds) -> Option<bool> {
        if self.cleared(thresholds.prescreen_cutoff) {
            return Some(false);
        }
        self.model.map(|score| score >= thresholds.tau)
    }
}

/// What the cascade does to a labelled set at given thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CascadeCounts {
    /// Positives (MATCH or EDGE) in the set.
    pub positives: u64,
    /// Negatives (NO_MATCH) in the set.
    pub negatives: u64,
    /// Positives flagged.
    pub true_positives: u64,
    /// Negatives flagged.
    pub false_positives: u64,
    /// Positives the prescreen cleared (misses whatever tau is).
    pub cleared_positives: u64,
    /// Negatives the prescreen cleared.
    pub cleared_negatives: u64,
    /// Positives that passed the prescreen but scored below tau.
    pub below_tau_positives: u64,
    /// Alerts whose fate is unknown: they pass the prescreen but carry no model score.
    pub unknown: u64,
}

impl CascadeCounts {
    /// Share of positives flagged.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.positives)
    }

    /// Share of negatives flagged.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.false_positives, self.negatives)
    }

    /// Share of all alerts the prescreen cleared.
    pub fn cleared_share(&self) -> f64 {
        ratio(
            self.cleared_positives + self.cleared_negatives,
            self.positives + self.negatives,
        )
    }

    /// Positives not flagged.
    pub fn misses(&self) -> u64 {
        self.positives - self.true_positives
    }
}

/// The counts of two sets together (e.g. banks judged at their own thresholds).
impl std::ops::Add for CascadeCounts {
    type Output = CascadeCounts;

    fn add(self, other: CascadeCounts) -> CascadeCounts {
        CascadeCounts {
            positives: self.positives + other.positives,
            negatives: self.negatives + other.negatives,
            true_positives: self.true_positives + other.true_positives,
            false_positives: self.false_positives + other.false_positives,
            cleared_positives: self.cleared_positives + other.cleared_positives,
            cleared_negatives: self.cleared_negatives + other.cleared_negatives,
            below_tau_positives: self.below_tau_positives + other.below_tau_positives,
            unknown: self.unknown + other.unknown,
        }
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Counts the cascade's decisions on `items` at `thresholds`.
pub fn cascade_counts(items: &[CascadeItem], thresholds: Thresholds) -> CascadeCounts {
    let mut counts = CascadeCounts::default();
    for item in items {
        if item.positive {
            counts.positives += 1;
        } else {
            counts.negatives += 1;
        }
        if item.cleared(thresholds.prescreen_cutoff) {
            if item.positive {
                counts.cleared_positives += 1;
            } else {
                counts.cleared_negatives += 1;
            }
            continue;
        }
        match (item.flagged(thresholds), item.positive) {
            (None, _) => counts.unknown += 1,
            (Some(true), true) => counts.true_positives += 1,
            (Some(true), false) => counts.false_positives += 1,
            (Some(false), true) => counts.below_tau_positives += 1,
            (Some(false), false) => {}
        }
    }
    counts
}

/// The sha256 of what a calibration holds for; a batch whose model, adapter or policy differs
/// is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    /// The base model's folder (`aml_storage` folder fingerprint).
    pub model: Option<String>,
    /// The adapter's folder; `None` for merged weights or none.
    pub adapter: Option<String>,
    /// The merged model's folder (base and adapter folded together), when the run wrote one:
    /// a batch may use it as its model with no adapter.
    #[serde(default)]
    pub merged: Option<String>,
    /// The policy document: the shared prefix's text.
    pub policy: Option<String>,
    /// The labelled set the figures were measured on: `aml calibrate`'s gold file; after
    /// training, the SHA-256 of the lines holding each file's own SHA-256 (the validation
    /// set, then the calibration file).
    pub labelled_set: Option<String>,
}

/// `calibration.json`: the cascade's thresholds and what they give on a labelled set, with
/// the confidence the recall figure carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// [`CALIBRATION_SCHEMA`].
    pub schema: String,
    /// The model-score threshold.
    pub tau: f64,
    /// The prescreen cutoff (0 clears nothing).
    pub prescreen_cutoff: f64,
    /// Recall of the cascade on the labelled set.
    pub recall: f64,
    /// The recall asked for.
    pub recall_target: f64,
    /// One-sided Clopper-Pearson lower bound on recall at `confidence`.
    pub recall_lower_bound: f64,
    /// The confidence of the bounds.
    pub confidence: f64,
    /// False-positive rate of the cascade on the labelled set.
    pub fpr: f64,
    /// Two-sided 95% Clopper-Pearson interval of the false-positive rate.
    pub fpr_ci: [f64; 2],
    /// Positives in the set.
    pub positives: u64,
    /// Negatives in the set.
    pub negatives: u64,
    /// What the cascade did there.
    pub counts: CascadeCounts,
    /// Share of the set the prescreen clears.
    pub cleared_share: f64,
    /// Whether `recall_lower_bound` reaches `recall_target`.
    pub certified: bool,
    /// When not certified: positives a set needs, all found, to certify the target.
    pub positives_needed: Option<u64>,
    /// Histogram of the model scores of the set's alerts that pass the prescreen
    /// ([`HISTOGRAM_BINS`] bins on [0, 1]): what batches are compared with.
    pub score_histogram: Vec<u64>,
    /// Mean probability mass the three answers got on the set (low: the model answers
    /// something else).
    pub answer_mass_mean: Option<f64>,
    /// What the figures hold for.
    pub sha256: Fingerprints,
    /// When it was made (Unix ms).
    pub created_unix_ms: i64,
}

impl Calibration {
    /// The thresholds it chose.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            prescreen_cutoff: self.prescreen_cutoff,
            tau: self.tau,
        }
    }
}

/// What a calibration asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationTarget {
    /// Recall of positives to certify.
    pub recall: f64,
    /// Confidence of the lower bound (e.g. 0.95).
    pub confidence: f64,
}

/// Why a labelled set cannot be calibrated at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// No MATCH or EDGE in the set: recall cannot be measured.
    #[error("the labelled set holds no MATCH or EDGE: recall cannot be measured")]
    NoPositives,
    /// The set is empty.
    #[error("no labelled alert")]
    Empty,
    /// The recall or the confidence is not strictly between 0 and 1.
    #[error("recall {recall} and confidence {confidence} must each lie strictly between 0 and 1")]
    Target {
        /// The recall asked for.
        recall: f64,
        /// The confidence asked for.
        confidence: f64,
    },
}

/// The most misses among `positives` that keep the lower bound on recall at the target, or
/// `None` when even none missed does not.
fn misses_allowed(positives: u64, target: CalibrationTarget) -> Option<u64> {
    if clopper_pearson_lower(positives, positives, target.confidence) < target.recall {
        return None;
    }
    let mut allowed = 0;
    while allowed < positives
        && clopper_pearson_lower(positives - allowed - 1, positives, target.confidence)
            >= target.recall
    {
        allowed += 1;
    }
    Some(allowed)
}

/// Chooses the prescreen cutoff and tau together: the lowest false-positive rate (then the
/// most alerts cleared) among the thresholds that miss at most the positives the recall bound
/// allows. When the set is too small to certify the target, the thresholds that miss no
/// positive are chosen and the result says it is not certified and how many positives a set
/// needs. Items without a model score must be cleared at every cutoff considered, so cutoffs
/// start above the highest prescreen score among them.
pub fn calibrate_cascade(
    items: &[CascadeItem],
    target: CalibrationTarget,
) -> Result<Calibration, CalibrationError> {
    let inside = |value: f64| value > 0.0 && value < 1.0;
    if !inside(target.recall) || !inside(target.confidence) {
        return Err(CalibrationError::Target {
            recall: target.recall,
            confidence: target.confidence,
        });
    }
    if items.is_empty() {
        return Err(CalibrationError::Empty);
    }
    let positives = items.iter().filter(|item| item.positive).count() as u64;
    if positives == 0 {
        return Err(CalibrationError::NoPositives);
    }
    let allowed = misses_allowed(positives, target);
    let budget = allowed.unwrap_or(0);
    let highest_unscored = items
        .iter()
        .filter(|item| item.model.is_none())
        .filter_map(|item| item.prescreen)
        .fold(f64::NEG_INFINITY, f64::max);
    let just_above_unscored = highest_unscored
        .is_finite()
        .then(|| highest_unscored.next_up());
    let mut cutoffs: Vec<f64> = items
        .iter()
        .filter(|item| item.positive)
        .filter_map(|item| item.prescreen)
        .chain(std::iter::once(0.0))
        .chain(just_above_unscored)
        .filter(|cutoff| *cutoff > highest_unscored && cutoff.is_finite() && *cutoff >= 0.0)
        .collect();
    cutoffs.sort_by(f64::total_cmp);
    cutoffs.dedup();
    let mut best: Option<(Thresholds, CascadeCounts)> = None;
    for cutoff in cutoffs {
        let cleared_positives = items
            .iter()
            .filter(|item| item.positive && item.cleared(cutoff))
            .count() as u64;
        if cleared_positives > budget {
            break;
        }
        let mut passing: Vec<f64> = items
            .iter()
            .filter(|item| item.positive && !item.cleared(cutoff))
            .filter_map(|item| item.model)
            .collect();
        if passing.is_empty() {
            continue;
        }
        passing.sort_by(f64::total_cmp);
        let below = ((budget - cleared_positives) as usize).min(passing.len() - 1);
        let thresholds = Thresholds {
            prescreen_cutoff: cutoff,
            tau: passing[below],
        };
        let counts = cascade_counts(items, thresholds);
        let better = best.as_ref().is_none_or(|(_, current)| {
            (
                counts.false_positives,
                std::cmp::Reverse(counts.cleared_negatives),
            ) < (
                current.false_positives,
                std::cmp::Reverse(current.cleared_negatives),
            )
        });
        if better {
            best = Some((thresholds, counts));
        }
    }
    let (thresholds, counts) = best.ok_or(CalibrationError::NoPositives)?;
    let lower = clopper_pearson_lower(counts.true_positives, positives, target.confidence);
    let passing_scores = items
        .iter()
        .filter(|item| !item.cleared(thresholds.prescreen_cutoff))
        .filter_map(|item| item.model);
    Ok(Calibration {
        schema: CALIBRATION_SCHEMA.to_owned(),
        tau: thresholds.tau,
        prescreen_cutoff: thresholds.prescreen_cutoff,
        recall: counts.recall(),
        recall_target: target.recall,
        recall_lower_bound: lower,
        confidence: target.confidence,
        fpr: counts.false_positive_rate(),
        fpr_ci: clopper_pearson_interval(counts.false_positives, counts.negatives, 0.95),
        positives,
        negatives: counts.negatives,
        counts,
        cleared_share: counts.cleared_share(),
        certified: allowed.is_some() && lower >= target.recall,
        positives_needed: allowed
            .is_none()
            .then(|| positives_needed(target.recall, target.confidence)),
        score_histogram: score_histogram(passing_scores),
        answer_mass_mean: None,
        sha256: Fingerprints::default(),
        created_unix_ms: 0,
    })
}

/// Counts of `scores` in [`HISTOGRAM_BINS`] equal bins on [0, 1] (1.0 in the last).
pub fn score_histogram(scores: impl IntoIterator<Item = f64>) -> Vec<u64> {
    let mut bins = vec![0u64; HISTOGRAM_BINS];
    for score in scores {
        let bin = (score.clamp(0.0, 1.0) * HISTOGRAM_BINS as f64) as usize;
        bins[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    bins
}

/// The population stability index of `actual` against `expected` (histograms of the same
/// bins): `sum (a - e) ln(a / e)` over bin shares, each share floored at 1e-4 so an empty bin
/// counts without dividing by zero. `None` when either histogram is empty.
pub fn population_stability_index(expected: &[u64], actual: &[u64]) -> Option<f64> {
    let expected_total: u64 = expected.iter().sum();
    let actual_total: u64 = actual.iter().sum();
    if expected_total == 0 || actual_total == 0 || expected.len() != actual.len() {
        return None;
    }
    let share = |count: u64, total: u64| (count as f64 / total as f64).max(1e-4);
    Some(
        expected
            .iter()
            .zip(actual)
            .map(|(&e, &a)| {
                let (e, a) = (share(e, expected_total), share(a, actual_total));
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(prescreen: f64, model: f64, positive: bool) -> CascadeItem {
        CascadeItem {
            prescreen: Some(prescreen),
            model: Some(model),
            positive,
        }
    }

    const TARGET: CalibrationTarget = CalibrationTarget {
        recall: 0.99,
        confidence: 0.95,
    };

    /// The same counts by a direct loop over the definition.
    fn naive(items: &[CascadeItem], cutoff: f64, tau: f64) -> (u64, u64) {
        let flagged = |item: &CascadeItem| {
            item.prescreen.is_none_or(|p| p >= cutoff) && item.model.is_some_and(|m| m >= tau)
        };
        (
            items.iter().filter(|i| i.positive && flagged(i)).count() as u64,
            items.iter().filter(|i| !i.positive && flagged(i)).count() as u64,
        )
    }

    #[test]
    fn a_positive_the_prescreen_clears_is_a_miss_whatever_tau_is() {
        let items = [
            item(0.9, 0.95, true),
            item(0.2, 0.99, true),
            item(0.8, 0.1, false),
            item(0.1, 0.9, false),
        ];
        let at = |cutoff, tau| {
            cascade_counts(
                &items,
                Thresholds {
                    prescreen_cutoff: cutoff,
                    tau,
                },
            )
        };
        let counts = at(0.5, 0.0);
        assert_eq!((counts.true_positives, counts.cleared_positives), (1, 1));
        assert_eq!(
            counts.recall(),
            0.5,
            "the cleared true match is not recalled"
        );
        assert_eq!(counts.false_positives, 1);
        assert_eq!(at(0.0, 0.5).recall(), 1.0);
        for (cutoff, tau) in [(0.0, 0.0), (0.5, 0.5), (0.15, 0.92), (1.0, 0.0)] {
            let counts = at(cutoff, tau);
            assert_eq!(
                (counts.true_positives, counts.false_positives),
                naive(&items, cutoff, tau),
                "cutoff {cutoff}, tau {tau}"
            );
        }
    }

    /// `positives` positives with prescreen and model scores spread over (0.3, 1], the lowest
    /// `misses_at_the_bottom` of them with low model scores, and 400 negatives.
    fn labelled_set(positives: usize, weak: usize) -> Vec<CascadeItem> {
        let mut items: Vec<CascadeItem> = (0..positives)
            .map(|i| {
                let spread = i as f64 / positives as f64;
                let model = if i < weak { 0.05 } else { 0.5 + 0.5 * spread };
                item(0.3 + 0.7 * spread, model, true)
            })
            .collect();
        items.extend((0..400).map(|i| {
            let spread = i as f64 / 400.0;
            item(spread, 0.9 * spread, false)
        }));
        items
    }

    #[test]
    fn certifies_at_the_exact_clopper_pearson_boundaries() {
        let certified = calibrate_cascade(&labelled_set(299, 0), TARGET).expect("calibrated");
        assert!(
            certified.certified && certified.counts.misses() == 0,
            "{certified:?}"
        );
        assert!(certified.recall_lower_bound >= 0.99);
        let short = calibrate_cascade(&labelled_set(298, 0), TARGET).expect("calibrated");
        assert!(!short.certified);
        assert_eq!(short.positives_needed, Some(299));
        assert_eq!(
            short.counts.misses(),
            0,
            "too few positives: no miss is allowed"
        );
        let one_miss = calibrate_cascade(&labelled_set(600, 1), TARGET).expect("calibrated");
        assert!(one_miss.certified, "{one_miss:?}");
        assert_eq!(one_miss.counts.misses(), 1, "the weak positive is given up");
        let two_weak = calibrate_cascade(&labelled_set(600, 2), TARGET).expect("calibrated");
        assert!(two_weak.certified);
        assert_eq!(
            two_weak.counts.misses(),
            1,
            "600 positives allow one miss, not two"
        );
        assert!(two_weak.tau <= 0.05, "tau keeps the second weak positive");
    }

    #[test]
    fn the_chosen_thresholds_have_the_lowest_fpr_within_the_miss_budget() {
        let items = labelled_set(600, 1);
        let chosen = calibrate_cascade(&items, TARGET).expect("calibrated");
        let (tp, fp) = naive(&items, chosen.prescreen_cutoff, chosen.tau);
        assert_eq!(
            (tp, fp),
            (chosen.counts.true_positives, chosen.counts.false_positives)
        );
        let mut grid: Vec<f64> = items
            .iter()
            .flat_map(|i| [i.prescreen.unwrap(), i.model.unwrap()])
            .collect();
        grid.push(0.0);
        for &cutoff in grid.iter().step_by(7) {
            for &tau in grid.iter().step_by(5) {
                let (tp, fp) = naive(&items, cutoff, tau);
                if 600 - tp <= 1 {
                    assert!(
                        fp >= chosen.counts.false_positives,
                        "cutoff {cutoff} tau {tau}: {fp}"
                    );
                }
            }
        }
        assert!(
            chosen.prescreen_cutoff > 0.0,
            "the prescreen clears negatives: {chosen:?}"
        );
        let [low, high] = chosen.fpr_ci;
        assert!(low <= chosen.fpr && chosen.fpr <= high);
    }

    #[test]
    fn a_set_the_prescreen_cannot_help_keeps_cutoff_zero_and_a_bad_target_is_refused() {
        let items: Vec<CascadeItem> = (0..400)
            .map(|i| item(0.0, if i % 2 == 0 { 0.9 } else { 0.1 }, i % 2 == 0))
            .collect();
        let chosen = calibrate_cascade(&items, TARGET).expect("calibrated");
        assert_eq!(chosen.prescreen_cutoff, 0.0);
        for (recall, confidence) in [(0.99, 1.0), (1.0, 0.95), (0.0, 0.95), (0.99, 1.5)] {
            assert!(matches!(
                calibrate_cascade(&items, CalibrationTarget { recall, confidence }),
                Err(CalibrationError::Target { .. })
            ));
        }
    }

    #[test]
    fn results_from_a_cleared_run_limit_the_cutoffs_to_what_is_known() {
        let mut items = labelled_set(300, 0);
        for entry in items.iter_mut().filter(|i| i.prescreen.unwrap() < 0.25) {
            entry.model = None;
        }
        let chosen = calibrate_cascade(&items, TARGET).expect("calibrated");
        assert!(chosen.prescreen_cutoff > 0.249, "{chosen:?}");
        assert_eq!(chosen.counts.unknown, 0);
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_large_for_a_shift() {
        let base = score_histogram((0..1000).map(|i| i as f64 / 1000.0));
        assert_eq!(base.len(), HISTOGRAM_BINS);
        assert_eq!(base.iter().sum::<u64>(), 1000);
        assert!(population_stability_index(&base, &base).unwrap() < 1e-12);
        let shifted = score_histogram((0..1000).map(|i| 0.5 + i as f64 / 2000.0));
        assert!(population_stability_index(&base, &shifted).unwrap() > PSI_WARNING);
        assert_eq!(
            population_stability_index(&base, &[0; HISTOGRAM_BINS]),
            None
        );
    }
}
