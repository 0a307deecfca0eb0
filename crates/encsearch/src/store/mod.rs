//! The encrypted gallery at rest: a directory with `manifest.json` and segment files.
//!
//! * A segment holds whole chunks (at-rest form: seeded ciphertexts) and the id of every used
//!   slot; it ends with a CRC-32, and the manifest records its size and CRC too (`segment.rs`).
//! * Writes are atomic: segment to a temp file, fsync, rename, fsync the directory; then the
//!   manifest the same way ([`embeddings::atomic`], the one helper every writer uses). A crash
//!   before the manifest rename leaves an unlisted file that is ignored, so the gallery holds
//!   exactly the committed templates.
//! * One writer at a time: every change holds the OS lock on `writer.lock` (`lock.rs`);
//!   readers take none. Each segment records the fingerprint of its input, so an interrupted
//!   enrolment resumes exactly (`enrol.rs`); `check.rs` verifies a directory and removes what a
//!   crash left unlisted.
//! * `remove` tombstones ids in the manifest (no re-encryption); removed slots are still scored
//!   by the server but are never returned to the client's top-k (`slots.rs`).
//! * The manifest records the [`Layout`](crate::Layout): dimension-wise galleries are scored
//!   whole; a coefficient-layout ("fine") gallery serves the second stage of a two-stage search,
//!   where the server gathers only the chunks that hold the client's candidates.
//! * The hot form a server scores is derived from the segments by [`crate::hot`].

mod check;
mod enrol;
mod gallery;
mod lock;
mod manifest;
mod segment;
mod slots;

use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

pub use check::{CheckReport, check_gallery};
pub use enrol::{EnrolPlan, fingerprint_file, fingerprint_rows};
pub use gallery::Gallery;
pub use lock::{LOCK_FILE, LockWait, WriterLock};
pub use manifest::{MANIFEST_FILE, Manifest, SegmentEntry};
pub use segment::check_segment;

/// Maps a file of the gallery directory read-only: a committed segment or a hot-form cache.
pub(crate) fn map_file(path: &Path) -> Result<Mmap> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: hers writes these files only through `write_atomic` (temp file, fsync, rename)
    // and never writes, truncates or appends to one afterwards, so a mapping cannot change
    // under us unless another program tampers with the gallery directory; callers check size
    // and CRC before use.
    #[allow(unsafe_code, reason = "read-only mapping of an immutable, checksummed file")]
    unsafe { Mmap::map(&f) }.map_err(|e| Error::io(path, e))
}

/// Writes `bytes` to `path` atomically (file and directory fsynced).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    embeddings::atomic::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}
