//! The service's errors: a library error ([`encsearch::Error`]) on either side, an HTTP error
//! answer (status and the server's message), a transport failure, a bad setting.

use std::path::PathBuf;

/// Errors of the server and the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The encrypted-search library refused or failed.
    #[error(transparent)]
    Search(#[from] encsearch::Error),
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Http {
        /// The request's URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The server's message.
        message: String,
        /// How long the server asked the client to wait (`Retry-After`), if it did.
        retry_after: Option<std::time::Duration>,
    },
    /// The server could not be reached: the connection was refused or could not be made, so
    /// the request was never received (safe to send again).
    #[error("{url}: cannot reach the server ({message}): is it running, and is --server right?")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// What the connection attempt said.
        message: String,
    },
    /// The request did not reach the server, or its answer did not arrive whole.
    #[error("{url}: {message}")]
    Transport {
        /// The request's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A file the service needs.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A setting that cannot work (what, and how to fix it).
    #[error("{0}")]
    Config(String),
    /// Keys that are not the ones the server's gallery is under (both named).
    #[error("{0}")]
    KeyMismatch(String),
    /// A retryable failure that lasted past the client's retry bounds.
    #[error("gave up after {tries} tries in {seconds:.1} s: {last}")]
    GaveUp {
        /// Tries made.
        tries: u32,
        /// Seconds from the first try to giving up.
        seconds: f64,
        /// The last try's error.
        last: Box<Error>,
    },
}

impl Error {
    /// Whether sending the same request again may succeed without anything changing on the
    /// client's side: the server was busy (429), unavailable for now (503), or not reachable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Http { status: 429 | 503, .. } | Error::Unreachable { .. })
    }

    /// The wait the server asked for with its answer, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of an error answer (through [`Error::GaveUp`] too).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            Error::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }
}

/// Result with the service's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For the `server` closures of [`encsearch::Session`]: a library error passes through, any
/// other failure of the exchange becomes [`encsearch::Error::Server`] with its message.
impl From<Error> for encsearch::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Search(e) => e,
            other => encsearch::Error::Server { message: other.to_string() },
        }
    }
}
