//! Python values in, Rust values out: embeddings as n × d arrays (float32 or float64, any
//! layout), ids as strings or integers.

use numpy::{AllowTypeChange, PyArrayLike2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors;

/// Row-major rows of an n × d array of numbers.
pub struct Rows {
    /// The values, row after row.
    pub data: Vec<f32>,
    /// Number of rows.
    pub n: usize,
    /// Values per row.
    pub dim: usize,
}

/// Reads `what` (e.g. "embeddings") as an n × d array of numbers; a 1-D array is one row.
pub fn rows(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Rows> {
    let value = match value.getattr("ndim").and_then(|d| d.extract::<usize>()) {
        Ok(1) => value.call_method1("reshape", (1, -1))?,
        _ => value.clone(),
    };
    let array: PyArrayLike2<'_, f32, AllowTypeChange> = value.extract().map_err(|_| {
        errors::input(format!(
            "{what} must be a 2-D array of numbers (n rows × d dimensions), e.g. a float32 numpy array"
        ))
    })?;
    let [n, dim] = [array.shape()[0], array.shape()[1]];
    let data: Vec<f32> = match array.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => array.as_array().iter().copied().collect(),
    };
    Ok(Rows { data, n, dim })
}

/// Reads `what` as a sequence of ids, each a string or an integer.
pub fn ids(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if value.is_instance_of::<pyo3::types::PyString>() {
        return Err(errors::input(format!("{what} must be a sequence of ids, not one string")));
    }
    let items = value
        .try_iter()
        .map_err(|_| errors::input(format!("{what} must be a sequence of ids (strings or integers)")))?;
    items
        .enumerate()
        .map(|(i, item)| {
            let item = item?;
            if let Ok(s) = item.extract::<String>() {
                return Ok(s);
            }
            if let Ok(v) = item.extract::<i64>() {
                return Ok(v.to_string());
            }
            Err(errors::input(format!(
                "{what}[{i}] is a {}; ids are strings or integers",
                item.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            )))
        })
        .collect()
}

/// The probes of a search and their ids (`probe_ids`, default "0", "1", …), checked: at least
/// one probe, one id per probe, `k` ≥ 1.
pub fn probes(
    probes: &Bound<'_, PyAny>,
    probe_ids: Option<&Bound<'_, PyAny>>,
    k: usize,
) -> PyResult<(Rows, Vec<String>)> {
    let rows = rows("probes", probes)?;
    let ids = match probe_ids {
        Some(ids) => self::ids("probe_ids", ids)?,
        None => (0..rows.n).map(|i| i.to_string()).collect(),
    };
    if ids.len() != rows.n || rows.n == 0 {
        return Err(errors::input(format!("{} probe ids for {} probes (at least one probe)", ids.len(), rows.n)));
    }
    if k == 0 {
        return Err(errors::input("k must be at least 1"));
    }
    Ok((rows, ids))
}
