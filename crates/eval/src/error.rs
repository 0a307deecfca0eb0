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
    /// The set cannot be evaluated with this protocol.
    #[error("{0}")]
    Protocol(String),
}
