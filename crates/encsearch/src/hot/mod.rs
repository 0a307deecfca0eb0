//! The hot form: a gallery chunk (or a probe) extended to the multiplication basis and in NTT
//! form, laid out so that the scoring kernel reads it strictly sequentially. Two forms: wide
//! (`Q ∪ P`, u64 words) and narrow (primes below 2^29, u32 residues two to a word); see
//! `HotBasis::new` in `basis.rs`.
//!
//! * `basis.rs`: the multiplication basis and the preparation of chunks and probes (basis
//!   extension + NTT), from public parameters only;
//! * `load.rs`: the hot form of a whole stored gallery, through the cache;
//! * `cache.rs`: the on-disk cache `seg-N.hot` beside each segment, memory-mapped.

mod basis;
mod cache;
mod load;

use std::sync::Arc;

use memmap2::Mmap;

use crate::compact::PreparedKey;
use crate::quantize::Metric;
use crate::quantize::Quantizer;

pub(crate) use basis::HotBasis;
pub use cache::check as check_hot_cache;
pub use load::HotCacheReport;

/// A gallery chunk in the hot form: both ciphertext polynomials of every dimension, extended
/// to the multiplication basis and in NTT form, laid out
/// `[prime][slot / 8][dim][part][slot % 8]` so that the kernel reads it sequentially.
#[derive(Debug, Clone)]
pub struct HotChunk {
    data: HotWords,
    /// Whether the words hold the narrow form (u32 residues): a chunk of the other form is
    /// refused, not misread, even where the lengths happen to agree.
    narrow: bool,
}

impl HotChunk {
    /// Bytes of hot form (in memory, or mapped from the gallery's cache file).
    pub fn bytes(&self) -> usize {
        self.words().len() * 8
    }

    /// Whether the words are mapped from a cache file rather than built in memory.
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, HotWords::Mapped { .. })
    }

    pub(crate) fn words(&self) -> &[u64] {
        self.data.words()
    }

    pub(crate) fn from_words(data: HotWords, narrow: bool) -> Self {
        Self { data, narrow }
    }

    /// Whether this is the narrow form (u32 residues).
    pub fn is_narrow(&self) -> bool {
        self.narrow
    }
}

/// A probe in the hot form (`[prime][slot / 8][dim][a0, a1][slot % 8]`), prepared once per
/// query.
#[derive(Debug, Clone)]
pub(crate) struct HotProbe {
    pub(crate) data: Vec<u64>,
    /// Whether the words hold the narrow form (u32 residues).
    pub(crate) narrow: bool,
    /// The query's compact-answer key, when it asked for compact answers.
    pub(crate) compact: Option<Arc<PreparedKey>>,
}

/// A whole gallery in the hot form, with the id of every global slot.
#[derive(Debug, Clone, Default)]
pub struct HotGallery {
    /// Chunks, in global slot order.
    pub(crate) chunks: Vec<HotChunk>,
    /// Gallery id of each global slot (`None`: empty or removed).
    pub(crate) slot_ids: Arc<Vec<Option<String>>>,
    /// Quantisation scale the gallery was enrolled at.
    pub(crate) scale: u32,
    /// Matching function of the gallery.
    pub(crate) metric: Metric,
}

impl HotGallery {
    /// The hot form of templates held in memory rather than in a gallery directory (benchmarks,
    /// evaluation, tests): `chunks` as [`crate::ServerContext::prepare_chunks`] made them, the id
    /// of each slot in `slot_ids` (empty, or one per slot: `None` for an empty slot), enrolled
    /// with `quantizer`.
    pub fn in_memory(chunks: Vec<HotChunk>, slot_ids: Vec<Option<String>>, quantizer: &Quantizer) -> Self {
        Self { chunks, slot_ids: Arc::new(slot_ids), scale: quantizer.scale, metric: quantizer.metric }
    }

    /// Bytes of ciphertext held in memory.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(HotChunk::bytes).sum()
    }

    /// The chunks, in global slot order.
    pub fn chunks(&self) -> &[HotChunk] {
        &self.chunks
    }

    /// The gallery id of each global slot (`None`: empty or removed), shared with every answer
    /// that names them.
    pub fn slot_ids(&self) -> &Arc<Vec<Option<String>>> {
        &self.slot_ids
    }

    /// Templates held (slots with an id).
    pub fn templates(&self) -> usize {
        self.slot_ids.iter().filter(|s| s.is_some()).count()
    }

    /// The quantisation scale the gallery was enrolled at.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// The gallery's matching function.
    pub fn metric(&self) -> Metric {
        self.metric
    }
}

/// Words of hot form, owned or borrowed from a mapped cache file.
#[derive(Debug, Clone)]
pub(crate) enum HotWords {
    /// Built in memory (shared: a new gallery version reuses the chunks it did not change).
    Owned(Arc<[u64]>),
    /// A range of words inside a mapped `.hot` file.
    Mapped { map: Arc<Mmap>, start: usize, len: usize },
}

impl HotWords {
    /// The words.
    pub(crate) fn words(&self) -> &[u64] {
        match self {
            HotWords::Owned(v) => v,
            HotWords::Mapped { map, start, len } => {
                // The mapping is page-aligned, the header 64 bytes and each chunk whole words:
                // the cast cannot fail for a file `open` accepted (checked there).
                bytemuck::try_cast_slice(&map[cache::HEADER..])
                    .map(|w: &[u64]| &w[*start..*start + *len])
                    .unwrap_or(&[])
            }
        }
    }
}
