//! Streaming JSON Lines: records written one at a time through a multipart upload, and read
//! back one line at a time, with errors that name the file and line.

use std::marker::PhantomData;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio_util::io::StreamReader;

use crate::{Result, Storage, StorageError};

/// Writes one JSON record per line; nothing is visible until [`JsonlWriter::finish`].
pub struct JsonlWriter {
    writer: BufWriter,
    storage: Storage,
    key: String,
    line: Vec<u8>,
    written: u64,
}

impl JsonlWriter {
    pub(crate) fn new(storage: &Storage, key: &str) -> Result<Self> {
        let path = storage.path(key)?;
        Ok(JsonlWriter {
            writer: BufWriter::new(storage.object_store(), path),
            storage: storage.clone(),
            key: key.to_owned(),
            line: Vec::with_capacity(1024),
            written: 0,
        })
    }

    fn io_error(&self, source: std::io::Error) -> StorageError {
        StorageError::Read {
            key: self.key.clone(),
            store: self.storage.url().to_owned(),
            line: self.written + 1,
            source,
        }
    }

    /// Appends one record.
    pub async fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|source| StorageError::Json {
            key: self.key.clone(),
            store: self.storage.url().to_owned(),
            line: self.written + 1,
            source,
        })?;
        self.line.push(b'\n');
        if let Err(source) = self.writer.write_all(&self.line).await {
            return Err(self.io_error(source));
        }
        self.written += 1;
        Ok(())
    }

    /// Completes the object and returns the number of records written.
    pub async fn finish(mut self) -> Result<u64> {
        if let Err(source) = self.writer.shutdown().await {
            return Err(self.io_error(source));
        }
        Ok(self.written)
    }
}

type ByteLines = Lines<BufReader<Box<dyn tokio::io::AsyncRead + Send + Unpin>>>;

/// Reads a JSONL object one record at a time; blank lines are skipped.
pub struct JsonlReader<T> {
    lines: ByteLines,
    storage: Storage,
    key: String,
    line_number: u64,
    record: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonlReader<T> {
    pub(crate) async fn open(storage: &Storage, key: &str) -> Result<Self> {
        let path = storage.path(key)?;
        let result = storage
            .object_store()
            .get(&path)
            .await
            .map_err(|error| storage.backend(key, error))?;
        let bytes = result.into_stream().map_err(std::io::Error::other);
        let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> =
            Box::new(StreamReader::new(bytes));
        Ok(JsonlReader {
            lines: BufReader::new(reader).lines(),
            storage: storage.clone(),
            key: key.to_owned(),
            line_number: 0,
            record: PhantomData,
        })
    }

    /// The next record, or `None` at the end of the object.
    pub async fn next(&mut self) -> Result<Option<T>> {
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .map_err(|source| StorageError::Read {
                    key: self.key.clone(),
                    store: self.storage.url().to_owned(),
                    line: self.line_number + 1,
                    source,
                })?;
            let Some(line) = line else {
                return Ok(None);
            };
            self.line_number += 1;
            if line.trim().is_empty() {
                continue;
            }
            let record = serde_json::from_str(&line).map_err(|source| StorageError::Json {
                key: self.key.clone(),
                store: self.storage.url().to_owned(),
                line: self.line_number,
                source,
            })?;
            return Ok(Some(record));
        }
    }

    /// The 1-based number of the line last read.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }
}

/// Reads a local JSONL file whole, one record per non-blank line; a line that does not parse
/// is an error naming the file and the line.
pub fn read_jsonl_file<T: DeserializeOwned>(path: &std::path::Path) -> Result<Vec<T>> {
    Ok(read_jsonl_numbered(path)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// [`read_jsonl_file`] with each record's 1-based line number, for callers whose own checks
/// name the line too.
pub fn read_jsonl_numbered<T: DeserializeOwned>(path: &std::path::Path) -> Result<Vec<(u64, T)>> {
    let text = std::fs::read_to_string(path).map_err(|source| StorageError::Local {
        path: path.to_owned(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index as u64 + 1;
        let record = serde_json::from_str(line).map_err(|source| StorageError::LocalJson {
            path: path.to_owned(),
            line: number,
            source,
        })?;
        records.push((number, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::{S3Options, Storage, StorageError, read_jsonl_file};

    #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
    struct Row {
        id: u32,
        text: String,
    }

    fn local(dir: &tempfile::TempDir) -> Storage {
        let url = format!("file://{}", dir.path().display());
        Storage::open(&url, &S3Options::default()).unwrap()
    }

    #[test]
    fn a_local_jsonl_file_reads_whole_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gold.jsonl");
        std::fs::write(&path, "{\"n\": 1}\n\n{\"n\": 2}\n{\"n\": }\n").unwrap();
        let error = read_jsonl_file::<serde_json::Value>(&path).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:4: ", path.display())),
            "{error}"
        );
        std::fs::write(&path, "{\"n\": 1}\n\n{\"n\": 2}\n").unwrap();
        let records: Vec<serde_json::Value> = read_jsonl_file(&path).unwrap();
        assert_eq!(records.len(), 2);
    }

    #[tokio::test]
    async fn jsonl_round_trips_through_a_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let storage = local(&dir);
        let rows: Vec<Row> = (0..1000)
            .map(|id| Row {
                id,
                text: format!("row {id}"),
            })
            .collect();
        let written = storage
            .put_jsonl("datasets/run/train.jsonl", &rows)
            .await
            .unwrap();
        assert_eq!(written, 1000);
        let back: Vec<Row> = storage.get_jsonl("datasets/run/train.jsonl").await.unwrap();
        assert_eq!(back, rows);
        assert_eq!(
            storage.list("datasets").await.unwrap(),
            vec!["datasets/run/train.jsonl".to_owned()]
        );
    }

    #[tokio::test]
    async fn bad_line_is_reported_with_key_and_line() {
        let storage = Storage::open("memory://", &S3Options::default()).unwrap();
        storage
            .put(
                "x.jsonl",
                bytes::Bytes::from_static(b"{\"id\":1,\"text\":\"a\"}\n\n{\"id\":2,\"text\":\n"),
            )
            .await
            .unwrap();
        let error = storage.get_jsonl::<Row>("x.jsonl").await.unwrap_err();
        assert!(
            matches!(error, StorageError::Json { line: 3, .. }),
            "{error}"
        );
        assert!(
            error.to_string().starts_with("memory:/x.jsonl:3:"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn unfinished_writer_leaves_no_object() {
        let dir = tempfile::tempdir().unwrap();
        let storage = local(&dir);
        let big = "x".repeat(64 * 1024);
        {
            let mut writer = storage.jsonl_writer("half.jsonl").unwrap();
            for id in 0..200 {
                writer
                    .write(&Row {
                        id,
                        text: big.clone(),
                    })
                    .await
                    .unwrap();
            }
            assert!(!storage.exists("half.jsonl").await.unwrap());
        }
        assert!(!storage.exists("half.jsonl").await.unwrap());
        let mut writer = storage.jsonl_writer("whole.jsonl").unwrap();
        for id in 0..200 {
            writer
                .write(&Row {
                    id,
                    text: big.clone(),
                })
                .await
                .unwrap();
            assert!(!storage.exists("whole.jsonl").await.unwrap());
        }
        assert_eq!(writer.finish().await.unwrap(), 200);
        assert_eq!(
            storage.get_jsonl::<Row>("whole.jsonl").await.unwrap().len(),
            200
        );
    }

    #[test]
    fn unknown_scheme_is_rejected_with_the_url() {
        let error = Storage::open("ftp://host/x", &S3Options::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid storage url `ftp://host/x`: unsupported scheme `ftp`, expected file, s3 or memory"
        );
    }

    #[tokio::test]
    async fn missing_object_is_not_found() {
        let storage = Storage::open("memory://", &S3Options::default()).unwrap();
        let error = storage.get("nope.json").await.unwrap_err();
        assert!(matches!(error, StorageError::NotFound { .. }), "{error}");
    }
}
