//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in `encsearch`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Parameters that cannot work (security bound, plaintext modulus too small, ...).
    #[error("invalid parameters: {reason}")]
    InvalidParameters {
        /// Why the parameters were rejected.
        reason: String,
    },
    /// A vector whose length is not the gallery's dimension.
    #[error("dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch {
        /// The dimension the gallery / query was built for.
        expected: usize,
        /// The dimension that was given.
        actual: usize,
    },
    /// A vector holding a NaN or an infinity.
    #[error("non-finite value in vector {index} (component {component})")]
    NonFinite {
        /// Which vector (row) held it.
        index: usize,
        /// Which component.
        component: usize,
    },
    /// A vector of norm zero cannot be L2-normalised.
    #[error("vector {index} has zero norm")]
    ZeroNorm {
        /// Which vector (row).
        index: usize,
    },
    /// Material made with one key used with another.
    #[error("key mismatch: expected key id {expected}, got {actual}")]
    KeyMismatch {
        /// The key id the object requires.
        expected: String,
        /// The key id that was supplied.
        actual: String,
    },
    /// Bytes that do not decode (bad magic, version, length, field).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A checksum that does not match its content.
    #[error("checksum mismatch in {what}: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// What was checked.
        what: String,
        /// The stored checksum.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// An id that is already in the gallery.
    #[error("duplicate id {id}")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// An id that is not in the gallery.
    #[error("unknown id {id}")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// Something the caller asked for that is out of range.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// A file system operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON document (manifest, public parameters) that does not parse.
    #[error("json error in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// An error from the `fhe` crate.
    #[error("fhe: {source}")]
    Fhe {
        /// The underlying error.
        #[from]
        source: fhe::Error,
    },
    /// An error from the `fhe-math` crate.
    #[error("fhe-math: {source}")]
    FheMath {
        /// The underlying error.
        #[from]
        source: fhe_math::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed { what, reason: reason.into() }
    }
    pub(crate) fn params(reason: impl Into<String>) -> Self {
        Self::InvalidParameters { reason: reason.into() }
    }
}
