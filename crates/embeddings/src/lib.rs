//! Embedding sets on disk and in memory.
//!
//! An embedding set is a parquet file with columns `id` (int64 or utf8, unique), `label`
//! (integer identity / class) and `embedding` (`FixedSizeList<Float32>` or `List<Float32>`,
//! one length per file); other columns are carried along untouched. This crate reads and
//! writes such files (streaming by row group), validates them with errors that say which file,
//! which row and how to fix it, imports the `.npy` feature files of the original HERS code,
//! and generates synthetic sets that imitate face, fingerprint and image embeddings.
//!
//! dimred, encsearch and eval all read embedding sets, and none of them may import the
//! others, so the format lives here.
//!
//! Everything that reads or writes files of embeddings or results sits behind the `parquet`
//! feature (on by default). Without it the crate is [`Match`], the vector helpers and the
//! atomic write: what the encrypted search needs, without linking arrow and parquet.
//!
//! ```no_run
//! use embeddings::{EmbeddingSet, Ids, read_set, write_set};
//!
//! # fn main() -> embeddings::Result<()> {
//! let set = EmbeddingSet::new(Ids::Int(vec![1, 2]), vec![7, 8], 3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0])?;
//! write_set("faces.parquet", &set)?;
//! let back = read_set("faces.parquet")?;
//! assert_eq!((back.len(), back.dim), (2, 3));
//! # Ok(())
//! # }
//! ```

pub mod atomic;
mod error;
mod matches;
#[cfg(feature = "parquet")]
mod npy;
#[cfg(feature = "parquet")]
mod reader;
#[cfg(feature = "parquet")]
mod results;
#[cfg(feature = "parquet")]
mod set;
#[cfg(feature = "parquet")]
mod synth;
mod vector;
#[cfg(feature = "parquet")]
mod writer;

pub use error::{Error, Result};
pub use matches::Match;
#[cfg(feature = "parquet")]
pub use npy::{NpyImport, import_npy};
#[cfg(feature = "parquet")]
pub use reader::{EmbeddingReader, read_set};
#[cfg(feature = "parquet")]
pub use results::{read_matches, write_matches};
#[cfg(feature = "parquet")]
pub use set::{EmbeddingSet, Ids};
#[cfg(feature = "parquet")]
pub use synth::{Preset, SynthSpec, SynthStats, synth_identities, synth_set, synth_to_parquet};
pub use vector::{dot, l2_normalize, l2_normalize_rows};
#[cfg(feature = "parquet")]
pub use writer::{EmbeddingWriter, write_set};
