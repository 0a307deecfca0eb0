//! The cluster's errors.

use std::path::PathBuf;

/// Errors of splitting, serving and supervising a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The encrypted-search library refused or failed.
    #[error(transparent)]
    Search(#[from] encsearch::Error),
    /// The single-server layer (gallery versions, tokens) refused or failed.
    #[error(transparent)]
    Service(#[from] service::Error),
    /// A file or directory of the cluster.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A setting or layout that cannot work (what, and how to fix it).
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// Result with the cluster's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
