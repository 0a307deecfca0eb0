//! The scorer's per-thread scratch, reused from chunk to chunk so that scoring allocates
//! nothing per chunk.

use crate::compact::FinishScratch;

/// Per-thread scratch of the scorer: the kernel's output, the score polynomials and the
/// compact answers' scratch.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    /// The three score polynomials of the wide form, `[prime][part][coefficient]`.
    pub(crate) polys: Vec<u64>,
    /// The narrow form's score rows of a pass, `[pair][prime][part][coefficient]` (rows padded,
    /// see `server/mod.rs`).
    pub(crate) polys32: Vec<u32>,
    /// Scratch of compact answers' last step.
    pub(crate) finish: FinishScratch,
}
