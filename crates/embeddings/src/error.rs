//! The one error type of the crate: every variant names the file, the row and what to do.

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, validating, writing or generating an embedding set.
///
/// Messages are written for the person who gave us the file: what is wrong, where, and how to
/// fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
    /// The file is not a readable parquet file (truncated, corrupt or another format).
    #[cfg(feature = "parquet")]
    #[error(
        "{path}: not a readable parquet file ({error}); check that the file is complete and was written as parquet"
    )]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the parquet reader said.
        error: parquet::errors::ParquetError,
    },
    /// An arrow operation on the file's data failed.
    #[cfg(feature = "parquet")]
    #[error("{path}: {error}")]
    Arrow {
        /// The file.
        path: PathBuf,
        /// What arrow said.
        error: arrow::error::ArrowError,
    },
    /// A required column is absent.
    #[error(
        "{path}: missing column `{column}` (found: {found}); an embedding set needs columns `id`, `label` and `embedding`"
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: &'static str,
        /// The columns the file has.
        found: String,
    },
    /// A column has a type we cannot use.
    #[error("{path}: column `{column}` has type {found}; expected {expected}")]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
        /// Its arrow type.
        found: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// An embedding's length differs from the file's first one (or from the expected one).
    #[error(
        "{path}: row {row} (id {id}) has an embedding of length {len}, expected {expected}; every embedding in a set must have the same dimension"
    )]
    WrongLength {
        /// The file.
        path: PathBuf,
        /// 0-based row in the file.
        row: usize,
        /// The row's id.
        id: String,
        /// Its length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// An embedding holds NaN or an infinity.
    #[error(
        "{path}: row {row} (id {id}) has a non-finite value ({value}) at dimension {dim}; remove the row or recompute its embedding"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 0-based row in the file.
        row: usize,
        /// The row's id.
        id: String,
        /// The offending dimension.
        dim: usize,
        /// The value, as text.
        value: String,
    },
    /// A null where a value is required.
    #[error("{path}: row {row} has a null `{column}`; every row needs an id, a label and an embedding")]
    Null {
        /// The file.
        path: PathBuf,
        /// 0-based row in the file.
        row: usize,
        /// The column.
        column: &'static str,
    },
    /// Two rows share an id.
    #[error("{path}: id {id} appears twice (rows {first_row} and {row}); ids must be unique")]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The repeated id.
        id: String,
        /// Its first row.
        first_row: usize,
        /// The repeating row.
        row: usize,
    },
    /// The file has no rows.
    #[error("{path}: the file holds no embeddings (0 rows)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A `.npy` file could not be used.
    #[error("{path}: {message}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An argument or an in-memory set is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    #[cfg(feature = "parquet")]
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: path.into(), error }
    }
}
