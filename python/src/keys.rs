//! `hers.Keys`: the key holder's key set, in the directory `hers keygen` writes (`secret.key`
//! readable by its owner only, `public.json` for the server).

use std::path::PathBuf;

use encsearch::{ClientKeys, Preset, keys::SECRET_FILE};
use pyo3::prelude::*;

use crate::errors;

/// A key directory: `secret.key` (mode 0600, never leaves the key holder) and `public.json`
/// (the parameters a server needs). Galleries and connections load the keys from it.
#[pyclass(module = "hers", frozen)]
pub struct Keys {
    directory: PathBuf,
    key_id: String,
    degree: usize,
    plaintext: u64,
}

impl Keys {
    /// The key set, read again from its directory (checked as `hers` checks it: permissions,
    /// checksum, key id).
    pub fn load_keys(&self) -> PyResult<ClientKeys> {
        ClientKeys::load(&self.directory).map_err(errors::search)
    }

    fn describe(directory: PathBuf, keys: &ClientKeys) -> Self {
        let p = &keys.public().params;
        Self { directory, key_id: keys.key_id().0.clone(), degree: p.degree, plaintext: p.plaintext }
    }
}

#[pymethods]
impl Keys {
    /// Generates a key set into `directory` (created if needed), exactly as `hers keygen`:
    /// preset "n4096" (4096 templates per ciphertext) or "n8192". Refuses to overwrite a key
    /// set already there (a gallery enrolled under it would become unreadable).
    #[staticmethod]
    #[pyo3(signature = (directory, preset = "n4096"))]
    fn generate(py: Python<'_>, directory: PathBuf, preset: &str) -> PyResult<Self> {
        if directory.join(SECRET_FILE).exists() {
            return Err(errors::input(format!(
                "{} already holds a key set; load it with Keys.load, or generate into another directory",
                directory.display()
            )));
        }
        let preset = Preset::from_name(preset).map_err(errors::search)?;
        py.detach(|| {
            let keys = ClientKeys::generate(preset.params()?, &mut rand::rng())?;
            keys.save(&directory)?;
            Ok(Self::describe(directory, &keys))
        })
        .map_err(errors::search)
    }

    /// Loads the key set in `directory` (written by `hers keygen` or `Keys.generate`); a
    /// `secret.key` that group or others may read is refused.
    #[staticmethod]
    fn load(directory: PathBuf) -> PyResult<Self> {
        let keys = ClientKeys::load(&directory).map_err(errors::search)?;
        Ok(Self::describe(directory, &keys))
    }

    /// The key directory.
    #[getter]
    fn directory(&self) -> PathBuf {
        self.directory.clone()
    }

    /// The key id every gallery and server enrolled under these keys names.
    #[getter]
    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    /// Ring degree N: templates per ciphertext.
    #[getter]
    fn degree(&self) -> usize {
        self.degree
    }

    /// Plaintext modulus t.
    #[getter]
    fn plaintext(&self) -> u64 {
        self.plaintext
    }

    fn __repr__(&self) -> String {
        format!(
            "Keys({:?}, key_id={:?}, N={}, t={})",
            self.directory.display().to_string(),
            self.key_id,
            self.degree,
            self.plaintext
        )
    }
}
