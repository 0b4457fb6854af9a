//! Assembling a [`BatchReport`] from the manifest and the shards' completions: counts per
//! bank, completion, throughput and cost, and, per bank, the calibration the thresholds came
//! from and how the batch compares with it (score histogram, population stability index,
//! answer mass).

use std::collections::BTreeMap;

use aml_core::cascade::{HISTOGRAM_BINS, PSI_WARNING, population_stability_index};
use aml_proto::v1::{BankSummary, BatchReport, CalibrationFigures, ShardCompleted};

use crate::manifest::{BankScoring, BatchManifest};

/// Mean answer mass under which the report warns: the model gives most of its probability to
/// something other than the three answers (a prompt, template or adapter mismatch).
pub const LOW_ANSWER_MASS: f64 = 0.5;

fn figures(scoring: &BankScoring) -> Option<CalibrationFigures> {
    scoring.calibration.as_ref().map(|source| {
        let calibration = &source.calibration;
        CalibrationFigures {
            url: source.url.clone(),
            certified: calibration.certified,
            recall: calibration.recall,
            recall_lower_bound: calibration.recall_lower_bound,
            recall_target: calibration.recall_target,
            confidence: calibration.confidence,
            fpr: calibration.fpr,
            fpr_low: calibration.fpr_ci[0],
            fpr_high: calibration.fpr_ci[1],
            positives: calibration.positives,
            negatives: calibration.negatives,
        }
    })
}

/// The report of a batch: counts per bank, completion, escalations, throughput, GPU time,
/// cost, calibration and drift. `completions` holds at most one entry per shard (the first
/// that arrived); `prefix_encodes` is the sum over workers of each worker's highest count.
pub fn assemble_report(
    manifest: &BatchManifest,
    completions: &BTreeMap<u32, ShardCompleted>,
    wall_seconds: f64,
    gpu_price_per_hour: f64,
    shards_republished: u32,
) -> BatchReport {
    let mut per_bank: BTreeMap<String, BankSummary> = manifest
        .banks
        .iter()
        .map(|(bank, plan)| {
            (
                bank.clone(),
                BankSummary {
                    alerts_in: plan.alerts_in,
                    cleared_by_prescreen: plan.cleared_by_prescreen,
                    rejected: plan.rejected,
                    duplicates_dropped: plan.duplicates_dropped,
                    tau: plan.scoring.tau,
                    prescreen_cutoff: plan.scoring.prescreen_cutoff,
                    calibration: figures(&plan.scoring),
                    score_histogram: vec![0; HISTOGRAM_BINS],
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut mass_sums: BTreeMap<&str, f64> = BTreeMap::new();
    let mut gpu_seconds = 0.0;
    let mut encodes_per_worker: BTreeMap<&str, u64> = BTreeMap::new();
    for shard in &manifest.shards {
        let Some(done) = completions.get(&shard.shard) else {
            continue;
        };
        let summary = per_bank.entry(shard.bank.clone()).or_default();
        summary.scored += done.scored;
        summary.escalated += done.escalated;
        summary.score_histogram.resize(HISTOGRAM_BINS, 0);
        for (bin, count) in summary
            .score_histogram
            .iter_mut()
            .zip(&done.score_histogram)
        {
            *bin += count;
        }
        *mass_sums.entry(&shard.bank).or_default() += done.answer_mass_sum;
        gpu_seconds += done.gpu_seconds;
        let count = encodes_per_worker.entry(&done.worker_id).or_default();
        *count = (*count).max(done.prefix_encodes);
    }
    let mut warnings = Vec::new();
    for (bank, summary) in per_bank.iter_mut() {
        let plan = manifest.banks.get(bank);
        if summary.rejected > 0 {
            warnings.push(format!(
                "{bank}: {} alerts failed the intake checks and are in the DLQ with their reasons (`aml dlq`), not in this batch",
                summary.rejected
            ));
        }
        if summary.alerts_in == 0 {
            continue;
        }
        summary.flagged_share = if summary.alerts_in == 0 {
            0.0
        } else {
            summary.escalated as f64 / summary.alerts_in as f64
        };
        if summary.scored > 0 {
            summary.answer_mass_mean =
                mass_sums.get(bank.as_str()).copied().unwrap_or(0.0) / summary.scored as f64;
            if summary.answer_mass_mean < LOW_ANSWER_MASS {
                warnings.push(format!(
                    "{bank}: the three answers got {:.1}% of the model's probability on average: the model answers something else (prompt, chat template or adapter mismatch?)",
                    100.0 * summary.answer_mass_mean
                ));
            }
        }
        match plan.and_then(|plan| plan.scoring.calibration.as_ref()) {
            Some(source) => {
                summary.psi = population_stability_index(
                    &source.calibration.score_histogram,
                    &summary.score_histogram,
                );
                if let Some(psi) = summary.psi.filter(|psi| *psi > PSI_WARNING) {
                    warnings.push(format!(
                        "{bank}: the batch's scores drifted from the calibration set's (PSI {psi:.3} > {PSI_WARNING}); recalibrate before relying on its recall"
                    ));
                }
                if !source.calibration.certified {
                    warnings.push(format!(
                        "{bank}: the calibration {} is not certified: recall lower bound {:.4} < {:.4}",
                        source.url,
                        source.calibration.recall_lower_bound,
                        source.calibration.recall_target
                    ));
                }
            }
            None => warnings.push(format!(
                "{bank}: uncalibrated: the prescreen cleared nothing and tau {} is not tied to a measured recall",
                summary.tau
            )),
        }
    }
    let alerts_in = manifest.alerts_in();
    let scored: u64 = per_bank.values().map(|bank| bank.scored).sum();
    let cleared: u64 = per_bank
        .values()
        .map(|bank| bank.cleared_by_prescreen)
        .sum();
    let done = scored + cleared;
    let rejected = per_bank.values().map(|bank| bank.rejected).sum();
    let duplicates_dropped = per_bank.values().map(|bank| bank.duplicates_dropped).sum();
    let mut taus = per_bank.values().map(|bank| bank.tau);
    let first_tau = taus.next().unwrap_or(0.0);
    BatchReport {
        batch_id: manifest.batch_id.clone(),
        alerts_in,
        scored,
        completion_rate: if alerts_in == 0 {
            1.0
        } else {
            done as f64 / alerts_in as f64
        },
        escalated: per_bank.values().map(|bank| bank.escalated).sum(),
        tau: if taus.all(|tau| tau == first_tau) {
            first_tau
        } else {
            0.0
        },
        alerts_per_s: if wall_seconds > 0.0 {
            done as f64 / wall_seconds
        } else {
            0.0
        },
        gpu_seconds,
        cost_usd: gpu_seconds / 3600.0 * gpu_price_per_hour,
        per_bank: per_bank.into_iter().collect(),
        prefix_encodes: encodes_per_worker.values().sum(),
        shards: manifest.shards.len() as u32,
        shards_republished,
        refused: String::new(),
        warnings,
        rejected,
        duplicates_dropped,
    }
}

/// The report of a batch the scheduler refused: nothing scored, the reason stated.
pub fn refused_report(batch_id: &str, reason: &str) -> BatchReport {
    BatchReport {
        batch_id: batch_id.to_owned(),
        refused: reason.to_owned(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{BankPlan, ShardPlan};

    #[test]
    fn sums_per_bank_and_counts_each_workers_prefix_once() {
        let shard = |shard: u32, bank: &str, alerts: u32| ShardPlan {
            shard,
            bank: bank.into(),
            alerts,
            shard_key: String::new(),
            results_key: String::new(),
        };
        let manifest = BatchManifest {
            batch_id: "b".into(),
            created_unix_ms: 0,
            model_url: String::new(),
            rationale: false,
            banks: [
                (
                    "a".to_owned(),
                    BankPlan {
                        alerts_in: 10,
                        cleared_by_prescreen: 4,
                        ..Default::default()
                    },
                ),
                (
                    "b".to_owned(),
                    BankPlan {
                        alerts_in: 5,
                        rejected: 2,
                        duplicates_dropped: 1,
                        ..Default::default()
                    },
                ),
                (
                    "c".to_owned(),
                    BankPlan {
                        rejected: 3,
                        ..Default::default()
                    },
                ),
            ]
            .into(),
            shards: vec![shard(0, "a", 6), shard(1, "b", 5)],
            cursors_after: BTreeMap::new(),
            stream_created: String::new(),
        };
        let done = |worker: &str, scored: u64, encodes: u64| ShardCompleted {
            worker_id: worker.into(),
            scored,
            escalated: 1,
            gpu_seconds: 2.0,
            prefix_encodes: encodes,
            ..Default::default()
        };
        let partial = assemble_report(&manifest, &[(0, done("w1", 6, 1))].into(), 2.0, 3600.0, 0);
        assert_eq!(partial.completion_rate, 10.0 / 15.0);
        let full = assemble_report(
            &manifest,
            &[(0, done("w1", 6, 1)), (1, done("w1", 5, 1))].into(),
            3.0,
            3600.0,
            1,
        );
        assert_eq!(full.completion_rate, 1.0);
        assert_eq!(full.per_bank["a"].scored, 6);
        assert_eq!(full.per_bank["b"].escalated, 1);
        assert_eq!(full.prefix_encodes, 1);
        assert_eq!(full.cost_usd, 4.0);
        assert_eq!(full.alerts_per_s, 5.0);
        assert_eq!((full.rejected, full.duplicates_dropped), (5, 1));
        assert_eq!(full.per_bank["c"].rejected, 3);
        let rejections: Vec<&String> = full
            .warnings
            .iter()
            .filter(|warning| warning.contains("failed the intake checks"))
            .collect();
        assert_eq!(rejections.len(), 2, "{:?}", full.warnings);
        assert!(
            !full
                .warnings
                .iter()
                .any(|w| w.starts_with("c: uncalibrated")),
            "a bank with nothing taken gets no scoring warning: {:?}",
            full.warnings
        );
    }

    #[test]
    fn a_calibrated_bank_gets_its_figures_drift_and_answer_mass_and_the_rest_a_warning() {
        let calibration = aml_core::cascade::calibrate_cascade(
            &(0..800)
                .map(|i| aml_core::cascade::CascadeItem {
                    prescreen: Some(0.9),
                    model: Some(if i % 2 == 0 { 0.05 } else { 0.95 }),
                    positive: i % 2 == 1,
                })
                .collect::<Vec<_>>(),
            aml_core::cascade::CalibrationTarget {
                recall: 0.99,
                confidence: 0.95,
            },
        )
        .expect("calibrated");
        assert!(calibration.certified);
        let plan = |calibrated: bool| BankPlan {
            alerts_in: 100,
            scoring: BankScoring {
                tau: calibration.tau,
                prescreen_cutoff: calibration.prescreen_cutoff,
                calibration: calibrated.then(|| crate::manifest::CalibrationSource {
                    url: "file:///calibration.json".into(),
                    calibration: calibration.clone(),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let manifest = BatchManifest {
            batch_id: "b".into(),
            created_unix_ms: 0,
            model_url: String::new(),
            rationale: false,
            banks: [("a".to_owned(), plan(true)), ("b".to_owned(), plan(false))].into(),
            shards: vec![ShardPlan {
                shard: 0,
                bank: "a".into(),
                alerts: 100,
                shard_key: String::new(),
                results_key: String::new(),
            }],
            cursors_after: BTreeMap::new(),
            stream_created: String::new(),
        };
        let mut histogram = vec![0; HISTOGRAM_BINS];
        histogram[10] = 100;
        let done = ShardCompleted {
            scored: 100,
            escalated: 40,
            score_histogram: histogram,
            answer_mass_sum: 92.0,
            ..Default::default()
        };
        let report = assemble_report(&manifest, &[(0, done)].into(), 1.0, 1.0, 0);
        let bank = &report.per_bank["a"];
        let figures = bank.calibration.as_ref().expect("calibration figures");
        assert!(figures.certified && figures.recall_lower_bound >= 0.99);
        assert_eq!(bank.flagged_share, 0.4);
        assert!((bank.answer_mass_mean - 0.92).abs() < 1e-12);
        assert!(
            bank.psi.expect("psi") > PSI_WARNING,
            "all scores moved to the middle"
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.starts_with("a: the batch's scores drifted"))
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.starts_with("b: uncalibrated"))
        );
        assert!(report.per_bank["b"].calibration.is_none());
    }
}
