//! Cutting a batch: for each bank, the alerts on `aml.alerts.<bank>` after the bank's cursor
//! up to the last one present now, each decoded and checked once (a failure goes to the DLQ
//! with its reason, as do the alerts of a bank the scheduler does not serve), deduplicated
//! by alert id (within the batch and against the ids earlier batches took), prescreened at
//! the bank's calibrated cutoff, and cut into shards written under the bank's keys with its
//! policy. The CPU work runs on a blocking thread. The manifest is written before the
//! cursors move and before any job goes out, so a scheduler restarted mid-way resumes this
//! batch. A bank whose calibration does not hold for the batch's model, adapter or policy
//! refuses the whole batch before any alert is read.

mod bank;
mod earlier;
mod stream;

use std::collections::BTreeMap;

use aml_batch::layout;
use aml_batch::{BankPlan, BatchManifest, IntakeRules, ShardPlan, put_results};
use aml_bus::topology::subjects;
use aml_runtime::ScoringConfig;
use aml_storage::{Fingerprinter, Storage};
use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use tracing::warn;

use bank::{check_bank, shard_bank};
use earlier::EarlierBatches;
pub use stream::banks_with_alerts;
use stream::{RawAlert, read_bank};

/// Why a batch could not be cut.
#[derive(Debug, thiserror::Error)]
pub enum CutError {
    /// JetStream failed.
    #[error("reading {what}: {reason}")]
    Stream {
        /// What was being read.
        what: String,
        /// The server's or client's complaint.
        reason: String,
    },
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] aml_storage::StorageError),
    /// Results could not be written.
    #[error(transparent)]
    Results(#[from] aml_batch::ColumnarError),
    /// The blocking thread doing a bank's share failed.
    #[error("cutting a bank's alerts: {0}")]
    Worker(String),
    /// The DLQ did not take a refused alert.
    #[error(transparent)]
    DeadLetter(#[from] aml_bus::BusError),
    /// The batch cannot be scored as configured (a calibration that does not hold for it,
    /// one that cannot be read): it is refused, not retried.
    #[error("{0}")]
    Refused(String),
}

fn stream_error(what: impl Into<String>) -> impl FnOnce(String) -> CutError {
    let what = what.into();
    move |reason| CutError::Stream { what, reason }
}

/// The scheduler's read positions: per bank, the stream sequence of the last alert taken
/// into a batch, valid for the incarnation of the ALERTS stream created at `stream_created`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursors {
    /// When the stream was created (its creation time as the server reports it).
    pub stream_created: String,
    /// Per bank, the last sequence taken.
    pub banks: BTreeMap<String, u64>,
}

async fn load_cursors(storage: &Storage) -> Result<Cursors, CutError> {
    if storage.exists(layout::CURSORS).await? {
        Ok(storage.get_json(layout::CURSORS).await?)
    } else {
        Ok(Cursors::default())
    }
}

/// Moves the stored cursors to where `manifest` says its batch read up to: never back
/// within one stream; when the manifest read another incarnation of the stream, its
/// positions replace the stored ones.
/// Called after a cut and again when a batch is resumed, which may follow a crash between
/// the manifest and the cursors.
pub async fn commit_cursors(storage: &Storage, manifest: &BatchManifest) -> Result<(), CutError> {
    let stored = load_cursors(storage).await?;
    let mut cursors = if stored.stream_created == manifest.stream_created {
        stored.clone()
    } else {
        Cursors {
            stream_created: manifest.stream_created.clone(),
            banks: BTreeMap::new(),
        }
    };
    for (bank, last) in &manifest.cursors_after {
        let cursor = cursors.banks.entry(bank.clone()).or_default();
        *cursor = (*cursor).max(*last);
    }
    if cursors != stored {
        storage.put_json(layout::CURSORS, &cursors).await?;
    }
    Ok(())
}

/// Sends refused alerts of `bank` to the DLQ, each with its reason and stream sequence.
async fn dead_letter_all(
    jetstream: &jetstream::Context,
    bank: &str,
    refused: impl IntoIterator<Item = (RawAlert, String)>,
) -> Result<u64, CutError> {
    let subject = subjects::alerts(bank);
    let mut count = 0;
    for (raw, reason) in refused {
        let reason = format!("{reason} (ALERTS sequence {})", raw.sequence);
        aml_bus::dead_letter(jetstream, &subject, None, raw.payload, 1, &reason).await?;
        count += 1;
    }
    Ok(count)
}

/// Runs `work` on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CutError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| CutError::Worker(error.to_string()))
}

/// Cuts batch `batch_id` from the alerts after the stored cursors and writes shards, cleared
/// results, the dedup indexes, each bank's prefix and the manifest; [`commit_cursors`] then
/// moves the cursors.
pub async fn cut_batch(
    jetstream: &jetstream::Context,
    storage: &Storage,
    fingerprinter: &Fingerprinter,
    config: &ScoringConfig,
    batch_id: &str,
    banks: &[String],
    shard_size: u32,
) -> Result<BatchManifest, CutError> {
    let (stream_created, banks_now) = banks_with_alerts(jetstream, banks).await?;
    let known: Vec<String> = banks_now
        .keys()
        .filter(|bank| aml_bus::topology::valid_bank(bank))
        .filter(|bank| config.banks.is_empty() || config.banks.contains(bank))
        .cloned()
        .collect();
    let mut scorings =
        crate::calibration::bank_scorings(storage, fingerprinter, config, &known).await?;
    let stored = load_cursors(storage).await?;
    let cursors = if stored.stream_created == stream_created {
        stored.banks
    } else {
        if !stored.banks.is_empty() {
            warn!(
                was = stored.stream_created,
                now = stream_created,
                "the ALERTS stream was recreated: reading it from its first alert"
            );
        }
        BTreeMap::new()
    };
    let rules = IntakeRules {
        banks: config.banks.clone(),
        max_alert_bytes: config.max_alert_bytes,
    };
    let mut manifest = BatchManifest {
        batch_id: batch_id.to_owned(),
        created_unix_ms: chrono::Utc::now().timestamp_millis(),
        model_url: config.model_url.clone(),
        rationale: config.rationale,
        banks: BTreeMap::new(),
        shards: Vec::new(),
        cursors_after: BTreeMap::new(),
        stream_created,
    };
    let earlier = EarlierBatches::find(
        storage,
        batch_id,
        config.dedup_days,
        manifest.created_unix_ms,
    )
    .await?;
    for (bank, last) in banks_now {
        let after = cursors.get(&bank).copied().unwrap_or(0);
        if last <= after {
            continue;
        }
        let raw = read_bank(jetstream, &bank, after, last).await?;
        let Some((mut scoring, policy)) = scorings.remove(&bank) else {
            let reason = format!("unknown bank `{bank}`");
            let refused = dead_letter_all(
                jetstream,
                &bank,
                raw.into_iter().map(|raw| (raw, reason.clone())),
            )
            .await?;
            warn!(bank, refused, "alerts of a bank not served sent to the DLQ");
            manifest.cursors_after.insert(bank, last);
            continue;
        };
        scoring.prefix_key = layout::bank_prefix(&bank, batch_id);
        let subject = subjects::alerts(&bank);
        let bank_rules = rules.clone();
        let checked = blocking(move || check_bank(raw, &subject, &bank_rules)).await?;
        let mut plan = BankPlan {
            first_sequence: after + 1,
            last_sequence: last,
            rejected: checked.rejected.len() as u64,
            duplicates_dropped: checked.duplicates,
            ..Default::default()
        };
        dead_letter_all(
            jetstream,
            &bank,
            checked.rejected.into_iter().map(|r| (r.raw, r.reason)),
        )
        .await?;
        let taken = match &earlier {
            Some(earlier) => {
                earlier
                    .taken(storage, &bank, &checked.sorted_hashes)
                    .await?
            }
            None => Default::default(),
        };
        let (accepted, cutoff) = (checked.accepted, scoring.prescreen_cutoff);
        let size = shard_size.max(1) as usize;
        let cut = blocking(move || shard_bank(accepted, &taken, cutoff, size)).await?;
        plan.alerts_in = cut.alerts_in;
        plan.duplicates_dropped += cut.taken_earlier;
        plan.cleared_by_prescreen = cut.cleared.len() as u64;
        if cut.alerts_in > 0 {
            let index = layout::dedup_index(&bank, batch_id, manifest.created_unix_ms);
            storage.put(&index, cut.index).await?;
        }
        if !cut.cleared.is_empty() {
            put_results(storage, &layout::cleared(&bank, batch_id), &cut.cleared).await?;
        }
        for (alerts, bytes) in cut.shards {
            let shard = manifest.shards.len() as u32;
            let shard_key = layout::shard(&bank, batch_id, shard);
            storage.put(&shard_key, bytes).await?;
            manifest.shards.push(ShardPlan {
                shard,
                bank: bank.clone(),
                alerts,
                shard_key,
                results_key: layout::results(&bank, batch_id, shard),
            });
        }
        if plan.alerts_in > 0 {
            storage.put(&scoring.prefix_key, policy.into()).await?;
            plan.scoring = scoring;
        }
        // A bank whose alerts were all rejected or repeated is reported too.
        if plan.alerts_in + plan.rejected + plan.duplicates_dropped > 0 {
            manifest.banks.insert(bank.clone(), plan);
        }
        manifest.cursors_after.insert(bank, last);
    }
    storage
        .put_json(&layout::manifest(batch_id), &manifest)
        .await?;
    Ok(manifest)
}
