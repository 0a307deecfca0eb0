//! Encrypted biometric gallery: BFV-packed templates and encrypted 1:N search.
//!
//! The public face is one module per role; the names of the main path (below) are also
//! re-exported at the top:
//!
//! * [`keys`]: the key holder's key set ([`ClientKeys`]) and what a server may hold of it
//!   ([`PublicParams`]); [`params`]: parameter presets inside the HE-standard bounds
//!   ([`Preset::for_dim`] chooses them) and the noise budget;
//! * [`client`]: the [`Client`], which holds the secret key — encrypts templates and probes,
//!   decrypts scores; [`Ranking`] folds decrypted chunks into each probe's top-k as they arrive;
//!   [`session`]: the client-side orchestration (encrypt → score → decrypt, timed; the two-stage
//!   plumbing; 1:1 verification) that the CLI, eval and the benchmarks share;
//! * [`store`]: the gallery at rest ([`Gallery`]: segments, manifest, id ↔ slot map, the writer
//!   lock, integrity checks); [`Rows`] and [`Enroller`] are the one enrolment path (CLI, Python,
//!   service); [`seal`]: the key holder's MAC over a gallery state, which the client checks
//!   every id table against;
//! * [`hot`]: the hot form a server scores ([`hot::HotGallery`]) and its on-disk cache;
//!   [`server`]: the [`ServerContext`], built from [`PublicParams`] only, scores a [`Query`]
//!   against any [`server::ChunkSource`]; the HERS baseline;
//! * [`wire`]: every message and its byte encoding.
//!
//! Inside, `kernel/` holds the arithmetic of the hot loop (tensor sums, NTT, basis extension,
//! down-scaling), each with an AVX-512 IFMA build chosen once from a [`Simd`] value;
//! `compact/` the compact answers (relinearised once per chunk, two small moduli, [`CompactKey`]);
//! `decrypt.rs` the client's decryption with `s` and `s²` kept in NTT form; `topk.rs` the
//! selection every ranking uses; `quantize.rs` and `pack.rs` the template encodings.
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

pub mod client;
mod compact;
mod decrypt;
mod enrol;
mod error;
pub mod hot;
mod kernel;
pub mod keys;
mod pack;
pub mod params;
mod quantize;
mod ranking;
pub mod seal;
pub mod server;
pub mod session;
pub mod store;
mod topk;
pub mod wire;

// The main path by name; everything else by its role's module.
pub use client::Client;
pub use compact::{CompactKey, ScoreForm, compact_moduli};
pub use embeddings::Match;
pub use enrol::{EnrolReport, Enroller, Rows};
pub use error::{Error, Result};
pub use kernel::{Kernel, Simd};
pub use keys::{ClientKeys, PublicParams};
pub use pack::Layout;
pub use params::{Preset, SearchParams};
pub use quantize::{Metric, Quantizer, int_dot};
pub use ranking::Ranking;
pub use server::ServerContext;
pub use session::Session;
pub use store::Gallery;
pub use topk::{Hit, Score, TopK};
pub use wire::{Query, Response};
