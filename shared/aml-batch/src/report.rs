//! Assembling a [`BatchReport`] from the manifest and the shards' completions.

use std::collections::BTreeMap;

use aml_proto::v1::{BankSummary, BatchReport, ShardCompleted};

use crate::manifest::BatchManifest;

/// The report of a batch: counts per bank, completion, escalations, throughput, GPU time and
/// cost. `completions` holds at most one entry per shard (the first that arrived);
/// `prefix_encodes` is the sum over workers of each worker's highest count.
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
                    scored: 0,
                    escalated: 0,
                    cleared_by_prescreen: plan.cleared_by_prescreen,
                },
            )
        })
        .collect();
    let mut gpu_seconds = 0.0;
    let mut encodes_per_worker: BTreeMap<&str, u64> = BTreeMap::new();
    for shard in &manifest.shards {
        let Some(done) = completions.get(&shard.shard) else {
            continue;
        };
        let summary = per_bank.entry(shard.bank.clone()).or_default();
        summary.scored += done.scored;
        summary.escalated += done.escalated;
        gpu_seconds += done.gpu_seconds;
        let count = encodes_per_worker.entry(&done.worker_id).or_default();
        *count = (*count).max(done.prefix_encodes);
    }
    let alerts_in = manifest.alerts_in();
    let scored: u64 = per_bank.values().map(|bank| bank.scored).sum();
    let cleared: u64 = per_bank
        .values()
        .map(|bank| bank.cleared_by_prescreen)
        .sum();
    let done = scored + cleared;
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
        tau: manifest.tau,
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
            tau: 0.3,
            prescreen_cutoff: 0.5,
            model_url: String::new(),
            adapter_url: String::new(),
            prefix_key: String::new(),
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
    }
}
