//! Encrypted biometric gallery: BFV-packed templates and encrypted 1:N search.
//!
//! The crate is laid out by role:
//!
//! * setup — `params.rs` (parameter presets inside the HE-standard bounds), `keys.rs` (the
//!   client's key set, the server's public parameters), `quantize.rs`, `pack.rs` (the two
//!   template layouts);
//! * [`Client`] (`client.rs`) holds the secret key: encrypts templates and probes, decrypts
//!   scores (`decrypt.rs`: with `s` and `s²` kept in NTT form and the kernels' transforms); [`Ranking`] (`ranking.rs`) folds decrypted chunks into each probe's top-k as they
//!   arrive; `topk.rs` is the selection every ranking uses;
//! * `compact/`: compact answers (relinearised once per chunk, two small moduli) and the
//!   client's key for them;
//! * `seal.rs`: the key holder's MAC over a gallery state ([`Seal`], [`SealKey`]), which the
//!   client checks every id table against;
//! * `store/`: the gallery at rest — segments, manifest, id ↔ slot map, atomic writes;
//! * `hot/`: the hot form a server scores (basis extension + NTT) and its on-disk cache;
//! * `server/`: [`ServerContext`], built from [`PublicParams`] only, scores a [`Query`] against
//!   any [`ChunkSource`], and the second stage of a two-stage search against a
//!   [`CandidateSource`]; the HERS baseline;
//! * `kernel/`: the arithmetic of the hot loop (tensor sums, NTT, basis extension,
//!   down-scaling), each with an AVX-512 IFMA build chosen once from a [`Simd`] value;
//! * `wire/`: every message and its byte encoding;
//! * `enrol.rs`: the key holder's enrolment ([`Rows`] checked once, [`Enroller`] committing
//!   sealed segments) that the CLI, the Python package and the service client share;
//! * `session.rs`: the client-side orchestration (encrypt → score → decrypt, timed; the two-stage
//!   plumbing; 1:1 verification) that the CLI, eval and the benchmarks share;
//!
//! The main path, all roles in one process (a server holds only the [`ServerContext`] and the
//! [`Gallery`]; the key holder the [`Client`]):
//!
//! ```no_run
//! use encsearch::{Client, ClientKeys, Enroller, Gallery, Preset, Rows, ServerContext, Session};
//!
//! # fn main() -> encsearch::Result<()> {
//! let mut rng = rand::rng();
//! let keys = ClientKeys::generate(Preset::N4096.params()?, &mut rng)?;
//! let client = Client::new(keys, 16)?; // 16-D templates
//! // Enrol: rows (row-major, 16 values each) encrypted and committed, sealed by the key holder.
//! let (ids, data) = (vec!["alice".to_string(), "bob".to_string()], vec![0.25f32; 32]);
//! let mut gallery = Gallery::create("gallery".as_ref(), client.keys().public(), *client.quantizer())?;
//! let rows = Rows::new("the example rows", &ids, &data, 16)?;
//! Enroller::new(&mut gallery, &client, 32, "example")?.enrol(&rows, false, &mut rng, |_| Ok(()))?;
//! // Search: the server scores the encrypted probe; the client decrypts and ranks.
//! let server = ServerContext::for_gallery(&gallery)?;
//! let hot = server.load_hot(&gallery)?;
//! let found = Session::new(&client).search(vec!["probe".into()], &data[..16], 1, &mut rng, |q| server.score(q, &hot))?;
//! println!("{} → {}", found.matches[0].probe_id, found.matches[0].gallery_id);
//! # Ok(())
//! # }
//! ```

mod client;
mod compact;
mod decrypt;
mod enrol;
mod error;
mod hot;
mod kernel;
mod keys;
mod pack;
mod params;
mod quantize;
mod ranking;
mod seal;
mod server;
mod session;
mod store;
mod topk;
mod wire;

pub use client::Client;
pub use compact::{CompactKey, ScoreForm, compact_moduli};
pub use embeddings::Match;
pub use enrol::{EnrolReport, Enroller, Rows};
pub use error::{Error, Result};
pub use hot::{HotBasis, HotCacheReport, HotChunk, HotGallery, HotProbe, check_hot_cache};
pub use kernel::{Kernel, Simd};
pub use keys::{ClientKeys, KeyId, PUBLIC_FILE, PublicParams, SECRET_FILE};
pub use pack::Layout;
pub use params::{
    DEFAULT_PLAINTEXT, DEFAULT_VARIANCE, HE_STANDARD_128, MAX_FAILURE_LOG2, NoiseBudget, Preset, SearchParams,
    max_log_q,
};
pub use quantize::{Metric, Quantizer, int_dot};
pub use ranking::Ranking;
pub use seal::{ChunkSeal, Expect, Seal, SealKey, chunk_digest, chunk_hash, state_hash, table_chunk_hashes};
pub use server::{CandidateSource, ChunkSource, FineChunks, GalleryChunk, HersBaseline, HotSlice, ServerContext};
pub use session::{
    AllScores, Rescored, Searched, Session, Timings, Verified, candidate_lists, probe_labels, probe_order,
    restore_probe_ids,
};
pub use store::{
    CheckReport, EnrolPlan, Gallery, LOCK_FILE, LockWait, MANIFEST_FILE, Manifest, SegmentEntry, WriterLock,
    check_gallery, check_segment, fingerprint_file, fingerprint_rows,
};
pub use topk::{Hit, Score, TopK};
pub use wire::{
    ChunkScores, EncryptedChunk, EncryptedProbe, Enrolment, FineProbe, FineQuery, FineResponse, GatheredChunk, IdTable,
    MAX_FRAME_BYTES, Query, Response, ScoreStream, StreamFrames, StreamHeader,
};
