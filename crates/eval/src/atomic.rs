//! The crate's file writer: the workspace's one atomic, durable write
//! ([`embeddings::atomic`]), so an interrupted sweep never leaves a half-written cell, table or
//! config that a resumed run would take for a finished one.

use std::path::Path;

use crate::Result;
use crate::error::io;

/// Writes `bytes` to `path` atomically (temporary file fsynced, renamed, directory fsynced).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    embeddings::atomic::write_atomic(path, bytes).map_err(|e| io(path, e))
}
