//! The response cache on disk: one JSON file per (provider, model, prompt, parameters).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A folder of cached answers.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        DiskCache {
            dir: dir.to_owned(),
        }
    }

    /// The key of a request: SHA-256 of its canonical JSON description.
    pub fn key(description: &serde_json::Value) -> String {
        let digest = Sha256::digest(description.to_string().as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached answer and whether it was cut at the token limit, if any.
    pub fn get(&self, key: &str) -> Option<(String, bool)> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        let answer = value.get("text")?.as_str()?.to_owned();
        let truncated = value
            .get("truncated")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Some((answer, truncated))
    }

    /// Stores an answer (written to a temporary file, then renamed into place).
    pub fn put(&self, key: &str, text: &str, truncated: bool) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let staging = self.dir.join(format!(".{key}.tmp"));
        let record = serde_json::json!({ "text": text, "truncated": truncated });
        std::fs::write(&staging, record.to_string())?;
        std::fs::rename(staging, self.path(key))
    }
}
