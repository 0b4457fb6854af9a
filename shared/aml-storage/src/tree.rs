//! Folder trees: a local directory to keys under a prefix and back (model and training
//! outputs, which the runtime reads and writes as local files).

use std::path::{Path, PathBuf};

use crate::{Result, Storage, StorageError};

fn local(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Local {
        path: path.to_owned(),
        source,
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(local(dir))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// What [`Storage::sync_dir`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSync {
    /// Files uploaded.
    pub uploaded: usize,
    /// Objects deleted because no file matched them.
    pub deleted: usize,
}

impl Storage {
    /// Makes the objects under `prefix` a copy of the folder `dir`: uploads every file to
    /// `<prefix>/<relative path>`, then deletes the objects there that no file matches (such
    /// as checkpoints rotated away since the last sync).
    pub async fn sync_dir(&self, dir: &Path, prefix: &str) -> Result<DirSync> {
        let mut files = Vec::new();
        files_under(dir, &mut files)?;
        let prefix = prefix.trim_end_matches('/');
        let mut uploaded = std::collections::BTreeSet::new();
        for file in &files {
            let relative = file.strip_prefix(dir).unwrap_or(file);
            let key = format!("{prefix}/{}", relative.to_string_lossy().replace('\\', "/"));
            let bytes = tokio::fs::read(file).await.map_err(local(file))?;
            self.put(&key, bytes.into()).await?;
            uploaded.insert(key);
        }
        let mut deleted = 0;
        for key in self.list(prefix).await? {
            if !uploaded.contains(&key) {
                self.delete(&key).await?;
                deleted += 1;
            }
        }
        Ok(DirSync {
            uploaded: uploaded.len(),
            deleted,
        })
    }

    /// Downloads every object under `prefix` into `dir`, keeping the relative paths; returns
    /// how many.
    pub async fn get_dir(&self, prefix: &str, dir: &Path) -> Result<usize> {
        let prefix = prefix.trim_end_matches('/');
        let keys = self.list(prefix).await?;
        for key in &keys {
            let relative = key[prefix.len()..].trim_start_matches('/');
            let path = dir.join(relative);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(local(parent))?;
            }
            let bytes = self.get(key).await?;
            tokio::fs::write(&path, &bytes)
                .await
                .map_err(local(&path))?;
        }
        Ok(keys.len())
    }

    /// [`Storage::get_dir`] for immutable folders (models, datasets): downloads once, then
    /// marks `dir` complete so later calls read nothing; a broken download is redone.
    /// False when `prefix` holds no objects.
    pub async fn get_dir_once(&self, prefix: &str, dir: &Path) -> Result<bool> {
        let complete = dir.join(".complete");
        if complete.exists() {
            return Ok(true);
        }
        if self.get_dir(prefix, dir).await? == 0 {
            return Ok(false);
        }
        tokio::fs::write(&complete, b"")
            .await
            .map_err(local(&complete))?;
        Ok(true)
    }
}
