//! Object keys of a batch. Everything a bank's alerts produce (and its policy) lives under
//! `banks/<bank>/`, so access can be granted per bank; batch-wide objects (manifest, report)
//! hold no alert content.

/// A bank's shared prefix (its policy document) in a batch.
pub fn bank_prefix(bank: &str, batch: &str) -> String {
    format!("banks/{bank}/batches/{batch}/prefix.txt")
}

/// Every batch-wide object (manifest, report) starts with this.
pub const BATCHES_PREFIX: &str = "batches/";

/// The batch manifest.
pub fn manifest(batch: &str) -> String {
    format!("{BATCHES_PREFIX}{batch}/manifest.json")
}

/// The batch whose manifest `key` is, if it is one.
pub fn batch_of_manifest(key: &str) -> Option<&str> {
    key.strip_prefix(BATCHES_PREFIX)?
        .strip_suffix("/manifest.json")
        .filter(|batch| !batch.contains('/'))
}

/// The batch report.
pub fn report(batch: &str) -> String {
    format!("batches/{batch}/report.json")
}

/// The scheduler's per-bank stream cursors.
pub const CURSORS: &str = "scheduler/cursors.json";

/// The dedup index of the alerts a bank had in a batch cut at `created_unix_ms` (see
/// [`crate::dedup`]); the time in the name lets a cut pick the batches within its window by
/// listing, without reading their manifests.
pub fn dedup_index(bank: &str, batch: &str, created_unix_ms: i64) -> String {
    format!("{}{created_unix_ms:013}-{batch}.idx", dedup_prefix(bank))
}

/// Every dedup index of a bank starts with this.
pub fn dedup_prefix(bank: &str) -> String {
    format!("banks/{bank}/dedup/")
}

/// When the batch of a dedup index key was cut, and the batch.
pub fn dedup_entry<'a>(bank: &str, key: &'a str) -> Option<(i64, &'a str)> {
    let name = key
        .strip_prefix(&dedup_prefix(bank))?
        .strip_suffix(".idx")?;
    let (created, batch) = name.split_once('-')?;
    Some((created.parse().ok()?, batch))
}

/// Every object of a bank's batch (its policy, shards and results) starts with this.
pub fn bank_batch_prefix(bank: &str, batch: &str) -> String {
    format!("banks/{bank}/batches/{batch}/")
}

/// The banks with objects in storage, from the keys under `banks/`.
pub fn bank_of_key(key: &str) -> Option<&str> {
    key.strip_prefix("banks/")?.split('/').next()
}

/// One shard's alerts.
pub fn shard(bank: &str, batch: &str, shard: u32) -> String {
    format!("banks/{bank}/batches/{batch}/shards/{shard:05}.pb")
}

/// One shard's results, JSON lines.
pub fn results(bank: &str, batch: &str, shard: u32) -> String {
    format!("banks/{bank}/batches/{batch}/results/{shard:05}.jsonl")
}

/// The results of the alerts the prescreen cleared.
pub fn cleared(bank: &str, batch: &str) -> String {
    format!("banks/{bank}/batches/{batch}/results/cleared.jsonl")
}

/// The Arrow IPC twin of a JSONL results object: `.../results/X.jsonl` ->
/// `.../columnar/X.arrow`.
pub fn columnar(results_key: &str) -> String {
    let stem = results_key.strip_suffix(".jsonl").unwrap_or(results_key);
    format!("{}.arrow", stem.replacen("/results/", "/columnar/", 1))
}

/// Every result object of a bank's batch (scored shards and cleared alerts) starts with this.
pub fn results_prefix(bank: &str, batch: &str) -> String {
    format!("banks/{bank}/batches/{batch}/results/")
}
