//! The encrypted gallery on disk: a directory with `manifest.json` and segment files.
//!
//! * A segment holds whole chunks (at-rest form: seeded ciphertexts) and the id of every used
//!   slot; it ends with a CRC-32, and the manifest records its size and CRC too.
//! * Writes are atomic: segment to a temp file, fsync, rename, fsync the directory; then the
//!   manifest the same way. A crash before the manifest rename leaves an unlisted file that is
//!   ignored, so the gallery holds exactly the committed templates.
//! * `remove` tombstones ids in the manifest (no re-encryption); removed slots are still scored
//!   by the server but are never returned to the client's top-k.
//! * Beside a segment `seg-N.bin`, a server may keep `seg-N.hot`, the segment's hot form as a
//!   memory-mapped cache ([`Gallery::load_hot_cached`]); it is derived data, never listed in
//!   the manifest, and rebuilt whenever it does not match.
//! * The manifest records the [`Layout`]: dimension-wise galleries are scored whole; a
//!   coefficient-layout ("fine") gallery serves the second stage of a two-stage search, where
//!   the server gathers only the chunks that hold the client's candidates.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hotcache;
use crate::keys::{KeyId, PublicParams};
use crate::pack::{Layout, Reader, open_crc, put_bytes, seal_crc};
use crate::protocol::EncryptedChunk;
use crate::quantize::{Metric, Quantizer};
use crate::server::{HotChunk, HotGallery, ServerContext};

/// File name of the manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
const SEGMENT_MAGIC: &[u8; 8] = b"HERSSG01";
const FORMAT: u32 = 1;

/// One committed segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// File name inside the gallery directory.
    pub file: String,
    /// Chunks in the segment.
    pub chunks: usize,
    /// Templates (used slots) in the segment.
    pub templates: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

/// The gallery's manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// Public parameters and key id of the key that encrypted every segment.
    pub public: PublicParams,
    /// Template dimension d (the packed rows are `d`, or `d + 2` for the Euclidean metric).
    pub dim: usize,
    /// Quantisation scale.
    pub scale: u32,
    /// Matching function.
    pub metric: Metric,
    /// How templates are packed (absent in older manifests: dimension-wise).
    #[serde(default)]
    pub layout: Layout,
    /// Committed segments, in slot order.
    pub segments: Vec<SegmentEntry>,
    /// Tombstoned ids.
    pub removed: BTreeSet<String>,
    /// Number used for the next segment file name.
    pub next_segment: u64,
}

impl Manifest {
    /// Parses and checks the bytes of a `manifest.json` (`path` names it in errors).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
        if m.format != FORMAT {
            return Err(Error::malformed("manifest", format!("format {} (expected {FORMAT})", m.format)));
        }
        m.public.params.validate()?;
        if m.dim == 0 {
            return Err(Error::malformed("manifest", "dimension 0"));
        }
        if m.metric == Metric::Cosine {
            m.public.params.check_capacity(m.dim, m.scale)?;
        }
        if m.templates_per_chunk() == 0 {
            return Err(Error::malformed("manifest", "a chunk cannot hold one template"));
        }
        Ok(m)
    }

    /// The quantiser the gallery was enrolled with.
    pub fn quantizer(&self) -> Quantizer {
        Quantizer {
            dim: self.dim,
            scale: self.scale,
            metric: self.metric,
            max_abs_score: self.public.params.max_abs_score(),
        }
    }

    /// Templates per chunk under this manifest's layout.
    pub fn templates_per_chunk(&self) -> usize {
        self.layout.templates_per_chunk(self.public.params.degree, self.quantizer().rows())
    }

    /// Ciphertexts per chunk under this manifest's layout.
    pub fn cts_per_chunk(&self) -> usize {
        self.layout.cts_per_chunk(self.quantizer().rows())
    }
}

/// Checks the bytes of a segment file whose chunks hold at most `templates_per_chunk`
/// templates; returns its chunk count. (The decoder `Gallery::open` runs on every segment.)
pub fn check_segment(bytes: &[u8], templates_per_chunk: usize) -> Result<usize> {
    Ok(parse_segment(SegmentBytes::Owned(bytes.to_vec()), "segment", templates_per_chunk)?.chunks.len())
}

#[derive(Debug, Clone)]
struct ChunkEntry {
    ids: Vec<String>,
    range: Range<usize>,
}

/// A segment's bytes: memory-mapped when opened from disk (the page cache holds them, so a
/// gallery larger than memory can still be opened and streamed), owned right after a write.
#[derive(Debug, Clone)]
enum SegmentBytes {
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
fn map_segment(path: &Path) -> Result<SegmentBytes> {
    Ok(SegmentBytes::Mapped(Arc::new(map_file(path)?)))
}

/// Maps a file of the gallery directory read-only: a committed segment or a hot-form cache.
pub(crate) fn map_file(path: &Path) -> Result<Mmap> {
    let f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: hers writes these files only through `write_atomic` (temp file, fsync, rename)
    // and never writes, truncates or appends to one afterwards, so a mapping cannot change
    // under us unless another program tampers with the gallery directory; callers check size
    // and CRC before use.
    #[allow(unsafe_code, reason = "read-only mapping of an immutable, checksummed file")]
    unsafe { Mmap::map(&f) }.map_err(|e| Error::io(path, e))
}

#[derive(Debug, Clone)]
struct LoadedSegment {
    bytes: SegmentBytes,
    chunks: Vec<ChunkEntry>,
}

/// What [`Gallery::load_hot_cached`] did with the hot form on disk (`seg-N.hot`).
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

/// An opened gallery directory.
#[derive(Debug)]
pub struct Gallery {
    dir: PathBuf,
    manifest: Manifest,
    segments: Vec<LoadedSegment>,
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, directory fsync.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    if let Ok(d) = fs::File::open(dir) {
        // Directory fsync makes the rename durable; not supported everywhere, so best effort.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Parses a segment whose chunks hold at most `n` templates each.
fn parse_segment(bytes: SegmentBytes, name: &str, n: usize) -> Result<LoadedSegment> {
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
        let len = r.bytes(usize::MAX)?.len();
        chunks.push(ChunkEntry { ids, range: pos + 4..pos + 4 + len });
        pos += 4 + len;
    }
    r.finish()?;
    Ok(LoadedSegment { bytes, chunks })
}

impl Gallery {
    /// Creates an empty dimension-wise gallery in `dir` (which must not hold a manifest yet).
    pub fn create(dir: &Path, public: &PublicParams, quantizer: Quantizer) -> Result<Self> {
        Self::create_with_layout(dir, public, quantizer, Layout::DimensionWise)
    }

    /// Creates an empty gallery with an explicit packing layout.
    pub fn create_with_layout(dir: &Path, public: &PublicParams, quantizer: Quantizer, layout: Layout) -> Result<Self> {
        if layout == Layout::Coefficient && quantizer.rows() > public.params.degree {
            return Err(Error::InvalidArgument {
                reason: format!("{} rows do not fit one ciphertext of N = {}", quantizer.rows(), public.params.degree),
            });
        }
        if quantizer.metric == Metric::Cosine {
            public.params.check_capacity(quantizer.dim, quantizer.scale)?;
        }
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if dir.join(MANIFEST_FILE).exists() {
            return Err(Error::InvalidArgument { reason: format!("{} already holds a gallery", dir.display()) });
        }
        let manifest = Manifest {
            format: FORMAT,
            public: public.clone(),
            dim: quantizer.dim,
            scale: quantizer.scale,
            metric: quantizer.metric,
            layout,
            segments: Vec::new(),
            removed: BTreeSet::new(),
            next_segment: 1,
        };
        let g = Self { dir: dir.to_path_buf(), manifest, segments: Vec::new() };
        g.write_manifest()?;
        Ok(g)
    }

    /// A server context for this gallery (public material only): it multiplies one probe
    /// ciphertext per chunk ciphertext.
    pub fn server_context(&self) -> Result<ServerContext> {
        ServerContext::new(&self.manifest.public, self.cts_per_chunk())
    }

    /// The packing layout.
    pub fn layout(&self) -> Layout {
        self.manifest.layout
    }

    /// Templates per chunk: N (dimension-wise) or ⌊N/R⌋ (coefficient layout).
    pub fn templates_per_chunk(&self) -> usize {
        self.manifest.templates_per_chunk()
    }

    /// Ciphertexts per chunk.
    pub fn cts_per_chunk(&self) -> usize {
        self.manifest.cts_per_chunk()
    }

    /// Opens a gallery, reading and verifying every committed segment (size and CRC).
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let manifest = Manifest::from_json(&text, &path)?;
        let n = manifest.templates_per_chunk();
        let segments = manifest
            .segments
            .par_iter()
            .map(|s| {
                let p = dir.join(&s.file);
                let size = fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
                if size != s.bytes {
                    return Err(Error::malformed(
                        "segment",
                        format!("{}: {size} bytes, manifest says {} (truncated?)", s.file, s.bytes),
                    ));
                }
                let bytes = map_segment(&p)?;
                let computed = crc32fast::hash(&bytes[..]);
                if computed != s.crc32 {
                    return Err(Error::Checksum { what: s.file.clone(), stored: s.crc32, computed });
                }
                let seg = parse_segment(bytes, &s.file, n)?;
                if seg.chunks.len() != s.chunks {
                    return Err(Error::malformed("segment", format!("{}: chunk count differs from manifest", s.file)));
                }
                Ok(seg)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { dir: dir.to_path_buf(), manifest, segments })
    }

    fn write_manifest(&self) -> Result<()> {
        let path = self.dir.join(MANIFEST_FILE);
        let text = serde_json::to_vec_pretty(&self.manifest).map_err(|source| Error::Json { path, source })?;
        write_atomic(&self.dir, MANIFEST_FILE, &text)
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The quantiser the gallery was enrolled with.
    pub fn quantizer(&self) -> Quantizer {
        self.manifest.quantizer()
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.segments.iter().map(|s| s.chunks.len()).sum()
    }

    /// Live (enrolled, not removed) templates.
    pub fn len(&self) -> usize {
        self.slot_ids().iter().filter(|s| s.is_some()).count()
    }

    /// True when no live template is enrolled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gallery id of every global slot (`None` for unused or removed slots).
    pub fn slot_ids(&self) -> Vec<Option<String>> {
        let n = self.templates_per_chunk();
        let mut out = Vec::with_capacity(self.chunk_count() * n);
        for c in self.segments.iter().flat_map(|s| &s.chunks) {
            for i in 0..n {
                out.push(c.ids.get(i).filter(|id| !self.manifest.removed.contains(*id)).cloned());
            }
        }
        out
    }

    /// (chunk, slot) of each of `ids`, in order; one pass over the gallery.
    pub fn locate_many(&self, ids: &[String]) -> Result<Vec<(usize, usize)>> {
        let wanted: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let mut found = vec![None; ids.len()];
        for (ci, c) in self.segments.iter().flat_map(|s| &s.chunks).enumerate() {
            for (slot, id) in c.ids.iter().enumerate() {
                if let Some(&i) = wanted.get(id.as_str()) {
                    found[i] = Some((ci, slot));
                }
            }
        }
        ids.iter()
            .zip(found)
            .map(|(id, f)| match f {
                Some(p) if !self.manifest.removed.contains(id) => Ok(p),
                _ => Err(Error::UnknownId { id: id.clone() }),
            })
            .collect()
    }

    /// Global (chunk, slot) of a live id.
    pub fn locate(&self, id: &str) -> Result<(usize, usize)> {
        let found = self.locate_many(&[id.to_string()])?;
        found.into_iter().next().ok_or_else(|| Error::UnknownId { id: id.to_string() })
    }

    /// Appends encrypted chunks (from [`crate::Client::encrypt_quantized`]) with their ids as
    /// one new segment; `ids[i]` is the template in global slot i of the new chunks.
    pub fn append(&mut self, key_id: &KeyId, ids: &[String], chunks: &[EncryptedChunk]) -> Result<()> {
        self.manifest.public.key_id.ensure_eq(key_id)?;
        let n = self.templates_per_chunk();
        if ids.is_empty() || ids.len() > chunks.len() * n || ids.len() + n <= chunks.len() * n {
            return Err(Error::InvalidArgument {
                reason: format!("{} ids for {} chunks of {n} slots", ids.len(), chunks.len()),
            });
        }
        let mut seen: HashMap<&str, ()> = HashMap::with_capacity(ids.len());
        let existing: BTreeSet<&String> = self.segments.iter().flat_map(|s| &s.chunks).flat_map(|c| &c.ids).collect();
        for id in ids {
            if seen.insert(id, ()).is_some() || existing.contains(id) {
                return Err(Error::DuplicateId { id: id.clone() });
            }
        }
        let mut bytes = Vec::new();
        bytes.extend_from_slice(SEGMENT_MAGIC);
        bytes.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
        for (c, chunk) in chunks.iter().enumerate() {
            if chunk.rows() != self.cts_per_chunk() {
                return Err(Error::DimensionMismatch { expected: self.cts_per_chunk(), actual: chunk.rows() });
            }
            let cids = &ids[(c * n).min(ids.len())..((c + 1) * n).min(ids.len())];
            bytes.extend_from_slice(&(cids.len() as u32).to_le_bytes());
            for id in cids {
                put_bytes(&mut bytes, id.as_bytes());
            }
            put_bytes(&mut bytes, &chunk.to_bytes());
        }
        seal_crc(&mut bytes);
        let file = format!("seg-{:08}.bin", self.manifest.next_segment);
        write_atomic(&self.dir, &file, &bytes)?;
        let entry = SegmentEntry {
            file: file.clone(),
            chunks: chunks.len(),
            templates: ids.len(),
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        let seg = parse_segment(SegmentBytes::Owned(bytes), &file, n)?;
        let mut next = self.manifest.clone();
        next.segments.push(entry);
        next.next_segment += 1;
        let old = std::mem::replace(&mut self.manifest, next);
        if let Err(e) = self.write_manifest() {
            self.manifest = old;
            return Err(e);
        }
        self.segments.push(seg);
        Ok(())
    }

    /// Tombstones ids (no re-encryption). Errors on an unknown id; returns how many were removed.
    pub fn remove(&mut self, ids: &[String]) -> Result<usize> {
        self.locate_many(ids)?;
        let old = self.manifest.clone();
        self.manifest.removed.extend(ids.iter().cloned());
        if let Err(e) = self.write_manifest() {
            self.manifest = old;
            return Err(e);
        }
        Ok(ids.len())
    }

    /// Decodes one chunk's at-rest form.
    pub fn chunk(&self, index: usize, server: &ServerContext) -> Result<EncryptedChunk> {
        let mut i = index;
        for seg in &self.segments {
            if let Some(c) = seg.chunks.get(i) {
                return EncryptedChunk::from_bytes(&seg.bytes[c.range.clone()], server.bfv(), self.cts_per_chunk());
            }
            i -= seg.chunks.len();
        }
        Err(Error::InvalidArgument { reason: format!("no chunk {index}") })
    }

    /// Loads every chunk into the server's hot form, on all cores (no cache file read or written).
    pub fn load_hot(&self, server: &ServerContext) -> Result<HotGallery> {
        Ok(self.load_hot_with(server, None)?.0)
    }

    /// Loads the hot form, mapping each segment's cache file `seg-N.hot` where it is present
    /// and intact (see `hotcache.rs`), building it on all cores otherwise — and then writing
    /// the cache file when `write` (best effort: a failed write is reported, not an error).
    pub fn load_hot_cached(&self, server: &ServerContext, write: bool) -> Result<(HotGallery, HotCacheReport)> {
        self.load_hot_with(server, Some(write))
    }

    fn load_hot_with(&self, server: &ServerContext, cache: Option<bool>) -> Result<(HotGallery, HotCacheReport)> {
        self.manifest.public.key_id.ensure_eq(&server.public().key_id)?;
        if self.layout() != Layout::DimensionWise {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{} is a coefficient-layout (fine) gallery: use it as the second stage of a two-stage search",
                    self.dir.display()
                ),
            });
        }
        let rows = self.cts_per_chunk();
        if server.dim() != rows {
            return Err(Error::DimensionMismatch { expected: rows, actual: server.dim() });
        }
        let words = server.hot_words_per_chunk();
        let mut report = HotCacheReport::default();
        // Per segment: its cache file and fingerprint, and the mapped chunks where the cache holds.
        let plan: Vec<_> = self
            .segments
            .iter()
            .zip(&self.manifest.segments)
            .map(|(seg, entry)| {
                let path = self.dir.join(Path::new(&entry.file).with_extension("hot"));
                let fp = hotcache::fingerprint(server, &entry.file, entry.crc32);
                let mapped = cache.and_then(|_| hotcache::open(&path, &fp, seg.chunks.len(), words));
                (seg, path, fp, mapped)
            })
            .collect();
        // Build every chunk no cache holds, in one parallel pass over all such segments.
        let to_build: Vec<(&LoadedSegment, &ChunkEntry)> = plan
            .iter()
            .filter(|p| p.3.is_none())
            .flat_map(|(seg, ..)| seg.chunks.iter().map(move |c| (*seg, c)))
            .collect();
        let mut built = to_build
            .par_iter()
            .map(|(s, c)| {
                let ec = EncryptedChunk::from_bytes(&s.bytes[c.range.clone()], server.bfv(), rows)?;
                server.prepare_chunk(&ec)
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut chunks = Vec::with_capacity(self.chunk_count());
        for (seg, path, fp, mapped) in plan {
            if let Some(m) = mapped {
                report.mapped += 1;
                chunks.extend(m.into_iter().map(HotChunk::from_words));
                continue;
            }
            report.built += 1;
            let first = chunks.len();
            chunks.extend(built.by_ref().take(seg.chunks.len()));
            if cache == Some(true) {
                let refs: Vec<&[u64]> = chunks[first..].iter().map(HotChunk::words).collect();
                match hotcache::write(&path, &fp, &refs) {
                    Ok(()) => report.written_bytes += refs.iter().map(|r| r.len() as u64 * 8).sum::<u64>(),
                    Err(e) => {
                        report.write_error.get_or_insert(e.to_string());
                    }
                }
            }
        }
        let hot = HotGallery {
            chunks,
            slot_ids: Arc::new(self.slot_ids()),
            scale: self.manifest.scale,
            metric: self.manifest.metric,
        };
        Ok((hot, report))
    }

    /// Bytes of all committed segment files.
    pub fn bytes_at_rest(&self) -> u64 {
        self.manifest.segments.iter().map(|s| s.bytes).sum()
    }

    /// The gallery directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
