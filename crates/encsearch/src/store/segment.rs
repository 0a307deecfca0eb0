//! Segment files: whole chunks in their at-rest form (seeded ciphertexts) with the id of every
//! used slot, ending in a CRC-32. Layout: magic `HERSSG01`, chunk count, then per chunk the
//! used-slot count, each id (length-prefixed) and the chunk's bytes (length-prefixed).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::manifest::SegmentEntry;
use crate::error::{Error, Result};
use crate::seal::chunk_digest;
use crate::wire::{EncryptedChunk, Reader, open_crc, put_bytes, seal_crc};

const SEGMENT_MAGIC: &[u8; 8] = b"HERSSG01";

/// Checks the bytes of a segment file whose chunks hold at most `templates_per_chunk`
/// templates; returns its chunk count. (The decoder `Gallery::open` runs on every segment.)
pub fn check_segment(bytes: &[u8], templates_per_chunk: usize) -> Result<usize> {
    Ok(parse_segment(SegmentBytes::Owned(bytes.to_vec()), "segment", templates_per_chunk)?.chunks.len())
}

/// One chunk of a segment: the ids of its used slots, where its bytes are, and their BLAKE3
/// digest (what the gallery's seal covers, computed from the bytes read, never trusted from a file).
#[derive(Debug, Clone)]
pub(crate) struct ChunkEntry {
    pub(crate) ids: Vec<String>,
    pub(crate) range: Range<usize>,
    pub(crate) digest: [u8; 32],
}

/// A segment's bytes: memory-mapped when opened from disk (the page cache holds them, so a
/// gallery larger than memory can still be opened and streamed), owned right after a write.
#[derive(Debug, Clone)]
pub(crate) enum SegmentBytes {
    Owned(Vec<u8>),
    Mapped(Arc<Mmap>),
}

impl std::ops::Deref for SegmentBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SegmentBytes::Owned(v) => v,
            SegmentBytes::Mapped(m) => m,
        }
    }
}

/// Maps a committed segment file read-only.
pub(crate) fn map_segment(path: &Path) -> Result<SegmentBytes> {
    Ok(SegmentBytes::Mapped(Arc::new(super::map_file(path)?)))
}

/// Maps and verifies the committed segment `entry` of the gallery in `dir` against its
/// manifest entry (size, CRC, structure, chunk count) and parses it (`n` slots per chunk).
pub(crate) fn open_segment(dir: &Path, entry: &SegmentEntry, n: usize) -> Result<LoadedSegment> {
    let p = dir.join(&entry.file);
    let size = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
    if size != entry.bytes {
        return Err(Error::malformed(
            "segment",
            format!("{}: {size} bytes, manifest says {} (truncated?)", entry.file, entry.bytes),
        ));
    }
    let bytes = map_segment(&p)?;
    let computed = crc32fast::hash(&bytes[..]);
    if computed != entry.crc32 {
        return Err(Error::Checksum { what: entry.file.clone(), stored: entry.crc32, computed });
    }
    let seg = parse_segment(bytes, &entry.file, n)?;
    if seg.chunks.len() != entry.chunks {
        return Err(Error::malformed("segment", format!("{}: chunk count differs from manifest", entry.file)));
    }
    Ok(seg)
}

/// A parsed segment: its bytes and its chunks.
#[derive(Debug, Clone)]
pub(crate) struct LoadedSegment {
    pub(crate) bytes: SegmentBytes,
    pub(crate) chunks: Vec<ChunkEntry>,
}

impl LoadedSegment {
    /// The at-rest bytes of chunk `i` of this segment.
    pub(crate) fn chunk_bytes(&self, i: usize) -> Option<&[u8]> {
        self.chunks.get(i).map(|c| &self.bytes[c.range.clone()])
    }
}

/// Encodes chunks (their at-rest bytes) and the ids of their slots, `n` slots per chunk, as a
/// sealed segment.
pub(crate) fn encode_segment(ids: &[String], chunks: &[EncryptedChunk], n: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(SEGMENT_MAGIC);
    bytes.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (c, chunk) in chunks.iter().enumerate() {
        let cids = &ids[(c * n).min(ids.len())..((c + 1) * n).min(ids.len())];
        bytes.extend_from_slice(&(cids.len() as u32).to_le_bytes());
        for id in cids {
            put_bytes(&mut bytes, id.as_bytes());
        }
        put_bytes(&mut bytes, &chunk.to_bytes());
    }
    seal_crc(&mut bytes);
    bytes
}

/// Parses a segment whose chunks hold at most `n` templates each.
pub(crate) fn parse_segment(bytes: SegmentBytes, name: &str, n: usize) -> Result<LoadedSegment> {
    let body_len = open_crc(&bytes, name)?.len();
    let mut r = Reader::new(&bytes[..body_len], "segment");
    if r.take(8)? != SEGMENT_MAGIC {
        return Err(Error::malformed("segment", format!("{name}: bad magic")));
    }
    let count = r.u32()? as usize;
    let mut chunks = Vec::with_capacity(count.min(1 << 16));
    let mut pos = 12;
    for _ in 0..count {
        let used = r.u32()? as usize;
        if used > n {
            return Err(Error::malformed("segment", format!("{name}: {used} slots > {n}")));
        }
        pos += 4;
        let mut ids = Vec::with_capacity(used);
        for _ in 0..used {
            let s = r.string(1 << 16)?;
            pos += 4 + s.len();
            ids.push(s);
        }
        let chunk = r.bytes(usize::MAX)?;
        let len = chunk.len();
        chunks.push(ChunkEntry { ids, range: pos + 4..pos + 4 + len, digest: chunk_digest(chunk) });
        pos += 4 + len;
    }
    r.finish()?;
    Ok(LoadedSegment { bytes, chunks })
}
