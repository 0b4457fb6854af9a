//! A training run's checkpoint folders, in the store and in the local staging folder, so a
//! test can check that the store keeps exactly what checkpoint rotation kept.

use std::path::Path;

use aml_storage::Storage;
use anyhow::Context;

/// The checkpoint folder names (`step-…`) under `<run>/checkpoints` in `storage` and under
/// `staged/checkpoints` on disk, each sorted.
pub async fn stored_and_staged(
    storage: &Storage,
    run: &str,
    staged: &Path,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let prefix = format!("{}/checkpoints", run.trim_end_matches('/'));
    let mut stored: Vec<String> = storage
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|key| key.strip_prefix(&prefix)?.split('/').nth(1))
        .map(str::to_owned)
        .collect();
    stored.dedup();
    let folder = staged.join("checkpoints");
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(&folder).with_context(|| folder.display().to_string())? {
        on_disk.push(entry?.file_name().to_string_lossy().into_owned());
    }
    on_disk.sort();
    Ok((stored, on_disk))
}
