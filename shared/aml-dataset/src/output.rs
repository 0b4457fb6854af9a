//! Writing a dataset: the five JSONL files and a manifest with counts and hashes.

use std::collections::BTreeMap;

use aml_core::{Difficulty, Label, SampleRecord};
use aml_storage::Storage;
use serde::{Deserialize, Serialize};

use crate::build::{Dataset, Rejections};

/// One written file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Records in it.
    pub records: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

/// What a dataset folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Per file name: records and hash.
    pub files: BTreeMap<String, FileEntry>,
    /// Records per tier and label in the training files.
    pub train_labels: BTreeMap<String, BTreeMap<String, u64>>,
    /// Records per `tier/label` cell of the validation set.
    pub validation_cells: BTreeMap<String, u64>,
    /// Rejected candidates, by reason.
    pub rejections: Rejections,
    /// Samples that received label-preserving noise.
    pub noised: u64,
    /// How token lengths were counted.
    pub token_count: String,
    /// SHA-256 over the files' hashes, in name order: the dataset's identity.
    pub dataset_sha256: String,
}

fn jsonl(records: &[SampleRecord]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for record in records {
        if let Ok(line) = serde_json::to_vec(record) {
            bytes.extend(line);
            bytes.push(b'\n');
        }
    }
    bytes
}

/// Writes `easy.jsonl`, `medium.jsonl`, `hard.jsonl`, `train.jsonl`, `validation.jsonl` and
/// `manifest.json` under `prefix` (each a whole-object write) and returns the manifest.
pub async fn write_dataset(
    storage: &Storage,
    prefix: &str,
    dataset: &Dataset,
) -> aml_storage::Result<Manifest> {
    let key = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", prefix.trim_end_matches('/'))
        }
    };
    let mut contents: Vec<(String, Vec<SampleRecord>)> = Vec::new();
    let mut train = Vec::new();
    for tier in Difficulty::ALL {
        let records = dataset.tiers.get(&tier).cloned().unwrap_or_default();
        train.extend(records.iter().cloned());
        contents.push((format!("{tier}.jsonl"), records));
    }
    contents.push(("train.jsonl".to_owned(), train.clone()));
    contents.push(("validation.jsonl".to_owned(), dataset.validation.clone()));
    let mut files = BTreeMap::new();
    for (name, records) in &contents {
        let bytes = jsonl(records);
        let sha256 = aml_core::digest::sha256_hex(&bytes);
        storage.put(&key(name), bytes.into()).await?;
        files.insert(
            name.clone(),
            FileEntry {
                records: records.len() as u64,
                sha256,
            },
        );
    }
    let mut train_labels: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for record in &train {
        *train_labels
            .entry(record.difficulty.to_string())
            .or_default()
            .entry(record.label.to_string())
            .or_default() += 1;
    }
    let mut validation_cells: BTreeMap<String, u64> = BTreeMap::new();
    for tier in Difficulty::ALL {
        for label in Label::ALL {
            validation_cells.insert(format!("{tier}/{label}"), 0);
        }
    }
    for record in &dataset.validation {
        *validation_cells
            .entry(format!("{}/{}", record.difficulty, record.label))
            .or_default() += 1;
    }
    let mut identity = aml_core::digest::Sha256Stream::default();
    for entry in files.values() {
        identity.update(entry.sha256.as_bytes());
    }
    let manifest = Manifest {
        files,
        train_labels,
        validation_cells,
        rejections: dataset.rejections.clone(),
        noised: dataset.noised,
        token_count: "approximate: ceil(characters / 4)".to_owned(),
        dataset_sha256: identity.finish(),
    };
    storage.put_json(&key("manifest.json"), &manifest).await?;
    Ok(manifest)
}
