//! Cutting a batch: for each bank, the alerts on `aml.alerts.<bank>` after the bank's cursor
//! up to the last one present now, checked, deduplicated by alert id (within the batch and
//! against the ids earlier batches took), prescreened at the bank's calibrated cutoff, and cut
//! into shards written under the bank's keys with its policy. The manifest is written before
//! the cursors move and before any job goes out, so a scheduler restarted mid-way resumes this
//! batch. A bank whose calibration does not hold for the batch's model, adapter or policy
//! refuses the whole batch before any alert is read.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aml_batch::layout;
use aml_batch::{
    BankPlan, BatchManifest, IntakeRules, ShardPlan, check_alert, encode_shard, put_results,
};
use aml_bus::topology::{ALERTS_STREAM, subjects};
use aml_prescreen::{Verdict, prescreen_alert};
use aml_proto::v1::{Alert, Label, ScoreResult};
use aml_runtime::ScoringConfig;
use aml_storage::{Fingerprinter, Storage};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};
use tracing::warn;

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

/// What the ALERTS stream holds now: when it was created, and the banks with alerts on it
/// with the sequence of each one's last alert; `only` restricts the banks (empty: all).
pub async fn banks_with_alerts(
    jetstream: &jetstream::Context,
    only: &[String],
) -> Result<(String, BTreeMap<String, u64>), CutError> {
    let mut stream = jetstream
        .get_stream(ALERTS_STREAM)
        .await
        .map_err(|e| stream_error("the ALERTS stream")(e.to_string()))?;
    let created = stream
        .info()
        .await
        .map_err(|e| stream_error("the ALERTS stream")(e.to_string()))?
        .created
        .to_string();
    let subjects_present: Vec<(String, usize)> = stream
        .info_with_subjects(subjects::ALERTS)
        .await
        .map_err(|e| stream_error("the ALERTS subjects")(e.to_string()))?
        .try_collect()
        .await
        .map_err(|e| stream_error("the ALERTS subjects")(e.to_string()))?;
    let mut banks = BTreeMap::new();
    for (subject, _) in subjects_present {
        let Some(bank) = aml_batch::intake::bank_of_subject(&subject) else {
            continue;
        };
        if !only.is_empty() && !only.iter().any(|wanted| wanted == bank) {
            continue;
        }
        let last = stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(|e| stream_error(format!("the last alert of {subject}"))(e.to_string()))?;
        banks.insert(bank.to_owned(), last.sequence);
    }
    Ok((created, banks))
}

/// The raw alerts of one bank with stream sequences in `(after, up_to]`.
async fn read_bank(
    jetstream: &jetstream::Context,
    bank: &str,
    after: u64,
    up_to: u64,
) -> Result<Vec<(String, bytes::Bytes)>, CutError> {
    let what = format!("aml.alerts.{bank}");
    let stream = jetstream
        .get_stream(ALERTS_STREAM)
        .await
        .map_err(|e| stream_error(what.clone())(e.to_string()))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subjects::alerts(bank),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| stream_error(what.clone())(e.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| stream_error(what.clone())(e.to_string()))?;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| {
                stream_error(what.clone())(format!("no message after sequence {after} within 10 s"))
            })?;
        let Some(message) = next else { break };
        let message = message.map_err(|e| stream_error(what.clone())(e.to_string()))?;
        let sequence = message
            .info()
            .map_err(|e| stream_error(what.clone())(e.to_string()))?
            .stream_sequence;
        if sequence > up_to {
            break;
        }
        out.push((message.subject.to_string(), message.payload.clone()));
        if sequence == up_to {
            break;
        }
    }
    Ok(out)
}

/// A cleared alert's result: the prescreen's score and reason, no model score.
fn cleared_result(alert: &Alert, prescreen_score: f64, reason: String) -> ScoreResult {
    ScoreResult {
        alert_id: alert.alert_id.clone(),
        bank: alert.bank.clone(),
        label: Label::NoMatch as i32,
        cleared_reason: reason,
        prescreen_score,
        ..Default::default()
    }
}

/// The batches other than `batch_id` cut within `days` before `now_unix_ms` (none when
/// `days` is 0). Only batches with a manifest count: a cut that crashed before writing one
/// took nothing.
async fn batches_within(
    storage: &Storage,
    batch_id: &str,
    days: u32,
    now_unix_ms: i64,
) -> Result<HashSet<String>, CutError> {
    let mut batches = HashSet::new();
    if days == 0 {
        return Ok(batches);
    }
    let horizon = now_unix_ms - i64::from(days) * 24 * 60 * 60 * 1000;
    for key in storage.list(layout::BATCHES_PREFIX).await? {
        let Some(batch) = layout::batch_of_manifest(&key) else {
            continue;
        };
        if batch == batch_id {
            continue;
        }
        let manifest: BatchManifest = storage.get_json(&key).await?;
        if manifest.created_unix_ms >= horizon {
            batches.insert(batch.to_owned());
        }
    }
    Ok(batches)
}

/// The alert ids `bank` had in `batches`.
async fn ids_batched_in(
    storage: &Storage,
    bank: &str,
    batches: &HashSet<String>,
) -> Result<HashSet<String>, CutError> {
    let mut ids = HashSet::new();
    if batches.is_empty() {
        return Ok(ids);
    }
    let prefix = layout::alert_ids_prefix(bank);
    for key in storage.list(&prefix).await? {
        let listed_batch = key
            .strip_prefix(&prefix)
            .and_then(|name| name.strip_suffix(".txt"));
        if listed_batch.is_some_and(|batch| batches.contains(batch)) {
            let listed = storage.get(&key).await?;
            ids.extend(String::from_utf8_lossy(&listed).lines().map(str::to_owned));
        }
    }
    Ok(ids)
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

/// Cuts batch `batch_id` from the alerts after the stored cursors and writes shards, cleared
/// results, the alert-id lists, each bank's prefix and the manifest; [`commit_cursors`] then
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
    let earlier_batches = batches_within(
        storage,
        batch_id,
        config.dedup_days,
        manifest.created_unix_ms,
    )
    .await?;
    for (bank, last) in banks_now {
        let after = cursors.get(&bank).copied().unwrap_or(0);
        let Some((mut scoring, policy)) = scorings.remove(&bank) else {
            continue;
        };
        if last <= after {
            continue;
        }
        scoring.prefix_key = layout::bank_prefix(&bank, batch_id);
        let mut plan = BankPlan {
            first_sequence: after + 1,
            last_sequence: last,
            ..Default::default()
        };
        let earlier = ids_batched_in(storage, &bank, &earlier_batches).await?;
        let mut seen = HashSet::new();
        let mut batched = String::new();
        let mut to_model = Vec::new();
        let mut cleared = Vec::new();
        for (subject, payload) in read_bank(jetstream, &bank, after, last).await? {
            let Ok(alert) = Alert::decode(payload) else {
                plan.rejected += 1;
                continue;
            };
            if check_alert(&alert, &subject, &rules).is_err() {
                plan.rejected += 1;
                continue;
            }
            if earlier.contains(&alert.alert_id) || !seen.insert(alert.alert_id.clone()) {
                plan.duplicates_dropped += 1;
                continue;
            }
            plan.alerts_in += 1;
            batched.push_str(&alert.alert_id);
            batched.push('\n');
            let prescreen = prescreen_alert(&alert);
            match prescreen.verdict(scoring.prescreen_cutoff) {
                Verdict::Cleared(reason) => {
                    cleared.push(cleared_result(&alert, prescreen.score, reason))
                }
                Verdict::ToModel => to_model.push(alert),
            }
        }
        plan.cleared_by_prescreen = cleared.len() as u64;
        if !batched.is_empty() {
            storage
                .put(&layout::alert_ids(&bank, batch_id), batched.into())
                .await?;
        }
        if !cleared.is_empty() {
            put_results(storage, &layout::cleared(&bank, batch_id), &cleared).await?;
        }
        for chunk in to_model.chunks(shard_size.max(1) as usize) {
            let shard = manifest.shards.len() as u32;
            let shard_key = layout::shard(&bank, batch_id, shard);
            storage.put(&shard_key, encode_shard(chunk)).await?;
            manifest.shards.push(ShardPlan {
                shard,
                bank: bank.clone(),
                alerts: chunk.len() as u32,
                shard_key,
                results_key: layout::results(&bank, batch_id, shard),
            });
        }
        if plan.alerts_in > 0 {
            storage.put(&scoring.prefix_key, policy.into()).await?;
            plan.scoring = scoring;
            manifest.banks.insert(bank.clone(), plan);
        }
        manifest.cursors_after.insert(bank, last);
    }
    storage
        .put_json(&layout::manifest(batch_id), &manifest)
        .await?;
    Ok(manifest)
}
