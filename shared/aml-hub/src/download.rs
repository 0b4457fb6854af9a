//! Snapshot download: the repository's file list at a revision, then each file the runtime
//! reads, streamed to disk under `<cache>/<owner>/<name>/<commit>/`; a finished snapshot is
//! marked and reused without touching the network again.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::{HubClient, HubError, check_repo_id, io};

/// What a model snapshot needs: top-level JSON (config, tokenizer, index), safetensors
/// weights, the chat template file and a SentencePiece model. Other formats (`.bin`,
/// `.gguf`, `original/`) are skipped.
pub const SNAPSHOT_FILES: &str =
    "top-level *.json, *.safetensors, chat_template.jinja and tokenizer.model";

#[derive(Debug, Deserialize)]
struct ModelInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
}

fn wanted(file: &str) -> bool {
    !file.contains('/')
        && (file.ends_with(".json")
            || file.ends_with(".safetensors")
            || file == "chat_template.jinja"
            || file == "tokenizer.model")
}

impl HubClient {
    /// The folder of the model `name`: a local Hugging Face folder as it is (it must hold
    /// `config.json`), else a Hub id whose snapshot at `revision` is downloaded once into
    /// `cache`; `announce` is called before a download starts.
    pub async fn model_folder(
        &self,
        name: &str,
        revision: &str,
        cache: &Path,
        announce: impl FnOnce(),
    ) -> Result<PathBuf, HubError> {
        let local = PathBuf::from(name);
        if local.is_dir() {
            if !local.join("config.json").exists() {
                return Err(HubError::NotAModel(local));
            }
            return Ok(local);
        }
        check_repo_id(name)?;
        announce();
        self.download_model(name, revision, cache).await
    }

    /// Downloads `repo_id` at `revision` (a branch, tag or commit) into `cache` and returns
    /// the snapshot folder.
    pub async fn download_model(
        &self,
        repo_id: &str,
        revision: &str,
        cache: &Path,
    ) -> Result<PathBuf, HubError> {
        check_repo_id(repo_id)?;
        let url = format!("{}/api/models/{repo_id}/revision/{revision}", self.endpoint);
        let info: ModelInfo = self.json(&url, self.http.get(&url)).await?;
        let folder = cache.join(repo_id).join(&info.sha);
        let complete = folder.join(".complete");
        if complete.exists() {
            return Ok(folder);
        }
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(io(&folder))?;
        let files: Vec<&str> = info
            .siblings
            .iter()
            .map(|sibling| sibling.rfilename.as_str())
            .filter(|file| wanted(file))
            .collect();
        if !files.contains(&"config.json") {
            return Err(HubError::Http {
                url,
                reason: "the repository has no config.json: not a transformers model".to_owned(),
            });
        }
        for file in files {
            self.download_file(repo_id, &info.sha, file, &folder.join(file))
                .await?;
        }
        tokio::fs::write(&complete, b"")
            .await
            .map_err(io(&complete))?;
        Ok(folder)
    }

    /// Streams one file to `path` through a temporary name, so a broken download never
    /// looks finished.
    async fn download_file(
        &self,
        repo_id: &str,
        commit: &str,
        file: &str,
        path: &Path,
    ) -> Result<(), HubError> {
        let url = format!("{}/{repo_id}/resolve/{commit}/{file}", self.endpoint);
        let mut response = self.send(&url, self.http.get(&url)).await?;
        let partial = path.with_extension("partial");
        let mut out = tokio::fs::File::create(&partial)
            .await
            .map_err(io(&partial))?;
        while let Some(chunk) = response.chunk().await.map_err(|error| HubError::Http {
            url: url.clone(),
            reason: error.to_string(),
        })? {
            out.write_all(&chunk).await.map_err(io(&partial))?;
        }
        out.flush().await.map_err(io(&partial))?;
        tokio::fs::rename(&partial, path).await.map_err(io(path))
    }
}
