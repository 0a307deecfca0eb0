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
    /// An id that appears twice in one input.
    #[error("{input}: row {row}: id {id} appears again (first at row {first_row}); ids must be unique")]
    DuplicateInInput {
        /// The input (file) being enrolled.
        input: String,
        /// The 0-based row of the second copy.
        row: usize,
        /// The id.
        id: String,
        /// The 0-based row of the first copy.
        first_row: usize,
    },
    /// An input row whose id the gallery already holds from another input (or from before
    /// inputs were recorded).
    #[error(
        "{input}: row {row}: id {id} is already in the gallery ({segment}, enrolled from another input){}; remove those first (`hers remove`) or give the rows other ids",
        if *more > 0 { format!(", and so are the ids of {more} more rows") } else { String::new() }
    )]
    AlreadyEnrolled {
        /// The input (file) being enrolled.
        input: String,
        /// The 0-based row.
        row: usize,
        /// The id.
        id: String,
        /// The segment file that holds the other copy.
        segment: String,
        /// Further rows of the input in the same case.
        more: usize,
    },
    /// Part of this very input is already in the gallery: an enrolment of it was interrupted.
    #[error(
        "the gallery already holds {held} of the {total} rows of {input}{}",
        if held == total { String::from(": it is enrolled already, nothing to do") } else { format!(" (an interrupted enrolment of this file?); rerun with --resume to enrol the other {}", total - held) }
    )]
    PartlyEnrolled {
        /// The input (file) being enrolled.
        input: String,
        /// Rows of the input already in the gallery from this input.
        held: usize,
        /// Rows of the input.
        total: usize,
    },
    /// Another process holds the gallery's writer lock.
    #[error(
        "{}: another process{} holds this gallery's writer lock; try again when it has finished (commands without --no-wait wait for it)",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    GalleryLocked {
        /// The gallery directory.
        dir: PathBuf,
        /// The holder's pid, when it recorded one.
        pid: Option<u32>,
    },
    /// A secret key file that group or others may read.
    #[error(
        "{}: the secret key is readable by group or others (mode {mode:03o}); restrict it with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A server reported a failure after its answer had begun (a streamed answer is then
    /// discarded whole: never a partial result).
    #[error("the server failed while answering: {message}")]
    Server {
        /// The server's message.
        message: String,
    },
    /// An id that is not in the gallery.
    #[error("unknown id {id}")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// What a server sent does not match what the key holder sealed (`seal.rs`), or cannot be
    /// a decryption of what it claims to be.
    #[error("integrity check failed: {what}")]
    Integrity {
        /// What failed.
        what: String,
    },
    /// A write to a sealed gallery without the key holder's seal, or with a seal made for
    /// another state of the gallery (another write came first: read the id table again).
    #[error("{reason}")]
    SealMismatch {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A request holds more of something than its receiver takes (checked before the work).
    #[error("{count} {what}: this server takes 1 to {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The most the receiver takes.
        limit: usize,
        /// How many the request held.
        count: usize,
    },
    /// The caller stopped a long operation (Ctrl-C in Python); what was committed before stays.
    #[error("interrupted after {done} rows were committed; rerun with resume to enrol the rest")]
    Interrupted {
        /// Rows committed before the interruption.
        done: usize,
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
