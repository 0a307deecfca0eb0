//! The gallery a server holds: immutable versions, swapped atomically, and the one writer.
//!
//! A [`Version`] is the hot form and slot ids of one committed gallery state. Queries take the
//! current version when they are accepted and finish on it, whatever is swapped in meanwhile.
//! Enrolment and removal run one at a time under the writer: commit to disk (segment and
//! manifest fsynced), build the next version from the previous one (only new segments are
//! prepared; removals change the slot ids only), swap it in — and only then acknowledge, so
//! every query accepted after the acknowledgement sees the change.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use encsearch::{
    Gallery, Layout, Quantizer, ServerContext, Simd,
    hot::HotGallery,
    seal::{ChunkSeal, Seal},
    store::LockWait,
    wire::{Enrolment, IdTable},
};

use crate::error::{Error, Result};

/// Past versions kept for clients that still have to fetch their id table.
const KEEP_VERSIONS: usize = 16;

/// One committed state of the gallery, in the hot form.
#[derive(Debug)]
pub struct Version {
    /// The gallery version ([`Gallery::version`]).
    pub number: u64,
    /// The hot form and slot ids.
    pub hot: HotGallery,
    /// Live templates.
    pub templates: usize,
    /// Each chunk's used slots and digest (from the bytes the store read).
    pub chunks: Arc<Vec<ChunkSeal>>,
    /// The key holder's seal of this state, if the gallery has one.
    pub seal: Option<Seal>,
    index: OnceLock<HashMap<String, usize>>,
    ids: OnceLock<Bytes>,
}

impl Version {
    /// The version of `g`'s committed state, in the hot form `hot`.
    fn new(g: &Gallery, hot: HotGallery) -> Self {
        let templates = hot.templates();
        Self {
            number: g.version(),
            hot,
            templates,
            chunks: Arc::new(g.chunk_seals().to_vec()),
            seal: g.manifest().seal.clone(),
            index: OnceLock::new(),
            ids: OnceLock::new(),
        }
    }

    /// This version's [`IdTable`].
    pub fn table(&self) -> IdTable {
        IdTable {
            version: self.number,
            slot_ids: self.hot.slot_ids().clone(),
            chunks: self.chunks.clone(),
            seal: self.seal.clone(),
        }
    }

    /// Global slot of a live id (the index is built on first use, once per version).
    pub fn slot_of(&self, id: &str) -> Option<usize> {
        self.index
            .get_or_init(|| {
                self.hot.slot_ids().iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (s.clone(), i))).collect()
            })
            .get(id)
            .copied()
    }

    /// The encoded [`IdTable`] of this version (encoded once; each answer shares the bytes).
    pub fn id_table(&self) -> Bytes {
        self.ids.get_or_init(|| Bytes::from(self.table().to_bytes())).clone()
    }
}

/// How opening the gallery went (logged at start-up).
#[derive(Debug, Clone)]
pub struct OpenReport {
    /// Seconds from opening the directory to a servable hot form.
    pub seconds: f64,
    /// Segments mapped from their hot-form cache.
    pub mapped: usize,
    /// Segments whose hot form was built (and cached).
    pub built: usize,
    /// The scoring kernel and the CPU features it was chosen from.
    pub kernel: String,
}

/// The gallery a server holds: its versions and its writer.
#[derive(Debug)]
pub struct Held {
    ctx: ServerContext,
    quantizer: Quantizer,
    current: RwLock<Arc<Version>>,
    recent: Mutex<VecDeque<Arc<Version>>>,
    writer: Mutex<Gallery>,
}

impl Held {
    /// Opens the dimension-wise gallery in `dir` for serving: takes its writer lock for the
    /// server's life (the server is then its only writer; `hers enroll` waits or fails naming
    /// the server's pid) and loads the hot form through its cache.
    pub fn open(dir: &Path, simd: Simd) -> Result<(Self, OpenReport)> {
        let t = Instant::now();
        let mut gallery = Gallery::open(dir)?;
        if gallery.layout() != Layout::DimensionWise {
            return Err(Error::Config(format!(
                "{} is a coefficient-layout gallery: serve it with --fine-gallery beside a dimension-wise --gallery",
                dir.display()
            )));
        }
        gallery.lock_for_writing(LockWait::NoWait, |_| {})?;
        let ctx = ServerContext::for_gallery_with(&gallery, simd)?;
        let (hot, report) = ctx.load_hot_cached(&gallery, true)?;
        if let Some(e) = &report.write_error {
            tracing::warn!("hot-form cache not written: {e}");
        }
        let version = Arc::new(Version::new(&gallery, hot));
        let held = Self {
            ctx,
            quantizer: gallery.quantizer(),
            current: RwLock::new(version.clone()),
            recent: Mutex::new(VecDeque::from([version])),
            writer: Mutex::new(gallery),
        };
        let report = OpenReport {
            seconds: t.elapsed().as_secs_f64(),
            mapped: report.mapped,
            built: report.built,
            kernel: format!("{:?} kernel; {}", held.ctx.kernel(), held.ctx.simd().describe()),
        };
        Ok((held, report))
    }

    /// The scoring context (public material only).
    pub fn ctx(&self) -> &ServerContext {
        &self.ctx
    }

    /// The gallery's quantiser (dimension, scale, metric).
    pub fn quantizer(&self) -> Quantizer {
        self.quantizer
    }

    /// The version queries accepted now are scored on.
    pub fn current(&self) -> Arc<Version> {
        self.current.read().map(|v| v.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// A recent version by number (`None` once it is no longer kept).
    pub fn version(&self, number: u64) -> Option<Arc<Version>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().find(|v| v.number == number).cloned()
    }

    /// Ids removed from this gallery (never reusable: with the live ids of [`Held::current`],
    /// every id it ever enrolled, which a cluster's duplicate check needs).
    pub fn removed_ids(&self) -> Vec<String> {
        let g = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        g.manifest().removed.iter().cloned().collect()
    }

    /// Appends client-encrypted templates as one segment; returns the version that holds them,
    /// already current. Blocks (disk and hot-form preparation): call off the async runtime.
    pub fn enrol(&self, e: &Enrolment) -> Result<Arc<Version>> {
        let mut g = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        g.append_sealed(&e.key_id, &e.ids, &e.chunks, None, e.seal.clone())?;
        self.publish(&g)
    }

    /// Tombstones ids (with the key holder's `seal` of the state without them, which a sealed
    /// gallery requires); returns how many and the version without them, already current.
    pub fn remove(&self, ids: &[String], seal: Option<Seal>) -> Result<(usize, Arc<Version>)> {
        let mut g = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let n = g.remove_sealed(ids, seal)?;
        Ok((n, self.publish(&g)?))
    }

    /// Builds the next version from the current one and `g`'s committed state and swaps it in
    /// (called under the writer, so versions follow commits in order).
    fn publish(&self, g: &Gallery) -> Result<Arc<Version>> {
        let mut hot = self.current().hot.clone();
        let report = self.ctx.refresh_hot(&mut hot, g, true)?;
        if let Some(e) = &report.write_error {
            tracing::warn!("hot-form cache not written: {e}");
        }
        let next = Arc::new(Version::new(g, hot));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(next.clone());
        while recent.len() > KEEP_VERSIONS {
            recent.pop_front();
        }
        Ok(next)
    }
}

/// The full-dimension gallery of a two-stage search, served read-only.
#[derive(Debug)]
pub struct Fine {
    /// The gallery (coefficient layout), memory-mapped.
    pub gallery: Gallery,
    /// Its scoring context.
    pub ctx: ServerContext,
}

impl Fine {
    /// Opens a coefficient-layout gallery for the second stage.
    pub fn open(dir: &Path, simd: Simd) -> Result<Self> {
        let gallery = Gallery::open(dir)?;
        if gallery.layout() != Layout::Coefficient {
            return Err(Error::Config(format!(
                "--fine-gallery {} is not a coefficient-layout gallery; enrol the full-dimension set with \
                 `hers enroll --layout coefficient`",
                dir.display()
            )));
        }
        let ctx = ServerContext::for_gallery_with(&gallery, simd)?;
        Ok(Self { gallery, ctx })
    }
}
