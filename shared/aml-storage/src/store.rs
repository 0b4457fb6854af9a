//! Opening a store from its URL, and whole-object reads and writes.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{JsonlReader, JsonlWriter, Result, StorageError};

/// Settings for `s3://` URLs; unset fields fall back to the standard `AWS_*` environment.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Options {
    /// Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000` for MinIO.
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when unset.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key (never printed).
    pub secret_access_key: Option<String>,
    /// Allow plain-HTTP endpoints (local MinIO).
    #[serde(default)]
    pub allow_http: bool,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// An object store opened from a URL; keys are relative to that URL. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl fmt::Debug for Storage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Storage")
            .field("url", &self.url)
            .finish()
    }
}

fn invalid(url: &str, reason: impl fmt::Display) -> StorageError {
    StorageError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_string(),
    }
}

/// One stored object, as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written (Unix ms).
    pub modified_unix_ms: i64,
}

impl Storage {
    /// Opens `file://`, `s3://` or `memory://` storage. A `file://` directory is created.
    pub fn open(url: &str, s3: &S3Options) -> Result<Self> {
        let parsed = Url::parse(url).map_err(|error| invalid(url, error))?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                let directory = parsed
                    .to_file_path()
                    .map_err(|()| invalid(url, "not an absolute local path"))?;
                std::fs::create_dir_all(&directory).map_err(|error| invalid(url, error))?;
                let local = LocalFileSystem::new_with_prefix(&directory)
                    .map_err(|error| invalid(url, error))?
                    .with_fsync(true);
                Arc::new(local)
            }
            "memory" => Arc::new(InMemory::new()),
            "s3" => open_s3(url, &parsed, s3)?,
            other => {
                return Err(invalid(
                    url,
                    format!("unsupported scheme `{other}`, expected file, s3 or memory"),
                ));
            }
        };
        Ok(Storage {
            store,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL this storage was opened from, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The full URL of a key, e.g. `file:///data/batches/b1/report.json`.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{}", self.url, key.trim_start_matches('/'))
    }

    /// The key of a full URL that lies under this storage, if it does.
    pub fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(self.url.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
    }

    pub(crate) fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    pub(crate) fn path(&self, key: &str) -> Result<Path> {
        Path::parse(key).map_err(|error| self.backend(key, error.into()))
    }

    pub(crate) fn backend(&self, key: &str, source: object_store::Error) -> StorageError {
        match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound {
                key: key.to_owned(),
                store: self.url.clone(),
            },
            source => StorageError::Backend {
                key: key.to_owned(),
                store: self.url.clone(),
                source,
            },
        }
    }

    /// Writes a whole object; readers see the old object or the new one, never a part.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|error| self.backend(key, error))?;
        Ok(())
    }

    /// Writes a value as pretty JSON.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| StorageError::Json {
            key: key.to_owned(),
            store: self.url.clone(),
            line: 1,
            source,
        })?;
        self.put(key, Bytes::from(bytes)).await
    }

    /// Reads a whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|error| self.backend(key, error))?;
        result
            .bytes()
            .await
            .map_err(|error| self.backend(key, error))
    }

    /// Reads a JSON object.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        let bytes = self.get(key).await?;
        serde_json::from_slice(&bytes).map_err(|source| StorageError::Json {
            key: key.to_owned(),
            store: self.url.clone(),
            line: source.line() as u64,
            source,
        })
    }

    /// Whether an object exists under the key.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(self.backend(key, error)),
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.backend(key, error)),
        }
    }

    /// The keys under a prefix (recursively), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_objects(prefix)
            .await?
            .into_iter()
            .map(|object| object.key)
            .collect())
    }

    /// The objects under a prefix (recursively) with their sizes and write times, sorted by key.
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = self.path(prefix)?;
        let listing = if prefix.is_empty() {
            self.store.list(None)
        } else {
            self.store.list(Some(&path))
        };
        let mut objects: Vec<ObjectInfo> = listing
            .map_ok(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
                modified_unix_ms: meta.last_modified.timestamp_millis(),
            })
            .try_collect()
            .await
            .map_err(|error| self.backend(prefix, error))?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Starts a streaming JSONL write; the object appears only when [`JsonlWriter::finish`] returns.
    pub fn jsonl_writer(&self, key: &str) -> Result<JsonlWriter> {
        JsonlWriter::new(self, key)
    }

    /// Writes records as one JSONL object and returns how many were written.
    pub async fn put_jsonl<'a, T, I>(&self, key: &str, records: I) -> Result<u64>
    where
        T: Serialize + 'a,
        I: IntoIterator<Item = &'a T>,
    {
        let mut writer = self.jsonl_writer(key)?;
        for record in records {
            writer.write(record).await?;
        }
        writer.finish().await
    }

    /// Streams the records of a JSONL object, one per non-empty line.
    pub async fn read_jsonl<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<JsonlReader<T>> {
        JsonlReader::open(self, key).await
    }

    /// Reads every record of a JSONL object.
    pub async fn get_jsonl<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let mut reader = self.read_jsonl(key).await?;
        let mut records = Vec::new();
        while let Some(record) = reader.next().await? {
            records.push(record);
        }
        Ok(records)
    }
}

fn open_s3(url: &str, parsed: &Url, options: &S3Options) -> Result<Arc<dyn ObjectStore>> {
    let bucket = parsed
        .host_str()
        .filter(|bucket| !bucket.is_empty())
        .ok_or_else(|| invalid(url, "an s3 url needs a bucket: s3://bucket/prefix"))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_allow_http(options.allow_http)
        .with_region(options.region.as_deref().unwrap_or("us-east-1"));
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(access_key_id) = &options.access_key_id {
        builder = builder.with_access_key_id(access_key_id);
    }
    if let Some(secret_access_key) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret_access_key);
    }
    let s3 = builder.build().map_err(|error| invalid(url, error))?;
    let prefix = parsed.path().trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(PrefixStore::new(s3, prefix)))
    }
}
