//! `hers.Gallery`: an encrypted gallery on disk — the same directory the CLI uses, written
//! under the same writer lock — searched in this process with both roles together (the key
//! holder encrypts and decrypts, the server part scores).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use encsearch::{
    Client, Enroller, Layout, Metric, Quantizer, Rows, ServerContext, Session, Simd,
    hot::HotGallery,
    store::{LockWait, MANIFEST_FILE, check_gallery, fingerprint_rows},
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::keys::Keys;
use crate::results::{self, Interrupt};
use crate::{arrays, errors};

/// Probes encrypted and scored together; Ctrl-C is noticed between such batches.
const PROBES_PER_BATCH: usize = 64;

/// An open gallery with the key holder's client and the server's scoring context.
struct Open {
    gallery: encsearch::Gallery,
    client: Client,
    server: ServerContext,
    /// The hot form searches score, loaded on the first search after a change.
    hot: Option<HotGallery>,
}

/// An encrypted gallery directory, opened with the keys it was enrolled under.
///
/// Enrol numpy rows into it, remove ids, check it, and search it with probes — all in this
/// process. The directory is the one `hers enroll`, `hers search` and `hers serve` use.
#[pyclass(module = "hers")]
pub struct Gallery {
    dir: PathBuf,
    /// Boxed, so the Python object needs no more than a pointer's alignment whatever `Open` holds.
    open: Mutex<Box<Open>>,
}

impl Gallery {
    fn with_open<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Open) -> T + Send) -> T {
        py.detach(|| f(&mut self.open.lock().unwrap_or_else(PoisonError::into_inner)))
    }

    fn from_gallery(gallery: encsearch::Gallery, keys: &Keys) -> PyResult<Self> {
        let keys = keys.load_keys()?;
        gallery.manifest().public.key_id.ensure_eq(keys.key_id()).map_err(errors::search)?;
        let client = Client::with_quantizer(keys, gallery.quantizer()).map_err(errors::search)?;
        let server = ServerContext::for_gallery_with(&gallery, Simd::detect()).map_err(errors::search)?;
        Ok(Self {
            dir: gallery.dir().to_path_buf(),
            open: Mutex::new(Box::new(Open { gallery, client, server, hot: None })),
        })
    }
}

#[pymethods]
impl Gallery {
    /// Creates an empty gallery in `directory` for `dim`-dimensional embeddings under `keys`.
    ///
    /// `metric` is "cosine" (embeddings are L2-normalised) or "euclidean" (squared distance of
    /// raw embeddings of norm at most `max_norm`); `scale` the quantisation scale (default: the
    /// largest the plaintext modulus allows); `layout` "dimension-wise" (a 1:N gallery) or
    /// "coefficient" (the full-dimension gallery of a two-stage search).
    #[staticmethod]
    #[pyo3(signature = (directory, keys, dim, *, metric = "cosine", scale = None, max_norm = 1.0, layout = "dimension-wise"))]
    fn create(
        directory: PathBuf,
        keys: &Keys,
        dim: usize,
        metric: &str,
        scale: Option<u32>,
        max_norm: f64,
        layout: &str,
    ) -> PyResult<Self> {
        if directory.join(MANIFEST_FILE).exists() {
            return Err(errors::input(format!(
                "{} holds a gallery already; open it with Gallery.open",
                directory.display()
            )));
        }
        let layout = match layout {
            "dimension-wise" => Layout::DimensionWise,
            "coefficient" => Layout::Coefficient,
            other => {
                return Err(errors::input(format!("layout {other:?}: use \"dimension-wise\" or \"coefficient\"")));
            }
        };
        let client_keys = keys.load_keys()?;
        let metric = Metric::from_name(metric).map_err(errors::search)?;
        let q = Quantizer::for_metric(&client_keys.public().params, dim, metric, scale, max_norm)
            .map_err(errors::search)?;
        let g = encsearch::Gallery::create_with_layout(&directory, client_keys.public(), q, layout)
            .map_err(errors::search)?;
        Self::from_gallery(g, keys)
    }

    /// Opens the gallery in `directory`, checking that `keys` enrolled it.
    #[staticmethod]
    fn open(directory: PathBuf, keys: &Keys) -> PyResult<Self> {
        if !directory.join(MANIFEST_FILE).exists() {
            return Err(errors::missing(format!(
                "{} holds no gallery (no {MANIFEST_FILE}); create one with Gallery.create or hers enroll",
                directory.display()
            )));
        }
        let g = encsearch::Gallery::open(&directory).map_err(errors::search)?;
        Self::from_gallery(g, keys)
    }

    /// Encrypts `embeddings` (n × d, float32 or float64) and enrols them under `ids` (n
    /// strings or integers), one committed segment of `chunks_per_segment` chunks at a time.
    ///
    /// Every row is checked first (dimension, NaN or infinity, ids unique and not already in
    /// the gallery): a bad input stores nothing. Ctrl-C stops between segments, keeping those
    /// committed; `resume=True` with the same rows then enrols the rest. `progress(rows)`, when
    /// given, is called after each committed segment with the rows committed so far (an
    /// exception it raises stops the enrolment the same way). Returns
    /// `{"enrolled": n, "held": rows skipped as already enrolled}`.
    #[pyo3(signature = (ids, embeddings, *, resume = false, chunks_per_segment = 32, progress = None))]
    fn enrol<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        embeddings: &Bound<'py, PyAny>,
        resume: bool,
        chunks_per_segment: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = arrays::ids("ids", ids)?;
        let rows = arrays::rows("embeddings", embeddings)?;
        if rows.n != ids.len() {
            return Err(errors::input(format!("{} ids for {} rows of embeddings", ids.len(), rows.n)));
        }
        let interrupt = Interrupt::default();
        let report = self
            .with_open(py, |o| {
                let checked = Rows::new("the rows to enrol", &ids, &rows.data, rows.dim)?;
                let source = fingerprint_rows(&ids, &rows.data);
                let mut enroller = Enroller::new(&mut o.gallery, &o.client, chunks_per_segment, &source)?;
                let plan = enroller.plan(&checked, resume)?;
                let mut done = 0;
                let report = enroller.enrol_planned(&checked, &plan, &mut rand::rng(), |n| {
                    done += n;
                    interrupt.check(done, progress.as_ref())
                });
                o.hot = None;
                report
            })
            .map_err(|e| interrupt.or(errors::search(e)))?;
        let d = PyDict::new(py);
        d.set_item("enrolled", report.enrolled)?;
        d.set_item("held", report.held)?;
        Ok(d)
    }

    /// Removes `ids` (sealed with the keys); returns how many were removed. Their slots are
    /// tombstoned at once: no later search returns them.
    fn remove(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = arrays::ids("ids", ids)?;
        self.with_open(py, |o| {
            let expect = encsearch::seal::Expect { key_id: o.client.keys().key_id(), quantizer: o.client.quantizer() };
            let seal =
                o.client.keys().seal_key()?.seal_remove(&o.gallery.id_table(), expect, &ids, &mut rand::rng())?;
            let n = o.gallery.remove_sealed(&ids, Some(seal))?;
            o.hot = None;
            Ok(n)
        })
        .map_err(errors::search)
    }

    /// Searches `probes` (n × d, or one d-vector): the `k` best matches of each, decrypted and
    /// ranked by the key holder. `probe_ids` default to "0", "1", ….
    #[pyo3(signature = (probes, k = 10, *, probe_ids = None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        probes: &Bound<'py, PyAny>,
        k: usize,
        probe_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, ids) = arrays::probes(probes, probe_ids, k)?;
        let interrupt = Interrupt::default();
        let found = self
            .with_open(py, |o| -> encsearch::Result<results::Found> {
                if rows.dim != o.gallery.manifest().dim {
                    return Err(encsearch::Error::DimensionMismatch {
                        expected: o.gallery.manifest().dim,
                        actual: rows.dim,
                    });
                }
                if o.hot.is_none() {
                    o.hot = Some(o.server.load_hot_cached(&o.gallery, true)?.0);
                }
                let (server, hot) = (&o.server, o.hot.as_ref());
                let session = Session::new(&o.client);
                let mut found = results::Found::default();
                for (b, part) in ids.chunks(PROBES_PER_BATCH).enumerate() {
                    let at = b * PROBES_PER_BATCH * rows.dim;
                    let data = &rows.data[at..at + part.len() * rows.dim];
                    let s = session.search(part.to_vec(), data, k, &mut rand::rng(), |q| match hot {
                        Some(h) => server.score(q, h),
                        None => server.score(q, &o.gallery),
                    })?;
                    found.add(s.matches, s.timings);
                    interrupt.check(found.matches.len(), None)?;
                }
                Ok(found)
            })
            .map_err(|e| interrupt.or(errors::search(e)))?;
        found.into_python(py, &ids, k)
    }

    /// Checks every committed segment against the manifest's checksums; returns
    /// `{"sound": bool, "segments": n, "templates": n, "problems": [..], "unlisted": [..]}`.
    fn check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dir = self.dir.clone();
        let r = py.detach(|| check_gallery(&dir, false, LockWait::Wait, |_| {})).map_err(errors::search)?;
        let d = PyDict::new(py);
        d.set_item("sound", r.is_sound())?;
        d.set_item("segments", r.segments)?;
        d.set_item("templates", r.templates)?;
        d.set_item("problems", r.problems)?;
        d.set_item("unlisted", r.unlisted)?;
        Ok(d)
    }

    /// Reads again what other writers (another process, the CLI) committed since this gallery
    /// was opened.
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let dir = self.dir.clone();
        self.with_open(py, |o| {
            o.gallery = encsearch::Gallery::open(&dir)?;
            o.hot = None;
            Ok(())
        })
        .map_err(errors::search)
    }

    /// Templates in the gallery (removed ones excluded).
    fn __len__(&self, py: Python<'_>) -> usize {
        self.with_open(py, |o| o.gallery.len())
    }

    /// Dimension of the embeddings the gallery holds.
    #[getter]
    fn dim(&self, py: Python<'_>) -> usize {
        self.with_open(py, |o| o.gallery.manifest().dim)
    }

    /// Quantisation scale s: each component becomes round(s·x), scores are integers.
    #[getter]
    fn scale(&self, py: Python<'_>) -> u32 {
        self.with_open(py, |o| o.gallery.quantizer().scale)
    }

    /// The matching function: "cosine" or "euclidean" (squared distance).
    #[getter]
    fn metric(&self, py: Python<'_>) -> &'static str {
        match self.with_open(py, |o| o.gallery.quantizer().metric) {
            Metric::Cosine => "cosine",
            Metric::SquaredEuclidean => "euclidean",
        }
    }

    /// The gallery directory.
    #[getter]
    fn directory(&self) -> PathBuf {
        self.dir.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (n, d) = self.with_open(py, |o| (o.gallery.len(), o.gallery.manifest().dim));
        format!("Gallery({:?}, templates={n}, dim={d})", self.dir.display().to_string())
    }
}
