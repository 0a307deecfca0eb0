//! `hers.Reducer`: a trained reduction (a model folder written by `hers train`) projecting
//! embeddings to the 16/32/64 dimensions a gallery holds — the projection `hers project` makes.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use dimred::Backend;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;

use crate::{arrays, errors};

/// A trained dimensionality reduction.
#[pyclass(module = "hers", frozen)]
pub struct Reducer {
    /// Boxed: the model holds 64-byte-aligned buffers, more than a Python object's alignment.
    inner: Mutex<Box<dimred::Reducer>>,
    method: String,
    input_dim: usize,
    output_dims: Vec<usize>,
    default_dim: usize,
}

#[pymethods]
impl Reducer {
    /// Loads the model folder `directory` (written by `hers train`); `backend` "cpu" (default)
    /// or "wgpu" (a build with the wgpu feature and a GPU).
    #[staticmethod]
    #[pyo3(signature = (directory, backend = "cpu"))]
    fn load(py: Python<'_>, directory: PathBuf, backend: &str) -> PyResult<Self> {
        let backend: Backend = backend.parse().map_err(errors::reduction)?;
        if !directory.is_dir() {
            return Err(errors::missing(format!(
                "{} is not a model folder (written by hers train)",
                directory.display()
            )));
        }
        let (r, _, meta) = py.detach(|| dimred::Reducer::load(&directory, Some(backend))).map_err(errors::reduction)?;
        Ok(Self {
            method: meta.method.to_string(),
            input_dim: r.input_dim(),
            output_dims: r.output_dims(),
            default_dim: r.default_dim(),
            inner: Mutex::new(Box::new(r)),
        })
    }

    /// Projects `embeddings` (n × input_dim, float32 or float64) to `dim` dimensions (one of
    /// `output_dims`; default the smallest): an n × dim float32 array, rows unit-norm.
    #[pyo3(signature = (embeddings, dim = None))]
    fn project<'py>(
        &self,
        py: Python<'py>,
        embeddings: &Bound<'py, PyAny>,
        dim: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = arrays::rows("embeddings", embeddings)?;
        if rows.dim != self.input_dim {
            return Err(errors::reduction(dimred::Error::InputDim {
                context: "embeddings".into(),
                expected: self.input_dim,
                found: rows.dim,
            }));
        }
        let dim = dim.unwrap_or(self.default_dim);
        let out = py
            .detach(|| self.inner.lock().unwrap_or_else(PoisonError::into_inner).project(&rows.data, dim))
            .map_err(errors::reduction)?;
        Ok(PyArray1::from_vec(py, out).reshape([rows.n, dim])?.into_any())
    }

    /// The method: "supcon", "deepmds", "pca", ….
    #[getter]
    fn method(&self) -> String {
        self.method.clone()
    }

    /// Dimension of the embeddings it takes.
    #[getter]
    fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Dimensions it projects to.
    #[getter]
    fn output_dims(&self) -> Vec<usize> {
        self.output_dims.clone()
    }

    fn __repr__(&self) -> String {
        format!("Reducer(method={:?}, input_dim={}, output_dims={:?})", self.method, self.input_dim, self.output_dims)
    }
}
