//! The crate's error type.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong evaluating a set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or validating the embedding set failed.
    #[error(transparent)]
    Embeddings(#[from] embeddings::Error),
    /// A sweep config is invalid or its files cannot be written.
    #[error("{0}")]
    Config(String),
    /// Fitting or applying a reduction failed.
    #[error("reduction: {0}")]
    Reduction(String),
    /// Encrypted search failed.
    #[error("encrypted search: {0}")]
    Encrypted(String),
    /// Writing the results table failed.
    #[error("results: {0}")]
    Table(String),
    /// The set cannot be evaluated with this protocol.
    #[error("{0}")]
    Protocol(String),
}

impl From<encsearch::Error> for Error {
    fn from(e: encsearch::Error) -> Self {
        Error::Encrypted(e.to_string())
    }
}
