//! `hers.Client`: the key holder's connection to a `hers serve` server or a `hers cluster`
//! front door — the service's client library ([`service::Connection`]): within the server's
//! stated limits, retrying what is retryable, checking every answer against the key holder's
//! seal, decrypting answers as they stream.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use service::{ConnectOptions, Connection, EnrolOptions};

use crate::keys::Keys;
use crate::results::Found;
use crate::{arrays, errors};

/// A connection to a hers server with the key holder's keys. Probes, scores and templates
/// cross the network encrypted; only this process decrypts.
#[pyclass(module = "hers", frozen)]
pub struct Client {
    /// Boxed, so the Python object needs no more than a pointer's alignment.
    conn: Box<Connection>,
    url: String,
}

#[pymethods]
impl Client {
    /// Connects to `url` (http:// or https://) with `keys`, reading the server's configuration.
    ///
    /// `token`: bearer token for enrolment and removal; `read_token`: for searches, when the
    /// server demands one; `ca_file`: PEM certificate(s) to trust for https:// instead of the
    /// web roots (a private CA or a self-signed server); `timeout`: seconds per request.
    #[new]
    #[allow(clippy::too_many_arguments, reason = "Python keyword arguments")]
    #[pyo3(signature = (url, keys, *, token = None, read_token = None, ca_file = None, timeout = 600.0, compact = true))]
    fn new(
        py: Python<'_>,
        url: &str,
        keys: &Keys,
        token: Option<String>,
        read_token: Option<String>,
        ca_file: Option<PathBuf>,
        timeout: f64,
        compact: bool,
    ) -> PyResult<Self> {
        let keys = keys.load_keys()?;
        let ca_pem = match ca_file {
            Some(p) => Some(
                std::fs::read(&p).map_err(|e| errors::service(service::Error::Io { path: p.clone(), source: e }))?,
            ),
            None => None,
        };
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(errors::input(format!("timeout {timeout}: give a positive number of seconds")));
        }
        let options = ConnectOptions {
            token,
            read_token,
            ca_pem,
            timeout: Duration::from_secs_f64(timeout),
            compact_answers: compact,
            ..ConnectOptions::default()
        };
        let url = url.trim_end_matches('/').to_string();
        let conn = py.detach(|| Connection::connect(&url, keys, options)).map_err(errors::service)?;
        Ok(Self { conn: Box::new(conn), url })
    }

    /// Searches `probes` (n × d, or one d-vector; any number: sent in as many queries as the
    /// server's limits need): the `k` best matches of each. `probe_ids` default to "0", "1", ….
    #[pyo3(signature = (probes, k = 10, *, probe_ids = None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        probes: &Bound<'py, PyAny>,
        k: usize,
        probe_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, ids) = arrays::probes(probes, probe_ids, k)?;
        let f = py.detach(|| self.conn.search(&ids, &rows.data, k)).map_err(errors::service)?;
        let mut found = Found::default();
        found.add(f.matches, f.timings);
        found.note("seconds", f.seconds);
        found.note("bytes_up", f.transfer.up as f64);
        found.note("bytes_down", f.transfer.down as f64);
        found.into_python(py, &ids, k)
    }

    /// 1:1 verification: is `probe` (one d-vector) the template enrolled as `claim`? Returns
    /// `{"accept": bool, "similarity": float}`, accepting at `threshold` (cosine: at or above;
    /// squared distance: at or below). The server learns the claimed id, not the outcome.
    fn verify<'py>(
        &self,
        py: Python<'py>,
        probe: &Bound<'py, PyAny>,
        claim: &Bound<'py, PyAny>,
        threshold: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let rows = arrays::rows("probe", probe)?;
        if rows.n != 1 {
            return Err(errors::input(format!("verify takes one probe, got {}", rows.n)));
        }
        let claim = arrays::ids("claim", pyo3::types::PyList::new(py, [claim])?.as_any())?.remove(0);
        let v = py.detach(|| self.conn.verify("probe", &rows.data, &claim, threshold)).map_err(errors::service)?;
        let d = PyDict::new(py);
        d.set_item("accept", v.accept)?;
        d.set_item("similarity", v.value)?;
        Ok(d)
    }

    /// Encrypts `embeddings` (n × d) and enrols them under `ids` (needs the write `token`).
    /// Each request is durable when acknowledged; `resume=True` sends only the rows the server
    /// lacks (after an interrupted enrolment). Returns
    /// `{"enrolled", "skipped", "templates", "version"}`.
    #[pyo3(signature = (ids, embeddings, *, resume = false))]
    fn enrol<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        embeddings: &Bound<'py, PyAny>,
        resume: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = arrays::ids("ids", ids)?;
        let rows = arrays::rows("embeddings", embeddings)?;
        if rows.n != ids.len() {
            return Err(errors::input(format!("{} ids for {} rows of embeddings", ids.len(), rows.n)));
        }
        let options = EnrolOptions { resume, ..EnrolOptions::default() };
        let e = py.detach(|| self.conn.enrol(&ids, &rows.data, options, |_| {})).map_err(errors::service)?;
        let d = PyDict::new(py);
        d.set_item("enrolled", e.enrolled)?;
        d.set_item("skipped", e.skipped)?;
        d.set_item("templates", e.templates)?;
        d.set_item("version", e.version)?;
        Ok(d)
    }

    /// Removes `ids` (needs the write `token`); returns `{"removed", "templates", "version"}`.
    fn remove<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let ids = arrays::ids("ids", ids)?;
        let ack = py.detach(|| self.conn.remove(&ids)).map_err(errors::service)?;
        let d = PyDict::new(py);
        d.set_item("removed", ack.changed)?;
        d.set_item("templates", ack.templates)?;
        d.set_item("version", ack.version)?;
        Ok(d)
    }

    /// What the server said of itself when this client connected (`GET /v1/config`): its
    /// gallery, parameters and limits.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(self.conn.info()).map_err(|e| errors::input(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The server's URL.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    fn __repr__(&self) -> String {
        format!("Client({:?}, templates={})", self.url, self.conn.info().templates)
    }
}
