//! Folder upload as one commit, the way `huggingface_hub` does it: create the repository
//! (an existing one is fine), ask the Hub which files go through LFS (`preupload`), upload
//! those through the LFS batch API, then commit every file (small ones inline, base64) with
//! one NDJSON request. Checkpoints and hidden files stay local.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{HubClient, HubError, check_repo_id, io};

/// A file to commit: its path in the repository and its bytes.
struct Upload {
    path: String,
    bytes: Vec<u8>,
}

#[derive(Debug, Deserialize)]
struct Preupload {
    files: Vec<PreuploadFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreuploadFile {
    path: String,
    upload_mode: String,
}

#[derive(Debug, Deserialize)]
struct LfsBatch {
    objects: Vec<LfsObject>,
}

#[derive(Debug, Deserialize)]
struct LfsObject {
    oid: String,
    #[serde(default)]
    actions: Option<LfsActions>,
}

#[derive(Debug, Deserialize)]
struct LfsActions {
    upload: Option<LfsAction>,
    verify: Option<LfsAction>,
}

#[derive(Debug, Deserialize)]
struct LfsAction {
    href: String,
    #[serde(default)]
    header: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitInfo {
    commit_url: String,
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HubError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.starts_with('.') || name.starts_with("checkpoint") {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl HubClient {
    /// Pushes every file under `folder` (but checkpoints and hidden files) to the model
    /// repository `repo_id` as one commit on `main`, creating a private repository if there
    /// is none; returns the commit URL.
    pub async fn push_folder(
        &self,
        repo_id: &str,
        folder: &Path,
        message: &str,
    ) -> Result<String, HubError> {
        check_repo_id(repo_id)?;
        let mut paths = Vec::new();
        collect(folder, &mut paths)?;
        let mut uploads = Vec::with_capacity(paths.len());
        for path in &paths {
            let relative = path
                .strip_prefix(folder)
                .map_err(|_| HubError::RepoId(path.display().to_string()))?;
            uploads.push(Upload {
                path: relative.to_string_lossy().replace('\\', "/"),
                bytes: std::fs::read(path).map_err(io(path))?,
            });
        }
        self.create_repo(repo_id).await?;
        let lfs = self.preupload(repo_id, &uploads).await?;
        let mut lines =
            vec![json!({"key": "header", "value": {"summary": message, "description": ""}})];
        for upload in &uploads {
            if lfs.contains(&upload.path) {
                let oid = sha256(&upload.bytes);
                self.upload_lfs(repo_id, &oid, &upload.bytes).await?;
                lines.push(json!({"key": "lfsFile", "value": {"path": upload.path, "algo": "sha256", "oid": oid, "size": upload.bytes.len()}}));
            } else {
                lines.push(json!({"key": "file", "value": {"path": upload.path, "encoding": "base64", "content": BASE64.encode(&upload.bytes)}}));
            }
        }
        let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let url = format!("{}/api/models/{repo_id}/commit/main", self.endpoint);
        let request = self
            .http
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body);
        let commit: CommitInfo = self.json(&url, request).await?;
        Ok(commit.commit_url)
    }

    async fn create_repo(&self, repo_id: &str) -> Result<(), HubError> {
        let (owner, name) = repo_id
            .split_once('/')
            .ok_or_else(|| HubError::RepoId(repo_id.to_owned()))?;
        let url = format!("{}/api/repos/create", self.endpoint);
        let request = self.http.post(&url).json(&json!({
            "type": "model", "name": name, "organization": owner, "private": true,
        }));
        match self.send(&url, request).await {
            Ok(_) => Ok(()),
            Err(HubError::Http { reason, .. }) if reason.starts_with("HTTP 409") => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The paths the Hub wants through LFS.
    async fn preupload(&self, repo_id: &str, uploads: &[Upload]) -> Result<Vec<String>, HubError> {
        let files: Vec<serde_json::Value> = uploads
            .iter()
            .map(|upload| {
                let sample = &upload.bytes[..upload.bytes.len().min(512)];
                json!({"path": upload.path, "size": upload.bytes.len(), "sample": BASE64.encode(sample)})
            })
            .collect();
        let url = format!("{}/api/models/{repo_id}/preupload/main", self.endpoint);
        let answer: Preupload = self
            .json(&url, self.http.post(&url).json(&json!({ "files": files })))
            .await?;
        Ok(answer
            .files
            .into_iter()
            .filter(|file| file.upload_mode == "lfs")
            .map(|file| file.path)
            .collect())
    }

    /// Uploads one LFS object unless the Hub has it already.
    async fn upload_lfs(&self, repo_id: &str, oid: &str, bytes: &[u8]) -> Result<(), HubError> {
        let url = format!("{}/{repo_id}.git/info/lfs/objects/batch", self.endpoint);
        let request = self
            .http
            .post(&url)
            .header("accept", "application/vnd.git-lfs+json")
            .header("content-type", "application/vnd.git-lfs+json")
            .body(
                json!({
                    "operation": "upload",
                    "transfers": ["basic"],
                    "objects": [{"oid": oid, "size": bytes.len()}],
                    "hash_algo": "sha256",
                })
                .to_string(),
            );
        let batch: LfsBatch = self.json(&url, request).await?;
        let Some(actions) = batch
            .objects
            .into_iter()
            .find(|object| object.oid == oid)
            .and_then(|object| object.actions)
        else {
            return Ok(());
        };
        if let Some(upload) = actions.upload {
            let mut request = self.http.put(&upload.href).body(bytes.to_vec());
            for (name, value) in &upload.header {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(|error| HubError::Http {
                url: upload.href.clone(),
                reason: error.to_string(),
            })?;
            if !response.status().is_success() {
                return Err(HubError::Http {
                    url: upload.href,
                    reason: format!("LFS upload: HTTP {}", response.status()),
                });
            }
        }
        if let Some(verify) = actions.verify {
            let mut request = self
                .http
                .post(&verify.href)
                .json(&json!({"oid": oid, "size": bytes.len()}));
            for (name, value) in &verify.header {
                request = request.header(name, value);
            }
            self.send(&verify.href, request).await?;
        }
        Ok(())
    }
}
