//! The hot form of a whole stored gallery: each segment's cache file `seg-N.hot` is mapped
//! where it is present and intact, the rest built on all cores from the at-rest form (and then
//! cached, when asked).

use std::path::Path;

use rayon::prelude::*;

use super::basis::HotBasis;
use super::{HotChunk, HotGallery, cache};
use crate::error::{Error, Result};
use crate::pack::Layout;
use crate::store::{Gallery, LockWait, WriterLock};
use crate::wire::EncryptedChunk;

/// What loading the hot form did with the cache files on disk (`seg-N.hot`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotCacheReport {
    /// Segments whose hot form was mapped from its cache file.
    pub mapped: usize,
    /// Segments whose hot form was built from the at-rest form.
    pub built: usize,
    /// Bytes of cache files written.
    pub written_bytes: u64,
    /// The first cache write that failed (the load itself succeeded; a read-only gallery
    /// directory simply builds the hot form on every load).
    pub write_error: Option<String>,
}

impl HotGallery {
    /// Loads every chunk of `gallery` into the hot form of `basis`, on all cores. `cache`:
    /// `None` neither reads nor writes cache files; `Some(write)` maps each segment's cache
    /// where it holds, builds the others, and writes their cache files when `write` (best
    /// effort: a failed write is reported, not an error).
    pub(crate) fn load(
        gallery: &Gallery,
        basis: &HotBasis,
        cache: Option<bool>,
    ) -> Result<(HotGallery, HotCacheReport)> {
        let mut hot = HotGallery::default();
        let report = hot.refresh(gallery, basis, cache)?;
        Ok((hot, report))
    }

    /// Brings this hot form up to what `gallery` has committed: the segments appended since
    /// are loaded as [`HotGallery::load`] does (mapped, or built and cached), the chunks held
    /// already are kept as they are (a committed segment never changes), and the slot ids are
    /// taken afresh (removals). A server makes each new gallery version this way, at the cost
    /// of the new segments only.
    pub(crate) fn refresh(
        &mut self,
        gallery: &Gallery,
        basis: &HotBasis,
        cache: Option<bool>,
    ) -> Result<HotCacheReport> {
        let manifest = gallery.manifest();
        manifest.public.key_id.ensure_eq(&basis.public().key_id)?;
        if gallery.layout() != Layout::DimensionWise {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{} is a coefficient-layout (fine) gallery: use it as the second stage of a two-stage search",
                    gallery.dir().display()
                ),
            });
        }
        let rows = gallery.cts_per_chunk();
        if basis.rows() != rows {
            return Err(Error::DimensionMismatch { expected: rows, actual: basis.rows() });
        }
        let held = self.chunks.len();
        let segments = gallery.segment_chunks();
        if gallery.chunk_count() < held || segments.iter().any(|(_, r)| r.start < held && r.end > held) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "the hot form holds {held} chunks, which are not whole segments of {}: load it afresh",
                    gallery.dir().display()
                ),
            });
        }
        let words = basis.hot_words_per_chunk();
        let mut report = HotCacheReport::default();
        // Per new segment: its cache file and fingerprint, and the mapped chunks where the cache holds.
        let plan: Vec<_> = segments
            .into_iter()
            .filter(|(_, range)| range.start >= held)
            .map(|(entry, range)| {
                let path = gallery.dir().join(Path::new(&entry.file).with_extension("hot"));
                let fp = cache::fingerprint(basis, &entry.file, entry.crc32);
                let mapped = cache.and_then(|_| cache::open(&path, &fp, range.len(), words));
                (range, path, fp, mapped)
            })
            .collect();
        // Build every chunk no cache holds, in one parallel pass over all such segments.
        let to_build: Vec<usize> = plan.iter().filter(|p| p.3.is_none()).flat_map(|p| p.0.clone()).collect();
        let mut built = to_build
            .par_iter()
            .map(|&i| basis.prepare_chunk(&EncryptedChunk::from_bytes(gallery.chunk_bytes(i)?, basis.bfv(), rows)?))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        // Cache files are gallery writes: taken under the writer lock, never waiting for it (a
        // reader is never blocked; with a writer at work the caches are written by a later load).
        let mut write = cache == Some(true) && !to_build.is_empty();
        let _lock = if write && !gallery.is_locked_for_writing() {
            match WriterLock::acquire(gallery.dir(), LockWait::NoWait, |_| {}) {
                Ok(lock) => Some(lock),
                Err(e) => {
                    write = false;
                    report.write_error = Some(format!("{e}; the hot-form cache was not written this time"));
                    None
                }
            }
        } else {
            None
        };
        let chunks = &mut self.chunks;
        chunks.reserve(gallery.chunk_count() - held);
        for (range, path, fp, mapped) in plan {
            if let Some(m) = mapped {
                report.mapped += 1;
                chunks.extend(m.into_iter().map(|w| HotChunk::from_words(w, basis.is_narrow())));
                continue;
            }
            report.built += 1;
            let first = chunks.len();
            chunks.extend(built.by_ref().take(range.len()));
            if write {
                let refs: Vec<&[u64]> = chunks[first..].iter().map(HotChunk::words).collect();
                match cache::write(&path, &fp, &refs) {
                    Ok(()) => report.written_bytes += refs.iter().map(|r| r.len() as u64 * 8).sum::<u64>(),
                    Err(e) => {
                        report.write_error.get_or_insert(e.to_string());
                    }
                }
            }
        }
        self.slot_ids = gallery.slot_ids();
        self.scale = manifest.scale;
        self.metric = manifest.metric;
        Ok(report)
    }
}
