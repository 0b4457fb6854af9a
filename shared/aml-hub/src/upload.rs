//! Folder upload as one commit, the way `huggingface_hub` does it: create the repository
//! (an existing one is fine), ask the Hub which files go through LFS (`preupload`), upload
//! those through the LFS batch API, then commit every file (small ones inline, base64) with
//! one NDJSON request. Checkpoints and hidden files stay local.
//!
//! LFS files are hashed and sent from disk in a stream, so merged 8B weights never sit in
//! memory; when the Hub asks for a multipart transfer (files of several GB), each part is
//! PUT to its own URL and the parts' ETags complete the upload.

use std::collections::BTreeMap;
use std::io::{Read, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::{HubClient, HubError, check_repo_id, io};

/// The LFS batch API's media type.
const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// How many leading bytes of each file the preupload call shows the Hub.
const SAMPLE_BYTES: usize = 512;

/// A file to commit: its path in the repository, where it lies here, its size and the
/// first bytes the Hub looks at to choose between inline and LFS.
struct Upload {
    path: String,
    file: PathBuf,
    size: u64,
    sample: Vec<u8>,
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
    header: BTreeMap<String, String>,
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

/// The file's SHA-256, read in a stream on a blocking thread.
async fn sha256_file(path: &Path) -> Result<String, HubError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&owned).map_err(io(&owned))?;
        aml_core::digest::sha256_reader(file).map_err(io(&owned))
    })
    .await
    .map_err(|error| HubError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(error),
    })?
}

/// `len` bytes of the file from `offset`, as a streamed request body.
async fn file_slice(path: &Path, offset: u64, len: u64) -> Result<reqwest::Body, HubError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io(path))?;
    file.seek(SeekFrom::Start(offset)).await.map_err(io(path))?;
    Ok(reqwest::Body::wrap_stream(ReaderStream::new(
        file.take(len),
    )))
}

fn describe(path: &Path) -> Result<(u64, Vec<u8>), HubError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let size = file.metadata().map_err(io(path))?.len();
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    file.take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)
        .map_err(io(path))?;
    Ok((size, sample))
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
            let (size, sample) = describe(path)?;
            uploads.push(Upload {
                path: relative.to_string_lossy().replace('\\', "/"),
                file: path.clone(),
                size,
                sample,
            });
        }
        self.create_repo(repo_id).await?;
        let lfs = self.preupload(repo_id, &uploads).await?;
        let mut lines =
            vec![json!({"key": "header", "value": {"summary": message, "description": ""}})];
        for upload in &uploads {
            if lfs.contains(&upload.path) {
                let oid = sha256_file(&upload.file).await?;
                self.upload_lfs(repo_id, &oid, upload).await?;
                lines.push(json!({"key": "lfsFile", "value": {"path": upload.path, "algo": "sha256", "oid": oid, "size": upload.size}}));
            } else {
                let bytes = tokio::fs::read(&upload.file)
                    .await
                    .map_err(io(&upload.file))?;
                lines.push(json!({"key": "file", "value": {"path": upload.path, "encoding": "base64", "content": BASE64.encode(&bytes)}}));
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
                json!({"path": upload.path, "size": upload.size, "sample": BASE64.encode(&upload.sample)})
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
    async fn upload_lfs(&self, repo_id: &str, oid: &str, upload: &Upload) -> Result<(), HubError> {
        let url = format!("{}/{repo_id}.git/info/lfs/objects/batch", self.endpoint);
        let request = self
            .http
            .post(&url)
            .header("accept", LFS_JSON)
            .header("content-type", LFS_JSON)
            .body(
                json!({
                    "operation": "upload",
                    "transfers": ["basic", "multipart"],
                    "objects": [{"oid": oid, "size": upload.size}],
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
        if let Some(action) = actions.upload {
            match action.header.get("chunk_size") {
                Some(chunk_size) => {
                    let chunk_size = chunk_size.parse::<u64>().ok().filter(|size| *size > 0);
                    let chunk_size = chunk_size.ok_or_else(|| HubError::Http {
                        url: action.href.clone(),
                        reason: format!("LFS upload: bad chunk_size {chunk_size:?}"),
                    })?;
                    self.upload_parts(oid, upload, &action, chunk_size).await?;
                }
                None => {
                    let body = file_slice(&upload.file, 0, upload.size).await?;
                    self.put(&action.href, &action.header, body, upload.size)
                        .await?;
                }
            }
        }
        if let Some(verify) = actions.verify {
            let mut request = self
                .http
                .post(&verify.href)
                .json(&json!({"oid": oid, "size": upload.size}));
            for (name, value) in &verify.header {
                request = request.header(name, value);
            }
            self.send(&verify.href, request).await?;
        }
        Ok(())
    }

    /// The multipart transfer: the action's numbered headers are the parts' URLs, each part
    /// is `chunk_size` bytes of the file (the last one shorter), and a POST of the parts'
    /// ETags to the action's URL completes the object.
    async fn upload_parts(
        &self,
        oid: &str,
        upload: &Upload,
        action: &LfsAction,
        chunk_size: u64,
    ) -> Result<(), HubError> {
        let mut part_urls: Vec<(u64, &String)> = action
            .header
            .iter()
            .filter_map(|(name, url)| Some((name.parse::<u64>().ok()?, url)))
            .collect();
        part_urls.sort();
        if part_urls.len() as u64 != upload.size.div_ceil(chunk_size) {
            return Err(HubError::Http {
                url: action.href.clone(),
                reason: format!(
                    "LFS upload: {} part URLs for {} bytes in chunks of {chunk_size}",
                    part_urls.len(),
                    upload.size
                ),
            });
        }
        let mut parts = Vec::with_capacity(part_urls.len());
        for (index, (_, part_url)) in part_urls.iter().enumerate() {
            let offset = index as u64 * chunk_size;
            let len = chunk_size.min(upload.size - offset);
            let body = file_slice(&upload.file, offset, len).await?;
            let response = self.put(part_url, &BTreeMap::new(), body, len).await?;
            let etag = response
                .headers()
                .get("etag")
                .and_then(|etag| etag.to_str().ok())
                .filter(|etag| !etag.is_empty())
                .ok_or_else(|| HubError::Http {
                    url: (*part_url).clone(),
                    reason: format!("LFS upload: no ETag for part {}", index + 1),
                })?;
            parts.push(json!({"partNumber": index + 1, "etag": etag}));
        }
        let request = self
            .http
            .post(&action.href)
            .header("accept", LFS_JSON)
            .header("content-type", LFS_JSON)
            .body(json!({"oid": oid, "parts": parts}).to_string());
        let response = request.send().await.map_err(|error| HubError::Http {
            url: action.href.clone(),
            reason: error.to_string(),
        })?;
        if !response.status().is_success() {
            return Err(HubError::Http {
                url: action.href.clone(),
                reason: format!("LFS multipart completion: HTTP {}", response.status()),
            });
        }
        Ok(())
    }

    /// PUTs `len` bytes to storage with the headers the Hub gave (never the Hub token).
    async fn put(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: reqwest::Body,
        len: u64,
    ) -> Result<reqwest::Response, HubError> {
        let mut request = self.http.put(url).header("content-length", len).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|error| HubError::Http {
            url: url.to_owned(),
            reason: error.to_string(),
        })?;
        if !response.status().is_success() {
            return Err(HubError::Http {
                url: url.to_owned(),
                reason: format!("LFS upload: HTTP {}", response.status()),
            });
        }
        Ok(response)
    }
}
