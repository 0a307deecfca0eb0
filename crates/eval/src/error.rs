//! The crate's error type: other crates' errors wrapped as they are, file errors with their path.

use std::path::{Path, PathBuf};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong evaluating a set or running a sweep.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, generating or validating an embedding set failed.
    #[error(transparent)]
    Embeddings(#[from] embeddings::Error),
    /// Fitting, loading or applying a reduction failed, or the identification protocol has no
    /// probe (dimred owns the protocol).
    #[error(transparent)]
    Dimred(#[from] dimred::Error),
    /// Encrypted search failed.
    #[error("encrypted search: {0}")]
    Encsearch(#[from] encsearch::Error),
    /// An encrypted run returned something inconsistent with its inputs (a bug).
    #[error("encrypted search: {0}")]
    Encrypted(String),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A sweep config file is not valid TOML for a sweep.
    #[error("{path}: {source}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// What the TOML parser said.
        source: toml::de::Error,
    },
    /// A sweep config or dataset is inconsistent (what is wrong and how to fix it).
    #[error("{0}")]
    Config(String),
    /// The resolved sweep config could not be written as TOML.
    #[error("sweep config: {0}")]
    ConfigWrite(#[from] toml::ser::Error),
    /// A cell's result could not be written as JSON.
    #[error("cell result: {0}")]
    Json(#[from] serde_json::Error),
    /// Building or writing a results table failed.
    #[error("results: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// A results file holds something unreadable.
    #[error("results: {0}")]
    Table(String),
    /// Drawing a plot failed.
    #[error("{path}: plot: {source}")]
    Plot {
        /// The image being drawn.
        path: PathBuf,
        /// What the plotting library said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An I/O error on `path`.
pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}
