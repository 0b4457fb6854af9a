//! The fingerprint of a folder (a model, an adapter): the SHA-256 of its files' relative
//! paths, sizes and SHA-256s, the same whether the folder is local or in object storage.
//! What a calibration holds for is named by these, and a scheduler checks them before each
//! batch; a [`Fingerprinter`] remembers each file's hash by its size and modification time
//! (or ETag), so an unchanged 16 GB model is read once, not every week.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aml_core::digest::{Sha256Stream, sha256_hex, sha256_reader};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use crate::{Result, StagedFolder, Storage, StorageError};

/// Files a fingerprint leaves out: notes and records beside the weights that do not change
/// what the model computes, and a run's checkpoints.
fn ignored(relative: &str) -> bool {
    relative.starts_with("checkpoints/")
        || relative.starts_with(".")
        || matches!(
            relative.rsplit('/').next().unwrap_or(relative),
            "README.md" | ".gitattributes" | "calibration.json" | ".complete"
        )
}

/// One file as the fingerprint sees it.
struct Entry {
    relative: String,
    size: u64,
    sha256: String,
}

fn combine(mut entries: Vec<Entry>) -> String {
    entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    let mut lines = String::new();
    for entry in entries {
        lines.push_str(&format!(
            "{}\t{}\t{}\n",
            entry.relative, entry.size, entry.sha256
        ));
    }
    sha256_hex(lines.as_bytes())
}

/// A file as a [`Fingerprinter`] remembers it: where it is, its size and its version.
type FileVersion = (String, u64, String);

/// Hashes files, remembering each one's hash by where it is, its size and its version (mtime
/// or ETag). Cheap to clone: clones share what they remember.
#[derive(Debug, Default, Clone)]
pub struct Fingerprinter {
    known: Arc<Mutex<HashMap<FileVersion, String>>>,
}

impl Fingerprinter {
    fn remembered(&self, key: &FileVersion) -> Option<String> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn remember(&self, key: FileVersion, sha256: String) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, sha256);
    }

    /// The fingerprint of a local folder.
    pub fn local(&self, dir: &Path) -> Result<String> {
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        let mut entries = Vec::new();
        for path in files {
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if ignored(&relative) {
                continue;
            }
            let local = |source| StorageError::Local {
                path: path.clone(),
                source,
            };
            let metadata = std::fs::metadata(&path).map_err(local)?;
            let modified = metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_nanos());
            let key = (
                path.display().to_string(),
                metadata.len(),
                modified.to_string(),
            );
            let sha256 = match self.remembered(&key) {
                Some(sha256) => sha256,
                None => {
                    let file = std::fs::File::open(&path).map_err(local)?;
                    let sha256 = sha256_reader(file).map_err(local)?;
                    self.remember(key, sha256.clone());
                    sha256
                }
            };
            entries.push(Entry {
                relative,
                size: metadata.len(),
                sha256,
            });
        }
        Ok(combine(entries))
    }

    /// The fingerprint of the objects under `prefix` in `storage`, each streamed once.
    pub async fn stored(&self, storage: &Storage, prefix: &str) -> Result<String> {
        let prefix = prefix.trim_matches('/');
        let store = storage.object_store();
        let path = storage.path(prefix)?;
        let metas: Vec<object_store::ObjectMeta> = store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|error| storage.backend(prefix, error))?;
        let mut entries = Vec::new();
        for meta in metas {
            let key = meta.location.to_string();
            let relative = key
                .strip_prefix(prefix)
                .unwrap_or(&key)
                .trim_start_matches('/')
                .to_owned();
            if ignored(&relative) {
                continue;
            }
            let version = format!(
                "{}|{}",
                meta.e_tag.clone().unwrap_or_default(),
                meta.last_modified.timestamp_nanos_opt().unwrap_or(0)
            );
            let remembered_as = (storage.url_of(&key), meta.size, version);
            let sha256 = match self.remembered(&remembered_as) {
                Some(sha256) => sha256,
                None => {
                    let mut stream = store
                        .get(&meta.location)
                        .await
                        .map_err(|error| storage.backend(&key, error))?
                        .into_stream();
                    let mut hasher = Sha256Stream::default();
                    while let Some(chunk) = stream.next().await {
                        hasher.update(&chunk.map_err(|error| storage.backend(&key, error))?);
                    }
                    let sha256 = hasher.finish();
                    self.remember(remembered_as, sha256.clone());
                    sha256
                }
            };
            entries.push(Entry {
                relative,
                size: meta.size,
                sha256,
            });
        }
        if entries.is_empty() {
            return Err(StorageError::NotFound {
                key: format!("{prefix}/"),
                store: storage.url().to_owned(),
            });
        }
        Ok(combine(entries))
    }

    /// The fingerprint of a folder named by a URL: local in place (hashed on a blocking
    /// thread), stored by its objects.
    pub async fn folder(&self, folder: &StagedFolder) -> Result<String> {
        match folder {
            StagedFolder::Local(path) => {
                let (path, fingerprinter) = (path.clone(), self.clone());
                tokio::task::spawn_blocking(move || fingerprinter.local(&path))
                    .await
                    .map_err(|error| StorageError::Local {
                        path: folder.dir().to_owned(),
                        source: std::io::Error::other(error),
                    })?
            }
            StagedFolder::Stored { storage, key, .. } => self.stored(storage, key).await,
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| StorageError::Local {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The fingerprint of a local folder, hashing every file.
pub fn fingerprint_dir(dir: &Path) -> Result<String> {
    Fingerprinter::default().local(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::S3Options;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_folder_has_one_fingerprint_local_or_stored_and_notes_do_not_count() {
        let root = tempfile::tempdir().unwrap();
        let model = root.path().join("model");
        std::fs::create_dir_all(model.join("checkpoints/step-1")).unwrap();
        std::fs::write(model.join("config.json"), br#"{"a": 1}"#).unwrap();
        std::fs::write(model.join("model.safetensors"), vec![7u8; 3_000_000]).unwrap();
        std::fs::write(model.join("checkpoints/step-1/state"), b"x").unwrap();
        let local = fingerprint_dir(&model).unwrap();
        std::fs::write(model.join("README.md"), b"notes").unwrap();
        std::fs::write(model.join("calibration.json"), b"{}").unwrap();
        assert_eq!(
            fingerprint_dir(&model).unwrap(),
            local,
            "notes do not count"
        );

        let storage = Storage::open("memory://", &S3Options::default()).unwrap();
        storage.sync_dir(&model, "models/m").await.unwrap();
        let fingerprinter = Fingerprinter::default();
        let stored = storage
            .folder(&storage.url_of("models/m"), root.path())
            .unwrap();
        assert_eq!(fingerprinter.folder(&stored).await.unwrap(), local);
        assert_eq!(
            fingerprinter.folder(&stored).await.unwrap(),
            local,
            "remembered"
        );

        std::fs::write(model.join("model.safetensors"), vec![8u8; 3_000_000]).unwrap();
        assert_ne!(
            fingerprint_dir(&model).unwrap(),
            local,
            "other weights, other fingerprint"
        );
        let missing = storage
            .folder(&storage.url_of("models/none"), root.path())
            .unwrap();
        assert!(matches!(
            fingerprinter.folder(&missing).await,
            Err(StorageError::NotFound { .. })
        ));
    }
}
