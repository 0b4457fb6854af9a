//! One module per `aml` subcommand.

pub mod alerts;
pub mod auth;
pub mod batch;
pub mod calibrate;
pub mod dataset;
pub mod dlq;
pub mod judge;
pub mod model;
pub mod plan;
pub mod prescreen;
pub mod request;
pub mod retention;
pub mod score;
pub mod setup;
pub mod summary;
pub mod train;

/// The records of a local JSONL file with their line numbers; a line that does not parse is
/// an error `FILE:LINE: not WHAT: ...`.
pub fn jsonl_records<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
) -> anyhow::Result<Vec<(u64, T)>> {
    aml_storage::read_jsonl_numbered(path).map_err(|error| match error {
        aml_storage::StorageError::LocalJson { path, line, source } => {
            anyhow::anyhow!("{}:{line}: not {what}: {source}", path.display())
        }
        other => anyhow::Error::new(other),
    })
}
