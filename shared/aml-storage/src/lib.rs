//! Object storage behind one URL.
//!
//! `file:///abs/dir` (the embedded default), `s3://bucket/prefix` (MinIO, AWS, R2; endpoint,
//! credentials and plain HTTP from [`S3Options`]) and `memory://` (tests) all give the same
//! [`Storage`]. Keys are relative to the URL. Every write is whole-object: local files are
//! staged and renamed into place (with fsync), S3 puts and multipart uploads appear only when
//! complete, so a reader never sees half an object.

mod error;
mod fingerprint;
mod jsonl;
mod staged;
mod store;
mod tree;

pub use error::StorageError;
pub use fingerprint::{Fingerprinter, fingerprint_dir};
pub use jsonl::{JsonlReader, JsonlWriter, read_jsonl_file, read_jsonl_numbered};
pub use staged::StagedFolder;
pub use store::{ObjectInfo, S3Options, Storage};
pub use tree::DirSync;

/// Result of storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
