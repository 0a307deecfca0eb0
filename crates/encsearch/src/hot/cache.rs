//! The hot form on disk: beside each segment `seg-N.bin`, a file `seg-N.hot` holding its
//! chunks in exactly the form the scoring kernel reads, memory-mapped on load.
//!
//! Building the hot form (basis extension + NTT) costs about five times the scoring of a chunk,
//! so a server that starts per query (`hers query score`) would pay it on every query. The
//! cache trades disk for that: 1 KB per template at 16-D (768 B in the narrow form) next to the 154 B of
//! the at-rest form. It is derived data: written atomically after a load that had to build it
//! (best effort — a read-only gallery just builds it every time), ignored and rebuilt when its
//! fingerprint (key, segment file and CRC, dimension, primes of the multiplication basis,
//! layout version) or its own CRC does not match, never needed for correctness.
//!
//! Layout: a 64-byte header — magic, 16-byte fingerprint, chunk count, words per chunk, CRC-32
//! of the data — then the chunks' u64 words, little-endian, so the data starts 8-byte aligned in
//! a page-aligned mapping.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::HotWords;
use super::basis::HotBasis;
use crate::error::{Error, Result};
use crate::kernel::{LANES, PROBE_ROWS};

const MAGIC: &[u8; 8] = b"HERSHT01";
pub(crate) const HEADER: usize = 64;
/// Bumped whenever the hot layout changes (kernel lanes, row order, Montgomery convention).
const LAYOUT_VERSION: u32 = 1;

/// What identifies the hot form of one segment for one multiplication basis.
pub(crate) fn fingerprint(basis: &HotBasis, file: &str, crc32: u32) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(LAYOUT_VERSION.to_le_bytes());
    h.update((LANES as u64).to_le_bytes());
    h.update((PROBE_ROWS as u64).to_le_bytes());
    h.update(basis.public().key_id.0.as_bytes());
    h.update(basis.public().params.canonical_bytes());
    h.update((basis.rows() as u64).to_le_bytes());
    for q in basis.extended_moduli() {
        h.update(q.to_le_bytes());
    }
    if basis.is_narrow() {
        // u32 words (wide caches keep the fingerprint they had before the narrow form).
        h.update(b"narrow u32");
    }
    h.update(file.as_bytes());
    h.update(crc32.to_le_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Maps `path` and returns its chunks' words if the file is a complete, intact cache with
/// this fingerprint, `chunks` chunks of `words` words each; `None` otherwise (then the caller
/// rebuilds). Only little-endian machines read caches (the words are stored little-endian).
pub(crate) fn open(path: &Path, fp: &[u8; 16], chunks: usize, words: usize) -> Option<Vec<HotWords>> {
    if cfg!(not(target_endian = "little")) {
        return None;
    }
    let map = crate::store::map_file(path).ok()?;
    if !check(&map, fp, chunks, words) || bytemuck::try_cast_slice::<u8, u64>(&map[HEADER..]).is_err() {
        return None;
    }
    let map = Arc::new(map);
    Some((0..chunks).map(|c| HotWords::Mapped { map: map.clone(), start: c * words, len: words }).collect())
}

/// Whether `bytes` are a complete, intact cache file with fingerprint `fp` holding `chunks`
/// chunks of `words` words each (size, magic, fingerprint, counts and CRC-32 of the data).
pub fn check(bytes: &[u8], fp: &[u8; 16], chunks: usize, words: usize) -> bool {
    let size = chunks.checked_mul(words).and_then(|w| w.checked_mul(8)).and_then(|b| b.checked_add(HEADER));
    if size != Some(bytes.len()) {
        return false;
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    &bytes[..8] == MAGIC
        && bytes[8..24] == fp[..]
        && u64_at(24) == chunks as u64
        && u64_at(32) == words as u64
        && u32::from_le_bytes(bytes[40..44].try_into().unwrap_or([0; 4])) == crc32fast::hash(&bytes[HEADER..])
}

/// Writes the cache of one segment atomically (temp file, fsync, rename).
pub(crate) fn write(path: &Path, fp: &[u8; 16], chunks: &[&[u64]]) -> Result<()> {
    let words = chunks.first().map_or(0, |c| c.len());
    if chunks.iter().any(|c| c.len() != words) {
        return Err(Error::InvalidArgument { reason: "hot chunks of different sizes".into() });
    }
    let mut data = Vec::with_capacity(HEADER + chunks.len() * words * 8);
    data.resize(HEADER, 0);
    for c in chunks {
        for w in *c {
            data.extend_from_slice(&w.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&data[HEADER..]);
    data[..8].copy_from_slice(MAGIC);
    data[8..24].copy_from_slice(fp);
    data[24..32].copy_from_slice(&(chunks.len() as u64).to_le_bytes());
    data[32..40].copy_from_slice(&(words as u64).to_le_bytes());
    data[40..44].copy_from_slice(&crc.to_le_bytes());
    crate::store::write_atomic(path, &data)
}
