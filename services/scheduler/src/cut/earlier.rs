//! The alert ids earlier batches took, from the per-bank dedup indexes (see
//! [`aml_batch::dedup`]). Only batches cut within `scoring.dedup_days` and with a manifest
//! count: a cut that crashed before writing its manifest took nothing. Batches are found by
//! listing names (the manifests' and the indexes'), never by reading every manifest.

use std::collections::HashSet;

use aml_batch::dedup::{IdHash, decode_index, taken_before};
use aml_batch::layout;
use aml_storage::Storage;
use tracing::warn;

use super::CutError;

/// The batches a cut deduplicates against.
pub struct EarlierBatches {
    batch_id: String,
    horizon_unix_ms: i64,
    with_manifest: HashSet<String>,
}

impl EarlierBatches {
    /// The batches other than `batch_id` with a manifest; `None` when `days` is 0 (no
    /// dedup against earlier batches).
    pub async fn find(
        storage: &Storage,
        batch_id: &str,
        days: u32,
        now_unix_ms: i64,
    ) -> Result<Option<Self>, CutError> {
        if days == 0 {
            return Ok(None);
        }
        let with_manifest = storage
            .list(layout::BATCHES_PREFIX)
            .await?
            .iter()
            .filter_map(|key| layout::batch_of_manifest(key))
            .filter(|batch| *batch != batch_id)
            .map(str::to_owned)
            .collect();
        Ok(Some(EarlierBatches {
            batch_id: batch_id.to_owned(),
            horizon_unix_ms: now_unix_ms - i64::from(days) * 24 * 60 * 60 * 1000,
            with_manifest,
        }))
    }

    /// Which of `new` (ascending id hashes of `bank`'s alerts) earlier batches took. An
    /// index of this batch itself is what a crashed cut left: it is deleted. An index that
    /// does not decode is skipped with a warning (its alerts may be scored again; none is
    /// dropped).
    pub async fn taken(
        &self,
        storage: &Storage,
        bank: &str,
        new: &[IdHash],
    ) -> Result<HashSet<IdHash>, CutError> {
        let mut taken = HashSet::new();
        for key in storage.list(&layout::dedup_prefix(bank)).await? {
            let Some((created, batch)) = layout::dedup_entry(bank, &key) else {
                continue;
            };
            if batch == self.batch_id {
                storage.delete(&key).await?;
                continue;
            }
            if created < self.horizon_unix_ms || !self.with_manifest.contains(batch) {
                continue;
            }
            let bytes = storage.get(&key).await?;
            match decode_index(&key, &bytes) {
                Ok(earlier) => taken_before(new, &earlier, &mut taken),
                Err(error) => warn!(%error, "skipping a dedup index that does not decode"),
            }
        }
        Ok(taken)
    }
}
