//! A folder named by a URL, as models, datasets and training outputs are: a local path (or
//! `file://` URL) used in place, or keys of this storage staged in a local folder: an input
//! downloaded once, an output downloaded first (to resume) and made a copy of the local
//! folder after each step (objects rotated away locally are deleted there too).

use std::path::{Path, PathBuf};

use crate::{DirSync, Result, Storage, StorageError};

/// Where a folder named by a URL lives.
#[derive(Debug, Clone)]
pub enum StagedFolder {
    /// A local folder, used in place.
    Local(PathBuf),
    /// Keys under `key` in the storage, staged in the local folder `dir`.
    Stored {
        /// The storage holding it.
        storage: Storage,
        /// The folder's key prefix, without slashes at either end.
        key: String,
        /// The local folder it is staged in.
        dir: PathBuf,
    },
}

impl Storage {
    /// The folder at `url`: a path or `file://` URL as it is; a URL under this storage
    /// staged in `staging/<key>`. Any other URL is an error naming it.
    pub fn folder(&self, url: &str, staging: &Path) -> Result<StagedFolder> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(StagedFolder::Local(PathBuf::from(path)));
        }
        let Some(key) = self.key_of(url) else {
            if url.contains("://") {
                return Err(StorageError::InvalidUrl {
                    url: url.to_owned(),
                    reason: format!(
                        "neither a local folder nor under the configured storage {}",
                        self.url()
                    ),
                });
            }
            return Ok(StagedFolder::Local(PathBuf::from(url)));
        };
        let key = key.trim_matches('/').to_owned();
        if key.is_empty() {
            return Err(StorageError::InvalidUrl {
                url: url.to_owned(),
                reason: "names the whole storage; name a folder inside it".to_owned(),
            });
        }
        Ok(StagedFolder::Stored {
            storage: self.clone(),
            dir: staging.join(&key),
            key,
        })
    }
}

impl StagedFolder {
    /// The local folder.
    pub fn dir(&self) -> &Path {
        match self {
            StagedFolder::Local(path) => path,
            StagedFolder::Stored { dir, .. } => dir,
        }
    }

    /// Whether it lives in object storage.
    pub fn is_stored(&self) -> bool {
        matches!(self, StagedFolder::Stored { .. })
    }

    /// The local folder of an input that never changes (a model, a dataset), downloaded the
    /// first time only; a stored folder without objects is [`StorageError::NotFound`].
    pub async fn fetch_input(&self) -> Result<&Path> {
        if let StagedFolder::Stored { storage, key, dir } = self
            && !storage.get_dir_once(key, dir).await?
        {
            return Err(StorageError::NotFound {
                key: format!("{key}/"),
                store: storage.url().to_owned(),
            });
        }
        Ok(self.dir())
    }

    /// The local folder of an output, with what the store already holds there (checkpoints
    /// to resume from) downloaded first; returns how many files came down.
    pub async fn fetch_output(&self) -> Result<usize> {
        match self {
            StagedFolder::Local(_) => Ok(0),
            StagedFolder::Stored { storage, key, dir } => storage.get_dir(key, dir).await,
        }
    }

    /// Makes a stored folder's objects a copy of the local folder (nothing for a local one).
    pub async fn upload(&self) -> Result<Option<DirSync>> {
        match self {
            StagedFolder::Local(_) => Ok(None),
            StagedFolder::Stored { storage, key, dir } => {
                Ok(Some(storage.sync_dir(dir, key).await?))
            }
        }
    }

    /// The URL of `relative` inside the folder.
    pub fn url_of(&self, relative: &str) -> String {
        match self {
            StagedFolder::Local(path) => format!("file://{}", path.join(relative).display()),
            StagedFolder::Stored { storage, key, .. } => {
                storage.url_of(&format!("{key}/{relative}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::S3Options;

    #[tokio::test]
    async fn a_stored_output_round_trips_and_local_paths_stay_in_place() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open("memory://", &S3Options::default()).unwrap();
        let staging = root.path().join("staging");
        let local = storage.folder("/models/base", &staging).unwrap();
        assert_eq!(local.dir(), Path::new("/models/base"));
        assert!(!local.is_stored());
        let error = storage.folder("s3://elsewhere/x", &staging).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("neither a local folder nor under"),
            "{error}"
        );

        let url = storage.url_of("runs/r1");
        let output = storage.folder(&url, &staging).unwrap();
        assert_eq!(output.dir(), staging.join("runs/r1"));
        assert_eq!(output.fetch_output().await.unwrap(), 0);
        std::fs::create_dir_all(output.dir().join("checkpoints/step-1")).unwrap();
        std::fs::write(output.dir().join("checkpoints/step-1/state"), b"x").unwrap();
        std::fs::write(output.dir().join("trainer_state.json"), b"{}").unwrap();
        let synced = output.upload().await.unwrap().unwrap();
        assert_eq!((synced.uploaded, synced.deleted), (2, 0));
        std::fs::remove_dir_all(output.dir().join("checkpoints")).unwrap();
        let synced = output.upload().await.unwrap().unwrap();
        assert_eq!(
            (synced.uploaded, synced.deleted),
            (1, 1),
            "the rotated file goes"
        );
        assert_eq!(output.url_of("adapter"), format!("{url}/adapter"));

        let input = storage.folder(&url, &root.path().join("cache")).unwrap();
        assert!(
            input
                .fetch_input()
                .await
                .unwrap()
                .join("trainer_state.json")
                .exists()
        );
        let missing = storage
            .folder(&storage.url_of("nothing"), &staging)
            .unwrap();
        assert!(matches!(
            missing.fetch_input().await,
            Err(StorageError::NotFound { .. })
        ));
    }
}
