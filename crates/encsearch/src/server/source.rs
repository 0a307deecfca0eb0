//! What a server scores: anything that yields chunks in the hot form, one at a time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::ServerContext;
use crate::error::{Error, Result};
use crate::hot::{HotChunk, HotGallery};
use crate::pack::Layout;
use crate::quantize::{Metric, Quantizer};
use crate::store::Gallery;
use crate::wire::EncryptedChunk;

/// A gallery, or part of one, that [`ServerContext::score`] scans chunk by chunk.
pub trait ChunkSource: Sync {
    /// Checks that `server` can score this source (key, layout, chunk shape) and returns the
    /// scale and metric the templates were quantised with.
    fn check(&self, server: &ServerContext) -> Result<(u32, Metric)>;
    /// Chunks to score.
    fn chunk_count(&self) -> usize;
    /// Chunk `i` in the hot form (borrowed when held hot, built when streamed).
    fn hot_chunk(&self, server: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>>;
    /// Gallery id of every slot of the chunks scored (`None`: empty or removed).
    fn slot_ids(&self) -> Arc<Vec<Option<String>>>;
    /// Whether every chunk is held in the hot form already (borrowed, nothing built per pass).
    fn held_hot(&self) -> bool {
        false
    }
}

impl ChunkSource for HotGallery {
    fn check(&self, _: &ServerContext) -> Result<(u32, Metric)> {
        Ok((self.scale, self.metric))
    }
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
    fn hot_chunk(&self, _: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>> {
        self.chunks.get(i).map(Cow::Borrowed).ok_or_else(|| Error::InvalidArgument { reason: format!("no chunk {i}") })
    }
    fn slot_ids(&self) -> Arc<Vec<Option<String>>> {
        self.slot_ids.clone()
    }
    fn held_hot(&self) -> bool {
        true
    }
}

/// A range of a hot gallery's chunks, scored as a gallery of its own (benchmarks compare
/// scans of equal size this way).
#[derive(Debug, Clone)]
pub struct HotSlice<'a> {
    gallery: &'a HotGallery,
    chunks: Range<usize>,
    /// The slice's slot ids, taken once when the slice is made (not on every query).
    slot_ids: Arc<Vec<Option<String>>>,
}

impl HotGallery {
    /// The chunks in `chunks` as a source of their own.
    pub fn slice(&self, chunks: Range<usize>) -> Result<HotSlice<'_>> {
        if chunks.end > self.chunks.len() || chunks.start > chunks.end {
            return Err(Error::InvalidArgument {
                reason: format!("chunks {chunks:?} of a gallery of {}", self.chunks.len()),
            });
        }
        let per = self.slot_ids.len().checked_div(self.chunks.len()).unwrap_or(0);
        let slot_ids = Arc::new(self.slot_ids.get(chunks.start * per..chunks.end * per).unwrap_or_default().to_vec());
        Ok(HotSlice { gallery: self, chunks, slot_ids })
    }
}

impl ChunkSource for HotSlice<'_> {
    fn check(&self, server: &ServerContext) -> Result<(u32, Metric)> {
        self.gallery.check(server)
    }
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
    fn hot_chunk(&self, server: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>> {
        self.gallery.hot_chunk(server, self.chunks.start + i)
    }
    fn slot_ids(&self) -> Arc<Vec<Option<String>>> {
        self.slot_ids.clone()
    }
    fn held_hot(&self) -> bool {
        true
    }
}

/// Checks that `gallery` is a dimension-wise gallery of `server`'s key and chunk shape.
fn check_dimension_wise(gallery: &Gallery, server: &ServerContext) -> Result<(u32, Metric)> {
    gallery.manifest().public.key_id.ensure_eq(&server.public().key_id)?;
    if gallery.layout() != Layout::DimensionWise || server.rows() != gallery.cts_per_chunk() {
        return Err(Error::InvalidArgument {
            reason: format!("{} is not a dimension-wise gallery of this context", gallery.dir().display()),
        });
    }
    let q = gallery.quantizer();
    Ok((q.scale, q.metric))
}

/// A stored gallery, streamed: each chunk is brought from its memory-mapped at-rest form to the
/// hot form, scored and dropped.
impl ChunkSource for Gallery {
    fn check(&self, server: &ServerContext) -> Result<(u32, Metric)> {
        check_dimension_wise(self, server)
    }
    fn chunk_count(&self) -> usize {
        Gallery::chunk_count(self)
    }
    fn hot_chunk(&self, server: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>> {
        Ok(Cow::Owned(server.prepare_chunk(&self.chunk(i, server.bfv())?)?))
    }
    fn slot_ids(&self) -> Arc<Vec<Option<String>>> {
        Gallery::slot_ids(self)
    }
}

/// The one chunk of a stored gallery that holds a given id (1:1 verification: the server
/// scores that chunk only, the client reads the claimed slot).
#[derive(Debug)]
pub struct GalleryChunk<'a> {
    gallery: &'a Gallery,
    chunk: usize,
}

impl<'a> GalleryChunk<'a> {
    /// The chunk of `gallery` that holds the live id `id`.
    pub fn holding(gallery: &'a Gallery, id: &str) -> Result<Self> {
        Ok(Self { gallery, chunk: gallery.locate(id)?.0 })
    }
}

impl ChunkSource for GalleryChunk<'_> {
    fn check(&self, server: &ServerContext) -> Result<(u32, Metric)> {
        check_dimension_wise(self.gallery, server)
    }
    fn chunk_count(&self) -> usize {
        1
    }
    fn hot_chunk(&self, server: &ServerContext, _: usize) -> Result<Cow<'_, HotChunk>> {
        Ok(Cow::Owned(server.prepare_chunk(&self.gallery.chunk(self.chunk, server.bfv())?)?))
    }
    fn slot_ids(&self) -> Arc<Vec<Option<String>>> {
        Arc::new(self.gallery.chunk_slot_ids(self.chunk))
    }
}

/// Coefficient-layout chunks that [`ServerContext::score_candidates`] gathers from.
pub trait CandidateSource: Sync {
    /// Checks that `server` can score this source and returns the templates' quantiser.
    fn check(&self, server: &ServerContext) -> Result<Quantizer>;
    /// (chunk, block) of each id, in order, for chunks of `server`'s ring; unknown ids are errors.
    fn locate(&self, server: &ServerContext, ids: &[String]) -> Result<Vec<(usize, usize)>>;
    /// Chunk `i` in the hot form.
    fn hot_chunk(&self, server: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>>;
}

impl CandidateSource for Gallery {
    fn check(&self, server: &ServerContext) -> Result<Quantizer> {
        self.manifest().public.key_id.ensure_eq(&server.public().key_id)?;
        if self.layout() != Layout::Coefficient {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{} is not a coefficient-layout (fine) gallery; enrol the full-dimension set with `--layout coefficient`",
                    self.dir().display()
                ),
            });
        }
        Ok(self.quantizer())
    }
    fn locate(&self, _: &ServerContext, ids: &[String]) -> Result<Vec<(usize, usize)>> {
        self.locate_many(ids)
    }
    fn hot_chunk(&self, server: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>> {
        Ok(Cow::Owned(server.prepare_chunk(&self.chunk(i, server.bfv())?)?))
    }
}

/// Coefficient-layout chunks held in memory, for in-process evaluation: `index` maps an id to
/// its template's position in `chunks` (template g sits in chunk g / per, block g % per).
#[derive(Debug, Clone, Copy)]
pub struct FineChunks<'a> {
    /// The quantiser the templates were packed with.
    pub quantizer: &'a Quantizer,
    /// The chunks, in template order.
    pub chunks: &'a [EncryptedChunk],
    /// Id → template position.
    pub index: &'a HashMap<String, usize>,
}

impl CandidateSource for FineChunks<'_> {
    fn check(&self, _: &ServerContext) -> Result<Quantizer> {
        Ok(*self.quantizer)
    }
    fn locate(&self, server: &ServerContext, ids: &[String]) -> Result<Vec<(usize, usize)>> {
        let n = server.public().params.degree;
        let per = Layout::Coefficient.templates_per_chunk(n, self.quantizer.rows()).max(1);
        ids.iter()
            .map(|id| match self.index.get(id) {
                Some(&g) if g / per < self.chunks.len() => Ok((g / per, g % per)),
                _ => Err(Error::UnknownId { id: id.clone() }),
            })
            .collect()
    }
    fn hot_chunk(&self, server: &ServerContext, i: usize) -> Result<Cow<'_, HotChunk>> {
        let chunk = self.chunks.get(i).ok_or_else(|| Error::InvalidArgument { reason: format!("no chunk {i}") })?;
        Ok(Cow::Owned(server.prepare_chunk(chunk)?))
    }
}
