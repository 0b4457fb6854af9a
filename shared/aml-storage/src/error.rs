//! Storage errors, each naming the URL or key involved.

/// What went wrong talking to object storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage URL cannot be used.
    #[error("invalid storage url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The object does not exist.
    #[error("object `{key}` not found in {store}")]
    NotFound {
        /// The key asked for.
        key: String,
        /// The storage URL.
        store: String,
    },
    /// The backend failed.
    #[error("storage operation on `{key}` in {store} failed: {source}")]
    Backend {
        /// The key involved.
        key: String,
        /// The storage URL.
        store: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// A JSONL line could not be read or written.
    #[error("{store}/{key}:{line}: {source}")]
    Json {
        /// The key of the file.
        key: String,
        /// The storage URL.
        store: String,
        /// 1-based line number.
        line: u64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading a streamed object failed part way.
    #[error("reading `{key}` from {store} failed at line {line}: {source}")]
    Read {
        /// The key of the file.
        key: String,
        /// The storage URL.
        store: String,
        /// 1-based line number where reading stopped.
        line: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a local JSONL file does not parse.
    #[error("{path}:{line}: {source}")]
    LocalJson {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: u64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A local file or folder could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The local path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
