//! An opened gallery directory: create, open (every segment checked), append, remove, and read
//! one chunk's at-rest form. Every change runs under the gallery's writer lock
//! ([`WriterLock`]): held from [`Gallery::lock_for_writing`] until the `Gallery` is dropped (a
//! command that writes), or taken for one change at a time. Taking it brings the gallery up to
//! what other writers committed before, so no write is ever based on a stale manifest.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fhe::bfv::BfvParameters;
use rayon::prelude::*;

use super::lock::{LockWait, WriterLock};
use super::manifest::{FORMAT, MANIFEST_FILE, Manifest, SegmentEntry};
use super::segment::{LoadedSegment, SegmentBytes, encode_segment, map_segment, open_segment, parse_segment};
use super::slots::Slots;
use super::write_atomic;
use crate::error::{Error, Result};
use crate::keys::{KeyId, PublicParams};
use crate::pack::Layout;
use crate::quantize::{Metric, Quantizer};
use crate::seal::{ChunkSeal, Seal, chunk_hash};
use crate::wire::{EncryptedChunk, IdTable};

/// An opened gallery directory.
#[derive(Debug)]
pub struct Gallery {
    dir: PathBuf,
    manifest: Manifest,
    segments: Vec<LoadedSegment>,
    slots: Slots,
    /// 64-bit hashes of every id ever enrolled: built on the first append, kept up to date by
    /// each, so an append checks its ids in time independent of the gallery's size (a hit is
    /// confirmed against the ids themselves) instead of rebuilding a set of every id per segment.
    id_hashes: Option<HashSet<u64>>,
    /// The writer lock, once this gallery has written or been locked for writing.
    lock: Option<WriterLock>,
    /// [`crate::seal::chunk_hash`] of the first chunks (kept across appends, cleared by removals),
    /// so that sealing a long local enrolment does not hash every id once per segment.
    hashes: std::sync::Mutex<Vec<[u8; 32]>>,
}

impl Gallery {
    /// Creates an empty dimension-wise gallery in `dir` (which must not hold a manifest yet).
    pub fn create(dir: &Path, public: &PublicParams, quantizer: Quantizer) -> Result<Self> {
        Self::create_with_layout(dir, public, quantizer, Layout::DimensionWise)
    }

    /// Creates an empty gallery with an explicit packing layout.
    pub fn create_with_layout(dir: &Path, public: &PublicParams, quantizer: Quantizer, layout: Layout) -> Result<Self> {
        check_new(public, quantizer, layout)?;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = WriterLock::acquire(dir, LockWait::Wait, |_| {})?;
        let mut g = Self::create_locked(dir, public, quantizer, layout, lock)?;
        // Created; later changes lock for themselves (see `with_writer`).
        g.lock = None;
        Ok(g)
    }

    /// Creates the gallery under a writer lock already held on `dir`.
    fn create_locked(
        dir: &Path,
        public: &PublicParams,
        quantizer: Quantizer,
        layout: Layout,
        lock: WriterLock,
    ) -> Result<Self> {
        check_new(public, quantizer, layout)?;
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
            seal: None,
        };
        let slots = Slots::new(manifest.templates_per_chunk());
        let g = Self {
            dir: dir.to_path_buf(),
            manifest,
            segments: Vec::new(),
            slots,
            id_hashes: None,
            lock: Some(lock),
            hashes: Default::default(),
        };
        g.write_manifest()?;
        Ok(g)
    }

    /// Opens the gallery in `dir` for writing, or creates it there (with `public`, `quantizer`
    /// and `layout`) when `dir` holds none yet; decided under the writer lock, so two writers
    /// starting together never both create one. `wait`/`on_wait` as in
    /// [`Gallery::lock_for_writing`]. Returns the gallery and whether it was created.
    pub fn open_or_create(
        dir: &Path,
        public: &PublicParams,
        quantizer: Quantizer,
        layout: Layout,
        wait: LockWait,
        on_wait: impl FnOnce(Option<u32>),
    ) -> Result<(Self, bool)> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = WriterLock::acquire(dir, wait, on_wait)?;
        if dir.join(MANIFEST_FILE).exists() {
            let mut g = Self::open(dir)?;
            g.lock = Some(lock);
            return Ok((g, false));
        }
        Ok((Self::create_locked(dir, public, quantizer, layout, lock)?, true))
    }

    /// Opens a gallery, reading and verifying every committed segment (size and CRC).
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let manifest = Manifest::from_json(&text, &path)?;
        let n = manifest.templates_per_chunk();
        let mut segments = manifest.segments.par_iter().map(|s| open_segment(dir, s, n)).collect::<Result<Vec<_>>>()?;
        let mut slots = Slots::new(n);
        for c in segments.iter_mut().flat_map(|s| &mut s.chunks) {
            slots.push_chunk(std::mem::take(&mut c.ids), c.digest);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            slots,
            id_hashes: None,
            lock: None,
            hashes: Default::default(),
        })
    }

    /// Takes the gallery's writer lock (held until this `Gallery` is dropped) and reloads what
    /// other writers committed since it was opened. When another process holds the lock,
    /// `on_wait` gets its pid before this call blocks ([`LockWait::Wait`]), or the call fails
    /// with [`Error::GalleryLocked`] ([`LockWait::NoWait`]). Changes take the lock themselves
    /// (waiting) when it is not held yet.
    pub fn lock_for_writing(&mut self, wait: LockWait, on_wait: impl FnOnce(Option<u32>)) -> Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let lock = WriterLock::acquire(&self.dir, wait, on_wait)?;
        let path = self.dir.join(MANIFEST_FILE);
        let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if Manifest::from_json(&text, &path)? != self.manifest {
            *self = Self::open(&self.dir)?;
        }
        self.lock = Some(lock);
        Ok(())
    }

    /// True while this gallery holds the writer lock.
    pub fn is_locked_for_writing(&self) -> bool {
        self.lock.is_some()
    }

    /// Runs a change under the writer lock: the one this gallery holds (taken with
    /// [`Gallery::lock_for_writing`]), or else one taken for this change only (waiting for it,
    /// silently: callers that want to say so lock first) and released after it. OS locks are per
    /// open file, so a second `Gallery` value of the same directory in the same process waits
    /// too: while one value holds the lock from `lock_for_writing`, write through that one.
    fn with_writer<T>(&mut self, change: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.lock.is_some() {
            return change(self);
        }
        self.lock_for_writing(LockWait::Wait, |_| {})?;
        let result = change(self);
        self.lock = None;
        result
    }

    fn write_manifest(&self) -> Result<()> {
        let path = self.dir.join(MANIFEST_FILE);
        let text =
            serde_json::to_vec_pretty(&self.manifest).map_err(|source| Error::Json { path: path.clone(), source })?;
        write_atomic(&path, &text)
    }

    /// The version of the committed gallery: a fingerprint of its manifest (segments, their
    /// CRCs, removed ids). Every append or removal changes it; the same content has the same
    /// version in every process, so a client's cached id table survives a server restart.
    pub fn version(&self) -> u64 {
        use sha2::{Digest, Sha256};
        let bytes = serde_json::to_vec(&self.manifest).unwrap_or_default();
        let d = Sha256::digest(&bytes);
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
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

    /// The quantiser the gallery was enrolled with.
    pub fn quantizer(&self) -> Quantizer {
        self.manifest.quantizer()
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.slots.chunks()
    }

    /// Live (enrolled, not removed) templates.
    pub fn len(&self) -> usize {
        self.slots.live(&self.manifest.removed)
    }

    /// True when no live template is enrolled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gallery id of every global slot (`None` for unused or removed slots).
    pub fn slot_ids(&self) -> Arc<Vec<Option<String>>> {
        self.slots.slot_ids(&self.manifest.removed)
    }

    /// Gallery id of every slot of one chunk (`None` for unused or removed slots).
    pub fn chunk_slot_ids(&self, chunk: usize) -> Vec<Option<String>> {
        self.slots.chunk_slot_ids(chunk, &self.manifest.removed)
    }

    /// (chunk, slot) of each of `ids`, in order; one pass over the gallery.
    pub fn locate_many(&self, ids: &[String]) -> Result<Vec<(usize, usize)>> {
        self.slots.locate_many(ids, &self.manifest.removed)
    }

    /// Global (chunk, slot) of a live id.
    pub fn locate(&self, id: &str) -> Result<(usize, usize)> {
        let found = self.locate_many(&[id.to_string()])?;
        found.into_iter().next().ok_or_else(|| Error::UnknownId { id: id.to_string() })
    }

    /// Appends encrypted chunks (from [`crate::Client::encrypt_quantized`]) with their ids as
    /// one new segment; `ids[i]` is the template in global slot i of the new chunks. Only for
    /// a gallery without a seal (see [`Gallery::append_sealed`]).
    pub fn append(&mut self, key_id: &KeyId, ids: &[String], chunks: &[EncryptedChunk]) -> Result<()> {
        self.append_sealed(key_id, ids, chunks, None, None)
    }

    /// [`Gallery::append`], recording in the manifest the fingerprint of the input the rows came
    /// from (see [`Gallery::plan_enrolment`]), so an interrupted enrolment can be resumed, and
    /// the key holder's `seal` of the state after it ([`crate::seal::SealKey::seal_append`] of
    /// [`Gallery::id_table`]). A sealed gallery takes only sealed writes, each one write after
    /// the seal it holds; the seal is committed with the segment, in one manifest write.
    pub fn append_sealed(
        &mut self,
        key_id: &KeyId,
        ids: &[String],
        chunks: &[EncryptedChunk],
        source: Option<&str>,
        seal: Option<Seal>,
    ) -> Result<()> {
        self.manifest.public.key_id.ensure_eq(key_id)?;
        self.with_writer(|g| g.append_locked(ids, chunks, source, seal))
    }

    /// Refuses a write whose seal does not follow the gallery's (or that has none where the
    /// gallery is sealed).
    fn check_seal(&self, seal: Option<&Seal>) -> Result<()> {
        match (&self.manifest.seal, seal) {
            (None, None) => Ok(()),
            (None, Some(s)) if s.counter == 1 => Ok(()),
            (Some(held), Some(s)) if s.gallery == held.gallery && s.counter == held.counter + 1 => Ok(()),
            (Some(_), None) => Err(Error::SealMismatch {
                reason: format!(
                    "{} is sealed by its key holder: a write must carry the key holder's seal (write with hers                      enroll or hers client and the gallery's key set)",
                    self.dir.display()
                ),
            }),
            (held, Some(s)) => Err(Error::SealMismatch {
                reason: format!(
                    "this write was sealed for write {} of gallery {}, the gallery is at write {} of {}: another                      write came first; read the gallery's id table again and seal anew",
                    s.counter,
                    s.gallery,
                    held.as_ref().map_or(0, |h| h.counter),
                    held.as_ref().map_or("(unsealed)", |h| h.gallery.as_str())
                ),
            }),
        }
    }

    /// The id table of the committed state: every slot's id, each chunk's used slots and
    /// digest, and the seal. What a server sends for [`Gallery::version`], and what the key
    /// holder seals its next write against.
    pub fn id_table(&self) -> IdTable {
        IdTable {
            version: self.version(),
            slot_ids: self.slot_ids(),
            chunks: Arc::new(self.slots.chunk_seals().to_vec()),
            seal: self.manifest.seal.clone(),
        }
    }

    /// Each chunk's used slots and digest, in chunk order.
    pub fn chunk_seals(&self) -> &[ChunkSeal] {
        self.slots.chunk_seals()
    }

    /// Every chunk's [`crate::seal::chunk_hash`] in the committed state: what a key holder writing
    /// to this directory seals against ([`crate::seal::SealKey::seal_append_to`]).
    pub fn chunk_hashes(&self) -> Result<Vec<[u8; 32]>> {
        let mut known = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
        let seals = self.slots.chunk_seals();
        let more = (known.len()..seals.len())
            .into_par_iter()
            .map(|c| chunk_hash(&seals[c], &self.chunk_slot_ids(c)))
            .collect::<Result<Vec<_>>>()?;
        known.extend(more);
        Ok(known.clone())
    }

    /// [`Gallery::append_sealed`] under the writer lock.
    fn append_locked(
        &mut self,
        ids: &[String],
        chunks: &[EncryptedChunk],
        source: Option<&str>,
        seal: Option<Seal>,
    ) -> Result<()> {
        let n = self.templates_per_chunk();
        if ids.is_empty() || ids.len() > chunks.len() * n || ids.len() + n <= chunks.len() * n {
            return Err(Error::InvalidArgument {
                reason: format!("{} ids for {} chunks of {n} slots", ids.len(), chunks.len()),
            });
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
        let slots = &self.slots;
        let index = self.id_hashes.get_or_insert_with(|| slots.all_ids().map(|id| id_hash(id)).collect());
        for id in ids {
            let enrolled = || index.contains(&id_hash(id)) && slots.all_ids().any(|x| x == id);
            if !seen.insert(id) || enrolled() {
                return Err(Error::DuplicateId { id: id.clone() });
            }
        }
        if let Some(chunk) = chunks.iter().find(|c| c.rows() != self.cts_per_chunk()) {
            return Err(Error::DimensionMismatch { expected: self.cts_per_chunk(), actual: chunk.rows() });
        }
        // After the content checks: a duplicate is reported as such, whatever the seal.
        self.check_seal(seal.as_ref())?;
        let bytes = encode_segment(ids, chunks, n);
        let file = format!("seg-{:08}.bin", self.manifest.next_segment);
        write_atomic(&self.dir.join(&file), &bytes)?;
        let entry = SegmentEntry {
            file: file.clone(),
            chunks: chunks.len(),
            templates: ids.len(),
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
            source: source.map(str::to_string),
        };
        // Parsed from the bytes written, then held as a mapping of the file (like every segment
        // an open finds), so a long enrolment does not keep every segment it wrote in memory.
        let mut seg = parse_segment(SegmentBytes::Owned(bytes), &file, n)?;
        seg.bytes = map_segment(&self.dir.join(&file))?;
        let mut next = self.manifest.clone();
        next.segments.push(entry);
        next.next_segment += 1;
        if seal.is_some() {
            next.seal = seal;
        }
        let old = std::mem::replace(&mut self.manifest, next);
        if let Err(e) = self.write_manifest() {
            self.manifest = old;
            return Err(e);
        }
        if let Some(index) = &mut self.id_hashes {
            index.extend(ids.iter().map(|id| id_hash(id)));
        }
        for c in &mut seg.chunks {
            self.slots.push_chunk(std::mem::take(&mut c.ids), c.digest);
        }
        self.segments.push(seg);
        Ok(())
    }

    /// Tombstones ids (no re-encryption). Errors on an unknown id; returns how many were
    /// removed. Only for a gallery without a seal (see [`Gallery::remove_sealed`]).
    pub fn remove(&mut self, ids: &[String]) -> Result<usize> {
        self.remove_sealed(ids, None)
    }

    /// [`Gallery::remove`] with the key holder's `seal` of the state after it
    /// ([`crate::seal::SealKey::seal_remove`]), committed in the same manifest write.
    pub fn remove_sealed(&mut self, ids: &[String], seal: Option<Seal>) -> Result<usize> {
        self.with_writer(|g| g.remove_locked(ids, seal))
    }

    /// [`Gallery::remove_sealed`] under the writer lock.
    fn remove_locked(&mut self, ids: &[String], seal: Option<Seal>) -> Result<usize> {
        self.locate_many(ids)?;
        self.check_seal(seal.as_ref())?;
        self.hashes.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let old = self.manifest.clone();
        self.manifest.removed.extend(ids.iter().cloned());
        if seal.is_some() {
            self.manifest.seal = seal;
        }
        if let Err(e) = self.write_manifest() {
            self.manifest = old;
            return Err(e);
        }
        Ok(ids.len())
    }

    /// The at-rest bytes of chunk `index`.
    pub(crate) fn chunk_bytes(&self, index: usize) -> Result<&[u8]> {
        let mut i = index;
        for seg in &self.segments {
            if let Some(b) = seg.chunk_bytes(i) {
                return Ok(b);
            }
            i -= seg.chunks.len();
        }
        Err(Error::InvalidArgument { reason: format!("no chunk {index}") })
    }

    /// Decodes one chunk's at-rest form (`bfv`: the gallery's parameters, see
    /// [`crate::SearchParams::bfv`]).
    pub fn chunk(&self, index: usize, bfv: &Arc<BfvParameters>) -> Result<EncryptedChunk> {
        EncryptedChunk::from_bytes(self.chunk_bytes(index)?, bfv, self.cts_per_chunk())
    }

    /// The used-slot ids of every chunk, in chunk order (removed ids included).
    pub(crate) fn chunk_ids(&self) -> impl Iterator<Item = &[String]> {
        self.slots.chunk_ids()
    }

    /// Appends chunks `range` of `source` (a gallery under the same key and quantiser) as one
    /// segment: the ciphertexts copied as they are, never re-encrypted, each id in the slot it
    /// had (removed ids included: tombstone them apart). Only the range's last chunk may be
    /// partly used, as when the range ends at or inside one segment of `source`. Unsealed: for
    /// galleries a key holder does not seal (a cluster's shards).
    pub fn append_copy(&mut self, source: &Gallery, range: std::ops::Range<usize>) -> Result<()> {
        let (mine, theirs) = (&self.manifest, &source.manifest);
        if mine.public != theirs.public || self.quantizer() != source.quantizer() || self.layout() != source.layout() {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{} and {} differ in key, quantiser or layout: chunks copy only between galleries of one key",
                    source.dir.display(),
                    self.dir.display()
                ),
            });
        }
        if range.is_empty() || range.end > source.chunk_count() {
            return Err(Error::InvalidArgument {
                reason: format!("chunks {range:?} of a gallery of {} chunks", source.chunk_count()),
            });
        }
        let bfv = theirs.public.params.bfv()?;
        let n = source.templates_per_chunk();
        let mut ids = Vec::with_capacity(range.len() * n);
        for (i, chunk_ids) in source.chunk_ids().enumerate().skip(range.start).take(range.len()) {
            if chunk_ids.len() != n && i + 1 != range.end {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "chunk {i} holds {} of {n} slots and is not the last of {range:?}",
                        chunk_ids.len()
                    ),
                });
            }
            ids.extend_from_slice(chunk_ids);
        }
        let chunks = range.clone().map(|i| source.chunk(i, &bfv)).collect::<Result<Vec<_>>>()?;
        let origin = source.segment_chunks().into_iter().find(|(_, r)| r.contains(&range.start));
        let from = origin.and_then(|(e, _)| e.source.clone());
        self.with_writer(|g| g.append_locked(&ids, &chunks, from.as_deref(), None))
    }

    /// Each committed segment's manifest entry with the range of global chunk indices it holds.
    pub(crate) fn segment_chunks(&self) -> Vec<(&SegmentEntry, std::ops::Range<usize>)> {
        let mut first = 0;
        self.manifest
            .segments
            .iter()
            .zip(&self.segments)
            .map(|(entry, seg)| {
                let r = first..first + seg.chunks.len();
                first = r.end;
                (entry, r)
            })
            .collect()
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

/// Checks that a new gallery with these parameters can hold and score its templates.
fn check_new(public: &PublicParams, quantizer: Quantizer, layout: Layout) -> Result<()> {
    if layout == Layout::Coefficient && quantizer.rows() > public.params.degree {
        return Err(Error::InvalidArgument {
            reason: format!("{} rows do not fit one ciphertext of N = {}", quantizer.rows(), public.params.degree),
        });
    }
    if quantizer.metric == Metric::Cosine {
        public.params.check_capacity(quantizer.dim, quantizer.scale)?;
    }
    Ok(())
}

/// The hash of an id in [`Gallery`]'s id index (SipHash with fixed keys: the same in every run).
fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}
