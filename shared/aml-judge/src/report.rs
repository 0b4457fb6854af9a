//! Joining predictions to gold samples, grading each, and the metrics report.

use std::collections::BTreeMap;

use aml_core::cascade::{Calibration, CalibrationTarget, CascadeItem, calibrate_cascade};
use aml_core::metrics::{ClassificationMetrics, CurvePoint, ScoredItem, ThresholdMetrics};
use aml_core::{Difficulty, Label, SampleRecord};
use serde::{Deserialize, Serialize};

use crate::Judge;

/// One prediction line: `{"id", "label", "output", "cot", "score"}` (`score` optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    /// Joins the gold sample with the same id (or, without ids, the same 0-based line).
    #[serde(default)]
    pub id: Option<String>,
    /// Predicted label.
    pub label: Label,
    /// The one-line decision.
    #[serde(default)]
    pub output: String,
    /// The reasoning.
    #[serde(default)]
    pub cot: String,
    /// P(match) + P(edge).
    #[serde(default)]
    pub score: Option<f64>,
}

/// One graded item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemGrade {
    /// The item's id (or its index).
    pub id: String,
    /// Gold label.
    pub gold: Label,
    /// Predicted label.
    pub predicted: Label,
    /// Curriculum tier.
    pub difficulty: Difficulty,
    /// Reasoning sufficiency (absent on a judge error).
    pub sufficiency: Option<f64>,
    /// A fabricated detail the judge found.
    pub fabricated: Option<String>,
    /// Rubric score 0-1 (absent on a judge error).
    pub rubric: Option<f64>,
    /// Why the judge could not grade it.
    pub judge_error: Option<String>,
}

/// The judge's report over a prediction set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// Which judge graded the rationales.
    pub judge: String,
    /// Items, accuracy, precision / recall / F1 on MATCH, macro-F1 and the confusion matrix.
    #[serde(flatten)]
    pub classification: ClassificationMetrics,
    /// Mean rubric score over graded items.
    pub rubric_mean: f64,
    /// Share of items the judge could not grade.
    pub judge_error_rate: f64,
    /// The largest tau keeping recall of positives (MATCH + EDGE) at 99%, with scores.
    pub tau_recall_99: Option<f64>,
    /// False-positive rate on NO_MATCH at that tau.
    pub fpr_at_tau: Option<f64>,
    /// Recall of positives at that tau.
    pub recall_at_tau: Option<f64>,
    /// The cascade on the judged items, with scores: the prescreen (on each gold input read
    /// back as its alert) and the model together, cutoff and tau chosen for a certified 99%
    /// recall at 95% confidence, a cleared positive counting as a miss.
    pub cascade: Option<Calibration>,
    /// Precision-recall curve over the scores.
    pub pr_curve: Vec<CurvePoint>,
    /// Per-item grades.
    pub items: Vec<ItemGrade>,
}

/// A prediction that joins no gold record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prediction {position} (id {id:?}) matches no gold record")]
pub struct JoinError {
    /// 0-based position of the prediction.
    pub position: usize,
    /// Its id.
    pub id: Option<String>,
}

/// Pairs each prediction with its gold sample: by id when gold records carry ids, else by index.
pub fn join<'a>(
    gold: &'a [SampleRecord],
    predictions: &'a [Prediction],
) -> Result<Vec<(&'a SampleRecord, &'a Prediction)>, JoinError> {
    let by_id: BTreeMap<&str, &SampleRecord> = gold
        .iter()
        .filter_map(|sample| sample.id.as_deref().map(|id| (id, sample)))
        .collect();
    let mut pairs = Vec::with_capacity(predictions.len());
    for (position, prediction) in predictions.iter().enumerate() {
        let found = match (&prediction.id, by_id.is_empty()) {
            (Some(id), false) => by_id.get(id.as_str()).copied(),
            _ => gold.get(position),
        };
        let sample = found.ok_or_else(|| JoinError {
            position,
            id: prediction.id.clone(),
        })?;
        pairs.push((sample, prediction));
    }
    Ok(pairs)
}

/// Grades every pair and computes the metrics.
pub async fn evaluate<J: Judge>(pairs: &[(&SampleRecord, &Prediction)], judge: &J) -> JudgeReport {
    let mut items = Vec::with_capacity(pairs.len());
    for (position, (gold, prediction)) in pairs.iter().enumerate() {
        let rationale = format!("{}\n{}", prediction.cot, prediction.output);
        let correct = if gold.label == prediction.label {
            1.0
        } else {
            0.0
        };
        let id = gold.id.clone().unwrap_or_else(|| position.to_string());
        let item = match judge.verdict(&gold.input, &rationale).await {
            Ok(verdict) => {
                let rubric = if verdict.fabricated.is_some() {
                    0.0
                } else {
                    (2.0 * correct + verdict.sufficiency) / 3.0
                };
                ItemGrade {
                    id,
                    gold: gold.label,
                    predicted: prediction.label,
                    difficulty: gold.difficulty,
                    sufficiency: Some(verdict.sufficiency),
                    fabricated: verdict.fabricated,
                    rubric: Some(rubric),
                    judge_error: None,
                }
            }
            Err(error) => ItemGrade {
                id,
                gold: gold.label,
                predicted: prediction.label,
                difficulty: gold.difficulty,
                sufficiency: None,
                fabricated: None,
                rubric: None,
                judge_error: Some(error.to_string()),
            },
        };
        items.push(item);
    }
    let classification =
        ClassificationMetrics::from_pairs(items.iter().map(|item| (item.gold, item.predicted)));
    let graded: Vec<f64> = items.iter().filter_map(|item| item.rubric).collect();
    let rubric_mean = if graded.is_empty() {
        0.0
    } else {
        graded.iter().sum::<f64>() / graded.len() as f64
    };
    let errors = items
        .iter()
        .filter(|item| item.judge_error.is_some())
        .count();
    let scored: Vec<ScoredItem> = pairs
        .iter()
        .filter_map(|(gold, prediction)| {
            prediction.score.map(|score| ScoredItem {
                score,
                positive: gold.label.is_positive(),
            })
        })
        .collect();
    let cascade_items: Vec<CascadeItem> = pairs
        .iter()
        .filter_map(|(gold, prediction)| {
            prediction.score.map(|score| CascadeItem {
                prescreen: aml_prescreen::prescreen_text(&gold.input).map(|found| found.score),
                model: Some(score),
                positive: gold.label.is_positive(),
            })
        })
        .collect();
    let cascade = calibrate_cascade(
        &cascade_items,
        CalibrationTarget {
            recall: 0.99,
            confidence: 0.95,
        },
    )
    .ok();
    let (tau, fpr, recall, curve) = if scored.is_empty() {
        (None, None, None, Vec::new())
    } else {
        let thresholds = ThresholdMetrics::new(scored);
        let tau = thresholds.tau_for_recall(0.99);
        (
            tau,
            tau.map(|tau| thresholds.fpr_at(tau)),
            tau.map(|tau| thresholds.recall_at(tau)),
            thresholds.curve(),
        )
    };
    JudgeReport {
        judge: judge.name().to_owned(),
        classification,
        rubric_mean,
        judge_error_rate: if items.is_empty() {
            0.0
        } else {
            errors as f64 / items.len() as f64
        },
        tau_recall_99: tau,
        fpr_at_tau: fpr,
        recall_at_tau: recall,
        cascade,
        pr_curve: curve,
        items,
    }
}

/// The report as a printed table.
pub fn render_table(report: &JudgeReport) -> String {
    let mut rows = vec![
        ("items", report.classification.n.to_string()),
        ("accuracy", format!("{:.3}", report.classification.accuracy)),
        (
            "precision (MATCH)",
            format!("{:.3}", report.classification.precision_match),
        ),
        (
            "recall (MATCH)",
            format!("{:.3}", report.classification.recall_match),
        ),
        (
            "F1 (MATCH)",
            format!("{:.3}", report.classification.f1_match),
        ),
        ("macro F1", format!("{:.3}", report.classification.macro_f1)),
        ("rubric mean", format!("{:.3}", report.rubric_mean)),
        (
            "judge error rate",
            format!("{:.3}", report.judge_error_rate),
        ),
    ];
    if let (Some(tau), Some(fpr)) = (report.tau_recall_99, report.fpr_at_tau) {
        rows.push(("tau (recall >= 99%)", format!("{tau:.4}")));
        rows.push(("FPR at tau", format!("{fpr:.3}")));
    }
    if let Some(cascade) = &report.cascade {
        rows.push(("cascade cutoff", format!("{:.4}", cascade.prescreen_cutoff)));
        rows.push(("cascade tau", format!("{:.4}", cascade.tau)));
        rows.push(("cascade recall", format!("{:.3}", cascade.recall)));
        rows.push((
            "recall lower bound",
            format!("{:.3}", cascade.recall_lower_bound),
        ));
        rows.push(("cascade FPR", format!("{:.3}", cascade.fpr)));
    }
    let mut table = format!("judge: {}\n", report.judge);
    for (name, value) in rows {
        table.push_str(&format!("  {name:<22} {value:>10}\n"));
    }
    table.push_str("  confusion (rows gold, columns predicted: MATCH NO_MATCH EDGE)\n");
    for (label, row) in Label::ALL
        .iter()
        .zip(report.classification.confusion.counts)
    {
        table.push_str(&format!(
            "  {:<10} {:>6} {:>8} {:>6}\n",
            label.decision_word(),
            row[0],
            row[1],
            row[2]
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OfflineJudge;

    fn sample(id: &str, label: Label, difficulty: Difficulty) -> SampleRecord {
        SampleRecord {
            id: Some(id.to_owned()),
            instruction: "decide".into(),
            input: "Customer (person):\n  name: Ana Silva\n  date of birth: 1980-01-02\n  nationality: PT".into(),
            output: format!("{} — x", label.decision_word()),
            cot: "c".into(),
            difficulty,
            label,
        }
    }

    fn prediction(id: &str, label: Label, score: f64) -> Prediction {
        Prediction {
            id: Some(id.to_owned()),
            label,
            output: format!(
                "{} — date of birth 1980-01-02 and nationality PT agree",
                label.decision_word()
            ),
            cot: String::new(),
            score: Some(score),
        }
    }

    #[tokio::test]
    async fn report_metrics_equal_hand_computed_values() {
        let gold = vec![
            sample("a", Label::Match, Difficulty::Easy),
            sample("b", Label::Match, Difficulty::Easy),
            sample("c", Label::NoMatch, Difficulty::Hard),
            sample("d", Label::NoMatch, Difficulty::Hard),
            sample("e", Label::Edge, Difficulty::Medium),
        ];
        let predictions = vec![
            prediction("e", Label::Edge, 0.7),
            prediction("a", Label::Match, 0.9),
            prediction("b", Label::NoMatch, 0.4),
            prediction("c", Label::NoMatch, 0.4),
            prediction("d", Label::Match, 0.8),
        ];
        let pairs = join(&gold, &predictions).unwrap();
        let report = evaluate(&pairs, &OfflineJudge).await;
        assert_eq!(report.classification.n, 5);
        assert!((report.classification.accuracy - 0.6).abs() < 1e-12);
        assert!((report.classification.precision_match - 0.5).abs() < 1e-12);
        assert!((report.classification.recall_match - 0.5).abs() < 1e-12);
        // Positives a 0.9, e 0.7, b 0.4: tau keeping 99% recall is 0.4 (tie with c, escalated).
        assert_eq!(report.tau_recall_99, Some(0.4));
        assert_eq!(report.fpr_at_tau, Some(1.0));
        let cascade = report.cascade.as_ref().expect("the cascade's figures");
        assert_eq!((cascade.positives, cascade.negatives), (3, 2));
        assert_eq!(
            cascade.tau, 0.4,
            "no prescreen score for these inputs: tau as above"
        );
        assert!(!cascade.certified, "three positives certify nothing");
        assert_eq!(cascade.positives_needed, Some(299));
        // Every rationale cites DOB and nationality (sufficiency 1): correct items 1, wrong 1/3.
        assert!((report.rubric_mean - (3.0 * 1.0 + 2.0 / 3.0) / 5.0).abs() < 1e-12);
        assert_eq!(report.judge_error_rate, 0.0);
        let written = serde_json::to_string(&report).expect("json");
        let read: JudgeReport = serde_json::from_str(&written).expect("reads back");
        assert_eq!(read, report, "aml summary reads the very report written");
    }

    #[test]
    fn join_falls_back_to_line_index_without_gold_ids() {
        let mut gold = vec![sample("x", Label::Edge, Difficulty::Easy)];
        gold[0].id = None;
        let predictions = vec![prediction("anything", Label::Edge, 0.5)];
        assert_eq!(join(&gold, &predictions).unwrap().len(), 1);
        let with_ids = vec![sample("x", Label::Edge, Difficulty::Easy)];
        assert!(join(&with_ids, &predictions).is_err());
    }

    #[test]
    fn stratified_sample_is_balanced_and_seeded() {
        let mut gold = Vec::new();
        for (index, (label, difficulty)) in Label::ALL
            .iter()
            .flat_map(|l| Difficulty::ALL.iter().map(move |d| (*l, *d)))
            .cycle()
            .take(900)
            .enumerate()
        {
            gold.push(sample(&index.to_string(), label, difficulty));
        }
        let chosen = aml_core::stratified_indices(&gold, 100, 3);
        assert_eq!(chosen.len(), 100);
        assert_eq!(chosen, aml_core::stratified_indices(&gold, 100, 3));
        let mut cells: BTreeMap<(Difficulty, Label), usize> = BTreeMap::new();
        for index in &chosen {
            *cells
                .entry((gold[*index].difficulty, gold[*index].label))
                .or_default() += 1;
        }
        assert!(cells.values().max().unwrap() - cells.values().min().unwrap() <= 1);
    }
}
