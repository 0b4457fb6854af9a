//! Classification and threshold metrics of a screening model.
//!
//! Conventions (as scikit-learn with `zero_division=0`): a ratio whose denominator is zero is
//! 0. Positives for thresholds are MATCH and EDGE; negatives are NO_MATCH. An alert is
//! escalated when its score is at least tau, so ties at tau are escalated.

use serde::{Deserialize, Serialize};

use crate::Label;

/// Counts of (gold, predicted) pairs, indexed in [`Label::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// `counts[gold][predicted]`.
    pub counts: [[u64; 3]; 3],
}

fn index(label: Label) -> usize {
    match label {
        Label::Match => 0,
        Label::NoMatch => 1,
        Label::Edge => 2,
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn harmonic_mean(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

impl ConfusionMatrix {
    /// Counts the given (gold, predicted) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Label, Label)>) -> Self {
        let mut matrix = ConfusionMatrix::default();
        for (gold, predicted) in pairs {
            matrix.counts[index(gold)][index(predicted)] += 1;
        }
        matrix
    }

    /// Number of pairs counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Share of pairs whose prediction equals the gold label.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..3).map(|i| self.counts[i][i]).sum();
        ratio(correct, self.total())
    }

    /// Precision of one label: right predictions of it over all predictions of it.
    pub fn precision(&self, label: Label) -> f64 {
        let column = index(label);
        let predicted: u64 = (0..3).map(|gold| self.counts[gold][column]).sum();
        ratio(self.counts[column][column], predicted)
    }

    /// Recall of one label: right predictions of it over all gold items of it.
    pub fn recall(&self, label: Label) -> f64 {
        let row = index(label);
        let gold: u64 = self.counts[row].iter().sum();
        ratio(self.counts[row][row], gold)
    }

    /// F1 of one label.
    pub fn f1(&self, label: Label) -> f64 {
        harmonic_mean(self.precision(label), self.recall(label))
    }

    /// Unweighted mean of the three labels' F1.
    pub fn macro_f1(&self) -> f64 {
        Label::ALL.iter().map(|label| self.f1(*label)).sum::<f64>() / 3.0
    }
}

/// The headline classification figures of a prediction set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Items counted.
    pub n: u64,
    /// Share of exact label agreement.
    pub accuracy: f64,
    /// Precision on MATCH.
    pub precision_match: f64,
    /// Recall on MATCH.
    pub recall_match: f64,
    /// F1 on MATCH.
    pub f1_match: f64,
    /// Mean F1 over MATCH, NO_MATCH and EDGE.
    pub macro_f1: f64,
    /// Gold x predicted counts.
    pub confusion: ConfusionMatrix,
}

impl ClassificationMetrics {
    /// Computes the figures from (gold, predicted) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Label, Label)>) -> Self {
        let confusion = ConfusionMatrix::from_pairs(pairs);
        ClassificationMetrics {
            n: confusion.total(),
            accuracy: confusion.accuracy(),
            precision_match: confusion.precision(Label::Match),
            recall_match: confusion.recall(Label::Match),
            f1_match: confusion.f1(Label::Match),
            macro_f1: confusion.macro_f1(),
            confusion,
        }
    }
}

/// One scored item: the model's score (P(match) + P(edge)) and whether the gold label is positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredItem {
    /// P(match) + P(edge).
    pub score: f64,
    /// Gold is MATCH or EDGE.
    pub positive: bool,
}

/// A point of the precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Escalate when score >= threshold.
    pub threshold: f64,
    /// Precision at that threshold.
    pub precision: f64,
    /// Recall at that threshold.
    pub recall: f64,
    /// False-positive rate at that threshold.
    pub fpr: f64,
}

/// Threshold metrics over scored items.
#[derive(Debug, Clone)]
pub struct ThresholdMetrics {
    items: Vec<ScoredItem>,
    positives: u64,
    negatives: u64,
}

impl ThresholdMetrics {
    /// Takes the scored items; non-finite scores are treated as 0.
    pub fn new(items: impl IntoIterator<Item = ScoredItem>) -> Self {
        let mut items: Vec<ScoredItem> = items
            .into_iter()
            .map(|item| ScoredItem {
                score: if item.score.is_finite() {
                    item.score
                } else {
                    0.0
                },
                positive: item.positive,
            })
            .collect();
        items.sort_by(|a, b| b.score.total_cmp(&a.score));
        let positives = items.iter().filter(|item| item.positive).count() as u64;
        let negatives = items.len() as u64 - positives;
        ThresholdMetrics {
            items,
            positives,
            negatives,
        }
    }

    fn escalated_counts(&self, tau: f64) -> (u64, u64) {
        let mut true_positives = 0;
        let mut false_positives = 0;
        for item in self.items.iter().take_while(|item| item.score >= tau) {
            if item.positive {
                true_positives += 1;
            } else {
                false_positives += 1;
            }
        }
        (true_positives, false_positives)
    }

    /// Share of positives with score >= tau.
    pub fn recall_at(&self, tau: f64) -> f64 {
        ratio(self.escalated_counts(tau).0, self.positives)
    }

    /// Share of negatives with score >= tau.
    pub fn fpr_at(&self, tau: f64) -> f64 {
        ratio(self.escalated_counts(tau).1, self.negatives)
    }

    /// The largest tau whose recall is at least `target`, or `None` when there is no positive.
    pub fn tau_for_recall(&self, target: f64) -> Option<f64> {
        if self.positives == 0 {
            return None;
        }
        let needed = ((target * self.positives as f64) - 1e-9).ceil().max(1.0) as usize;
        self.items
            .iter()
            .filter(|item| item.positive)
            .nth(needed.min(self.positives as usize) - 1)
            .map(|item| item.score)
    }

    /// Precision, recall and FPR at every distinct score, highest threshold first.
    pub fn curve(&self) -> Vec<CurvePoint> {
        let mut points = Vec::new();
        let mut true_positives = 0;
        let mut false_positives = 0;
        for (position, item) in self.items.iter().enumerate() {
            if item.positive {
                true_positives += 1;
            } else {
                false_positives += 1;
            }
            let last_of_tie = self
                .items
                .get(position + 1)
                .is_none_or(|next| next.score < item.score);
            if last_of_tie {
                points.push(CurvePoint {
                    threshold: item.score,
                    precision: ratio(true_positives, true_positives + false_positives),
                    recall: ratio(true_positives, self.positives),
                    fpr: ratio(false_positives, self.negatives),
                });
            }
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::*;

    fn item(score: f64, positive: bool) -> ScoredItem {
        ScoredItem { score, positive }
    }

    #[test]
    fn classification_metrics_match_hand_computation() {
        // gold:      M  M  M  N  N  E
        // predicted: M  M  N  N  M  E
        let metrics = ClassificationMetrics::from_pairs([
            (Match, Match),
            (Match, Match),
            (Match, NoMatch),
            (NoMatch, NoMatch),
            (NoMatch, Match),
            (Edge, Edge),
        ]);
        assert_eq!(metrics.n, 6);
        assert!((metrics.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((metrics.precision_match - 2.0 / 3.0).abs() < 1e-12);
        assert!((metrics.recall_match - 2.0 / 3.0).abs() < 1e-12);
        assert!((metrics.f1_match - 2.0 / 3.0).abs() < 1e-12);
        // F1(no_match) = P 1/2, R 1/2 -> 1/2; F1(edge) = 1.
        assert!((metrics.macro_f1 - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn everything_predicted_as_one_class_gives_zero_not_nan() {
        let metrics = ClassificationMetrics::from_pairs([
            (Match, NoMatch),
            (Edge, NoMatch),
            (NoMatch, NoMatch),
        ]);
        assert_eq!(metrics.precision_match, 0.0);
        assert_eq!(metrics.recall_match, 0.0);
        assert_eq!(metrics.f1_match, 0.0);
        assert!((metrics.accuracy - 1.0 / 3.0).abs() < 1e-12);
        // no_match: P 1/3, R 1 -> F1 1/2; the others 0.
        assert!((metrics.macro_f1 - 0.5 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn tau_keeps_the_recall_target_and_ties_are_escalated() {
        let metrics = ThresholdMetrics::new([
            item(0.9, true),
            item(0.8, true),
            item(0.5, false),
            item(0.4, true),
            item(0.4, false),
            item(0.1, false),
        ]);
        let tau = metrics.tau_for_recall(0.99).unwrap();
        assert_eq!(tau, 0.4);
        assert_eq!(metrics.recall_at(tau), 1.0);
        // 0.5 and the tied 0.4 negative are escalated: 2 of 3.
        assert!((metrics.fpr_at(tau) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(metrics.tau_for_recall(0.5), Some(0.8));
    }

    #[test]
    fn no_positives_gives_no_tau() {
        let metrics = ThresholdMetrics::new([item(0.3, false), item(0.2, false)]);
        assert_eq!(metrics.tau_for_recall(0.99), None);
        assert_eq!(metrics.recall_at(0.0), 0.0);
        assert_eq!(metrics.fpr_at(0.25), 0.5);
    }

    #[test]
    fn curve_has_one_point_per_distinct_score() {
        let metrics = ThresholdMetrics::new([item(0.9, true), item(0.5, false), item(0.5, true)]);
        let curve = metrics.curve();
        assert_eq!(curve.len(), 2);
        assert_eq!(curve[0].threshold, 0.9);
        assert_eq!(curve[0].precision, 1.0);
        assert_eq!(curve[1].recall, 1.0);
        assert!((curve[1].precision - 2.0 / 3.0).abs() < 1e-12);
    }
}
