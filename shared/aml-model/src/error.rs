//! Model runtime errors, each naming the file, tensor or key involved.

use std::path::PathBuf;

/// What went wrong loading, running or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A required file is absent.
    #[error("{path}: missing ({what})")]
    MissingFile {
        /// The expected file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
    },
    /// A JSON file does not parse or lacks a field.
    #[error("{path}: {reason}")]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model uses something this runtime does not implement.
    #[error("{path}: unsupported {what}")]
    Unsupported {
        /// The file that declares it.
        path: PathBuf,
        /// What is unsupported.
        what: String,
    },
    /// A safetensors file's header is unreadable.
    #[error("{path}: corrupt safetensors header: {reason}")]
    CorruptHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: tensor `{name}` not found")]
    MissingTensor {
        /// The file (or index) searched.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A tensor has a dtype this runtime cannot read.
    #[error("{path}: tensor `{name}` has unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A tensor has the wrong shape for the configuration.
    #[error("{path}: tensor `{name}` has shape {found:?}, the configuration implies {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The shape config.json implies.
        expected: Vec<i64>,
        /// The shape found.
        found: Vec<i64>,
    },
    /// The tokenizer could not be loaded, trained or used.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The chat template failed to render.
    #[error("chat template of {path}: {reason}")]
    Template {
        /// The tokenizer_config.json holding it.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Input the model cannot take (a token id out of range, an empty prompt).
    #[error("invalid input: {0}")]
    Input(String),
    /// The device asked for is not there.
    #[error("{0}")]
    Device(String),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Result of model operations.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

pub(crate) fn read_json(path: &std::path::Path, what: &'static str) -> Result<serde_json::Value> {
    if !path.exists() {
        return Err(ModelError::MissingFile {
            path: path.to_owned(),
            what,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|error| ModelError::InvalidJson {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })
}
