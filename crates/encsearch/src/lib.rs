//! Encrypted biometric gallery: BFV-packed templates and encrypted 1:N search.
//!
//! Roles are split in the types: [`Client`] holds [`ClientKeys`] (the secret key), encrypts
//! and decrypts; [`ServerContext`] is built from [`PublicParams`] only and scores encrypted
//! probes against a [`HotGallery`]. A two-stage search narrows the gallery to a few candidates
//! at low dimension, then rescores them at full dimension in a coefficient-layout gallery
//! ([`Layout::Coefficient`], [`ServerContext::score_candidates`]).
//!
//! Where the time goes, and where each step lives: the hot form of a chunk (every ciphertext
//! extended to the multiplication basis Q ∪ P, in NTT form: `extend.rs`, `ntt.rs`) is built
//! once and kept in memory or on disk (`hotcache.rs`); a query multiplies the probe into it
//! with lazily reduced sums (`score.rs`), takes 3 inverse NTTs per prime and one down-scaling
//! straight to the response modulus (`rescale.rs`). Each of these has an AVX-512 IFMA build,
//! chosen at run time (`simd.rs`), and a portable one (`HERS_SIMD=off` forces it).

mod bench;
mod client;
mod error;
mod extend;
mod gallery;
mod hotcache;
mod keys;
mod ntt;
mod pack;
mod params;
mod protocol;
mod quantize;
mod rescale;
mod score;
mod server;
mod simd;
mod topk;

pub use bench::{BenchConfig, BenchReport, run as run_bench};
pub use client::{Client, Match};
pub use error::{Error, Result};
pub use gallery::{Gallery, HotCacheReport, MANIFEST_FILE, Manifest, SegmentEntry, check_segment};
pub use hotcache::check as check_hot_cache;
pub use keys::{ClientKeys, KeyId, PUBLIC_FILE, PublicParams, SECRET_FILE};
pub use ntt::Ntt;
pub use pack::{Layout, pack_bits, pack_chunk, pack_coefficients, pack_probe_coefficients, packed_len, unpack_bits};
pub use params::{DEFAULT_PLAINTEXT, DEFAULT_VARIANCE, HE_STANDARD_128, Preset, SearchParams, max_log_q};
pub use protocol::{
    ChunkScores, EncryptedChunk, EncryptedProbe, FineProbe, FineQuery, FineResponse, GatheredChunk, Query, Response,
};
pub use quantize::{Metric, Quantizer, int_dot};
pub use score::{
    Accumulator, IFMA_BLOCK, IFMA_MAX_BITS, Kernel, LANES, PROBE_ROWS, REDUCE_EVERY, blocked_index, probe_rows,
};
pub use server::{HotChunk, HotGallery, HotProbe, ServerContext};
pub use topk::{Hit, TopK};
