//! The one error type of the crate.

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong configuring, training, saving, loading or applying a reducer.
///
/// Messages say what is wrong and, where there is one, how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing an embedding set failed.
    #[error(transparent)]
    Embeddings(#[from] embeddings::Error),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The TOML config could not be parsed.
    #[error("{path}: invalid config: {message}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A config value is out of range or inconsistent with another.
    #[error("invalid config: `{field}`: {message}")]
    Config {
        /// The offending field, as a TOML path (`train.lr`).
        field: &'static str,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A model directory is missing a file or holds something unreadable.
    #[error("{path}: {message}")]
    Model {
        /// The model directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Input embeddings have a dimension the reducer was not fitted on.
    #[error(
        "{context}: embeddings have dimension {found}, but the reducer was fitted on dimension {expected}; project a set made by the same embedding model as the training set"
    )]
    InputDim {
        /// Where the input came from (a file path or "input").
        context: String,
        /// The reducer's input dimension.
        expected: usize,
        /// The input's dimension.
        found: usize,
    },
    /// The requested output dimension is not one the reducer can produce.
    #[error("output dimension {requested} is not available; this reducer produces {available}")]
    OutputDim {
        /// The requested dimension.
        requested: usize,
        /// The dimensions it can produce, as text.
        available: String,
    },
    /// The training data cannot support the requested training.
    #[error("training data: {0}")]
    Data(String),
    /// The identification protocol has no probe: no identity has two samples.
    #[error(
        "no identity has two samples, so no probe can have a mate in the gallery; identification needs at least two rows per label"
    )]
    NoMates,
    /// A numerical routine failed (e.g. a singular scatter matrix).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// The compute backend is not available in this build or on this machine.
    #[error("backend `{backend}` unavailable: {message}")]
    Backend {
        /// The backend name.
        backend: String,
        /// Why, and what to do.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::Config { field, message: message.into() }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model { path: path.into(), message: message.into() }
    }
}
