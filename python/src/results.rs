//! Search results handed to Python (`hers.SearchResult`: n × k arrays of ids, integer scores
//! and similarities, per-step timings) and the Ctrl-C check long calls make between steps.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use encsearch::{Match, session::Timings};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Matches gathered from one or more searches, with their summed timings.
#[derive(Default)]
pub struct Found {
    /// Every probe's matches, best first.
    pub matches: Vec<Match>,
    timings: Timings,
    /// Extra figures for `SearchResult.timings` (e.g. bytes moved by a service search).
    extra: Vec<(&'static str, f64)>,
}

impl Found {
    /// Adds one search's matches and timings.
    pub fn add(&mut self, matches: Vec<Match>, timings: Timings) {
        self.matches.extend(matches);
        self.timings += timings;
    }

    /// Adds a figure reported with the timings.
    pub fn note(&mut self, name: &'static str, value: f64) {
        self.extra.push((name, value));
    }

    /// A `hers.SearchResult` of `probe_ids` (rows, in that order) × `k` columns; a probe with
    /// fewer than `k` matches (a gallery smaller than `k`) is padded with id "", score 0 and
    /// similarity NaN.
    pub fn into_python<'py>(self, py: Python<'py>, probe_ids: &[String], k: usize) -> PyResult<Bound<'py, PyAny>> {
        let row_of: HashMap<&str, usize> = probe_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let n = probe_ids.len();
        let mut ids = vec![vec![String::new(); k]; n];
        let mut scores = vec![0i64; n * k];
        let mut sims = vec![f64::NAN; n * k];
        for m in &self.matches {
            let (Some(&r), c) = (row_of.get(m.probe_id.as_str()), m.rank.saturating_sub(1)) else { continue };
            if c < k {
                ids[r][c] = m.gallery_id.clone();
                scores[r * k + c] = m.score;
                sims[r * k + c] = m.similarity;
            }
        }
        let timings = PyDict::new(py);
        timings.set_item("encrypt", self.timings.encrypt)?;
        timings.set_item("score", self.timings.score)?;
        timings.set_item("decrypt", self.timings.decrypt)?;
        for (name, value) in self.extra {
            timings.set_item(name, value)?;
        }
        let scores = PyArray1::from_vec(py, scores).reshape([n, k])?;
        let sims = PyArray1::from_vec(py, sims).reshape([n, k])?;
        let class = py.import("hers.results")?.getattr("SearchResult")?;
        class.call1((probe_ids.to_vec(), ids, scores, sims, timings))
    }
}

/// Ctrl-C between the steps of a long call made without the GIL: [`Interrupt::check`] runs
/// Python's signal handlers, and a `KeyboardInterrupt` they raise stops the call and is
/// raised in place of the error the stop causes.
#[derive(Default)]
pub struct Interrupt(Mutex<Option<PyErr>>);

impl Interrupt {
    /// Runs pending signal handlers, then `progress(done)` when given; an exception either
    /// raises becomes [`encsearch::Error::Interrupted`].
    pub fn check(&self, done: usize, progress: Option<&Py<PyAny>>) -> encsearch::Result<()> {
        let checked = Python::attach(|py| {
            py.check_signals()?;
            progress.map_or(Ok(()), |f| f.call1(py, (done,)).map(drop))
        });
        match checked {
            Ok(()) => Ok(()),
            Err(e) => {
                *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                Err(encsearch::Error::Interrupted { done })
            }
        }
    }

    /// The exception a signal handler raised, or `e`.
    pub fn or(&self, e: PyErr) -> PyErr {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or(e)
    }
}
