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
