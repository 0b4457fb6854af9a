//! What is past retention in object storage, and deleting it. A bank's batch folder (its
//! policy, shards and results: alert content) expires `retention_days` after its newest object
//! was written, as a whole. The batch-wide records (manifest and report: counts, no alert
//! content) and the dedup indexes (hashes, no alert ids) are what later cuts deduplicate
//! against, so they are kept for `dedup_days` (and never less than `retention_days`). 0 days
//! keeps forever (for records and indexes: a `retention_days` of 0).

use std::collections::BTreeMap;

use aml_storage::{Storage, StorageError};

use crate::layout;

/// How long objects are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRules {
    /// Days a bank's batch folder is kept (0: forever).
    pub retention_days: u32,
    /// Days batch records and dedup indexes are kept (0: forever).
    pub dedup_days: u32,
}

/// What a group of expired objects is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExpiredKind {
    /// A bank's objects of one batch: policy, shards, results.
    BankBatch,
    /// A bank's dedup index of one batch.
    DedupIndex,
    /// A batch's manifest and report.
    BatchRecord,
}

/// Objects past retention, deleted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// What they are.
    pub kind: ExpiredKind,
    /// The bank (empty for batch records).
    pub bank: String,
    /// The batch.
    pub batch: String,
    /// Their keys.
    pub keys: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
    /// When the newest of them was written (Unix ms).
    pub newest_unix_ms: i64,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The last write time a group may have to be past `days` at `now` (none for 0 days).
fn horizon(now_unix_ms: i64, days: u32) -> Option<i64> {
    (days > 0).then(|| now_unix_ms - i64::from(days) * DAY_MS)
}

/// Groups of objects (by kind, bank and batch) with their keys, bytes and newest write.
type Groups = BTreeMap<(ExpiredKind, String, String), Expired>;

fn add(
    groups: &mut Groups,
    kind: ExpiredKind,
    bank: &str,
    batch: &str,
    object: aml_storage::ObjectInfo,
) {
    let group = groups
        .entry((kind.clone(), bank.to_owned(), batch.to_owned()))
        .or_insert_with(|| Expired {
            kind,
            bank: bank.to_owned(),
            batch: batch.to_owned(),
            keys: Vec::new(),
            bytes: 0,
            newest_unix_ms: i64::MIN,
        });
    group.bytes += object.size;
    group.newest_unix_ms = group.newest_unix_ms.max(object.modified_unix_ms);
    group.keys.push(object.key);
}

/// The groups of objects past `rules` at `now_unix_ms`, of the banks in `banks` (empty: all;
/// batch records are batch-wide and listed whatever `banks` holds only when it is empty).
pub async fn expired(
    storage: &Storage,
    rules: RetentionRules,
    now_unix_ms: i64,
    banks: &[String],
) -> Result<Vec<Expired>, StorageError> {
    let wanted = |bank: &str| banks.is_empty() || banks.iter().any(|b| b == bank);
    let mut groups = Groups::new();
    for object in storage.list_objects("banks/").await? {
        let Some(bank) = layout::bank_of_key(&object.key) else {
            continue;
        };
        if !wanted(bank) {
            continue;
        }
        let bank = bank.to_owned();
        let rest = &object.key["banks/".len() + bank.len()..];
        if let Some((_, batch)) = layout::dedup_entry(&bank, &object.key) {
            let batch = batch.to_owned();
            add(&mut groups, ExpiredKind::DedupIndex, &bank, &batch, object);
        } else if let Some(batch) = rest
            .strip_prefix("/batches/")
            .and_then(|tail| tail.split('/').next())
        {
            let batch = batch.to_owned();
            add(&mut groups, ExpiredKind::BankBatch, &bank, &batch, object);
        }
    }
    if banks.is_empty() {
        for object in storage.list_objects(layout::BATCHES_PREFIX).await? {
            let Some(batch) = object.key[layout::BATCHES_PREFIX.len()..].split('/').next() else {
                continue;
            };
            let batch = batch.to_owned();
            add(&mut groups, ExpiredKind::BatchRecord, "", &batch, object);
        }
    }
    let records_days = if rules.retention_days == 0 {
        0
    } else {
        rules.dedup_days.max(rules.retention_days)
    };
    Ok(groups
        .into_values()
        .filter(|group| {
            let days = match group.kind {
                ExpiredKind::BankBatch => rules.retention_days,
                ExpiredKind::DedupIndex | ExpiredKind::BatchRecord => records_days,
            };
            horizon(now_unix_ms, days).is_some_and(|before| group.newest_unix_ms < before)
        })
        .collect())
}

/// Deletes every object of `groups`; returns how many.
pub async fn delete_expired(storage: &Storage, groups: &[Expired]) -> Result<u64, StorageError> {
    let mut deleted = 0;
    for key in groups.iter().flat_map(|group| &group.keys) {
        storage.delete(key).await?;
        deleted += 1;
    }
    Ok(deleted)
}
