//! Import of the `.npy` feature files the original HERS code used.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use ndarray_npy::read_npy;

use crate::{EmbeddingSet, Error, Ids, Result, write_set};

/// What to import: features (`N×D`, or `D×N` when `dimension_major`), labels, optional ids.
#[derive(Debug, Clone)]
pub struct NpyImport {
    /// float32 (or float64) feature matrix.
    pub features: PathBuf,
    /// Integer labels, one per template.
    pub labels: PathBuf,
    /// Integer ids, one per template; row numbers when absent.
    pub ids: Option<PathBuf>,
    /// The feature file is `D×N` (one row per dimension), as HERS stored packed galleries.
    pub dimension_major: bool,
}

fn npy_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Npy { path: path.to_path_buf(), message: message.into() }
}

fn read_matrix(path: &Path) -> Result<Array2<f32>> {
    match read_npy::<_, Array2<f32>>(path) {
        Ok(a) => Ok(a),
        Err(first) => read_npy::<_, Array2<f64>>(path).map(|a| a.mapv(|x| x as f32)).map_err(|_| {
            npy_err(path, format!("cannot read a 2-D float32/float64 array ({first}); save it with numpy.save(path, features.astype('float32'))"))
        }),
    }
}

fn read_ints(path: &Path, what: &str) -> Result<Vec<i64>> {
    if let Ok(a) = read_npy::<_, Array1<i64>>(path) {
        return Ok(a.to_vec());
    }
    if let Ok(a) = read_npy::<_, Array1<i32>>(path) {
        return Ok(a.iter().map(|&x| x as i64).collect());
    }
    if let Ok(a) = read_npy::<_, Array1<u32>>(path) {
        return Ok(a.iter().map(|&x| x as i64).collect());
    }
    match read_npy::<_, Array1<u64>>(path) {
        Ok(a) => Ok(a.iter().map(|&x| x as i64).collect()),
        Err(e) => Err(npy_err(
            path,
            format!(
                "cannot read the {what} as a 1-D integer array ({e}); save them with numpy.save(path, {what}.astype('int64'))"
            ),
        )),
    }
}

impl NpyImport {
    /// Reads and validates the files into an [`EmbeddingSet`].
    pub fn load(&self) -> Result<EmbeddingSet> {
        if !self.features.exists() {
            return Err(Error::io(&self.features, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        let mut m = read_matrix(&self.features)?;
        if self.dimension_major {
            m = m.reversed_axes();
        }
        let (n, dim) = m.dim();
        if n == 0 || dim == 0 {
            return Err(Error::Empty { path: self.features.clone() });
        }
        let data: Vec<f32> = m.iter().copied().collect();
        let labels = read_ints(&self.labels, "labels")?;
        if labels.len() != n {
            let hint = if labels.len() == dim && !self.dimension_major {
                "; the features look dimension-major (D×N): pass --dimension-major"
            } else {
                ""
            };
            return Err(npy_err(&self.labels, format!("{} labels for {} feature rows{hint}", labels.len(), n)));
        }
        let ids = match &self.ids {
            Some(p) => {
                let v = read_ints(p, "ids")?;
                if v.len() != n {
                    return Err(npy_err(p, format!("{} ids for {} feature rows", v.len(), n)));
                }
                v
            }
            None => (0..n as i64).collect(),
        };
        let set = EmbeddingSet { ids: Ids::Int(ids), labels, dim, data, extra: Vec::new() };
        if let Some((row, d, v)) = set.first_non_finite() {
            return Err(Error::NonFinite {
                path: self.features.clone(),
                row,
                id: set.ids.display(row),
                dim: d,
                value: v.to_string(),
            });
        }
        if let Some((id, first_row, row)) = set.ids.first_duplicate() {
            let path = self.ids.clone().unwrap_or_else(|| self.features.clone());
            return Err(Error::DuplicateId { path, id, first_row, row });
        }
        Ok(set)
    }
}

/// Imports `.npy` files into an embedding-set parquet file at `out`; returns the set's shape.
pub fn import_npy(spec: &NpyImport, out: impl AsRef<Path>) -> Result<(usize, usize)> {
    let set = spec.load()?;
    write_set(out, &set)?;
    Ok((set.len(), set.dim))
}
