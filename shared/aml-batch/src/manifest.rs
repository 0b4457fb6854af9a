//! The batch manifest: what the scheduler cut and published, written before any job goes out
//! so a restarted scheduler resumes the same batch instead of cutting another.

use std::collections::BTreeMap;

use aml_core::cascade::Calibration;
use serde::{Deserialize, Serialize};

/// One bank's share of a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BankPlan {
    /// Distinct alerts taken from the bank's stream.
    pub alerts_in: u64,
    /// Of those, cleared by the prescreen.
    pub cleared_by_prescreen: u64,
    /// Duplicates (same alert id, in this batch or an earlier one) dropped.
    pub duplicates_dropped: u64,
    /// Alerts on the stream that failed intake checks (dead-lettered at intake).
    pub rejected: u64,
    /// Stream sequences covered, inclusive; 0/0 when none.
    pub first_sequence: u64,
    /// Last stream sequence covered.
    pub last_sequence: u64,
    /// How the bank's alerts are judged.
    #[serde(default)]
    pub scoring: BankScoring,
}

/// How one bank's alerts are judged in a batch: its thresholds, adapter and policy, and the
/// calibration the thresholds come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BankScoring {
    /// Escalation threshold on P(match) + P(edge).
    pub tau: f64,
    /// Prescreen cutoff (0: the prescreen clears nothing).
    pub prescreen_cutoff: f64,
    /// Adapter URL, empty for none.
    pub adapter_url: String,
    /// Key of the shared prefix (the bank's policy document).
    pub prefix_key: String,
    /// The calibration the thresholds come from; `None`: uncalibrated.
    pub calibration: Option<CalibrationSource>,
}

/// A calibration and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSource {
    /// Its URL.
    pub url: String,
    /// Its content.
    pub calibration: Calibration,
}

/// One shard: a bank's slice of alerts for one worker job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Shard number within the batch.
    pub shard: u32,
    /// The bank its alerts belong to.
    pub bank: String,
    /// Alerts in it.
    pub alerts: u32,
    /// Its alerts' object key.
    pub shard_key: String,
    /// Where the worker writes its results.
    pub results_key: String,
}

/// What a batch holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchManifest {
    /// The batch.
    pub batch_id: String,
    /// When it was cut (Unix ms).
    pub created_unix_ms: i64,
    /// The model the jobs name (each bank's adapter and policy are in its plan).
    pub model_url: String,
    /// Rationales asked for escalated alerts.
    pub rationale: bool,
    /// Per bank.
    pub banks: BTreeMap<String, BankPlan>,
    /// Every shard.
    pub shards: Vec<ShardPlan>,
    /// Per bank, the last stream sequence this batch read: where the scheduler's cursors
    /// move once the batch is cut (again on resume, so no alert lands in two batches).
    #[serde(default)]
    pub cursors_after: BTreeMap<String, u64>,
    /// When the ALERTS stream those sequences belong to was created: a recreated stream
    /// numbers its messages from 1 again.
    #[serde(default)]
    pub stream_created: String,
}

impl BatchManifest {
    /// The scoring of `bank` (the defaults when the batch has no such bank).
    pub fn scoring_of(&self, bank: &str) -> BankScoring {
        self.banks
            .get(bank)
            .map(|plan| plan.scoring.clone())
            .unwrap_or_default()
    }

    /// Alerts in the batch, all banks.
    pub fn alerts_in(&self) -> u64 {
        self.banks.values().map(|bank| bank.alerts_in).sum()
    }
}
