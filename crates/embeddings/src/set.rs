//! An embedding set in memory: ids, labels, a row-major matrix and any extra columns.

use std::collections::HashMap;

use arrow::array::ArrayRef;
use arrow::datatypes::FieldRef;

use crate::{Error, Result};

/// The ids of a set: all integers or all strings, as in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Ids {
    /// int64 ids.
    Int(Vec<i64>),
    /// utf8 ids.
    Str(Vec<String>),
}

impl Ids {
    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            Ids::Int(v) => v.len(),
            Ids::Str(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th id as text (for messages and string-keyed maps).
    pub fn display(&self, i: usize) -> String {
        match self {
            Ids::Int(v) => v[i].to_string(),
            Ids::Str(v) => v[i].clone(),
        }
    }

    /// The ids at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Ids {
        match self {
            Ids::Int(v) => Ids::Int(rows.iter().map(|&r| v[r]).collect()),
            Ids::Str(v) => Ids::Str(rows.iter().map(|&r| v[r].clone()).collect()),
        }
    }

    /// Appends `other`; both must be of the same kind.
    pub fn extend(&mut self, other: &Ids) -> Result<()> {
        match (self, other) {
            (Ids::Int(a), Ids::Int(b)) => a.extend_from_slice(b),
            (Ids::Str(a), Ids::Str(b)) => a.extend_from_slice(b),
            _ => return Err(Error::Invalid("cannot mix integer and string ids in one set".into())),
        }
        Ok(())
    }

    /// The first repeated id, as `(id, first index, repeating index)`.
    pub fn first_duplicate(&self) -> Option<(String, usize, usize)> {
        fn find<T: std::hash::Hash + Eq>(v: &[T]) -> Option<(usize, usize)> {
            let mut seen = HashMap::with_capacity(v.len());
            for (i, x) in v.iter().enumerate() {
                if let Some(&f) = seen.get(x) {
                    return Some((f, i));
                }
                seen.insert(x, i);
            }
            None
        }
        let (f, i) = match self {
            Ids::Int(v) => find(v)?,
            Ids::Str(v) => find(v)?,
        };
        Some((self.display(i), f, i))
    }
}

/// Embeddings with their ids and labels; also used for one streamed batch of a file.
///
/// `data` is row-major, `len() × dim` values. `extra` holds the file's other columns (e.g.
/// `source`, `split`) so that tools that rewrite a set (projection) can carry them along.
#[derive(Debug, Clone)]
pub struct EmbeddingSet {
    /// One id per row.
    pub ids: Ids,
    /// One identity / class label per row.
    pub labels: Vec<i64>,
    /// The embedding dimension.
    pub dim: usize,
    /// Row-major embeddings.
    pub data: Vec<f32>,
    /// Extra columns, each with `len()` rows.
    pub extra: Vec<(FieldRef, ArrayRef)>,
}

impl EmbeddingSet {
    /// Builds a set with no extra columns, checking lengths, finiteness and unique ids.
    pub fn new(ids: Ids, labels: Vec<i64>, dim: usize, data: Vec<f32>) -> Result<Self> {
        let set = EmbeddingSet { ids, labels, dim, data, extra: Vec::new() };
        set.validate()?;
        Ok(set)
    }

    /// Checks the invariants [`EmbeddingSet::new`] promises.
    pub fn validate(&self) -> Result<()> {
        let n = self.ids.len();
        if self.dim == 0 {
            return Err(Error::Invalid("embedding dimension must be at least 1".into()));
        }
        if self.labels.len() != n || self.data.len() != n * self.dim {
            return Err(Error::Invalid(format!(
                "inconsistent set: {} ids, {} labels, {} values for dimension {}",
                n,
                self.labels.len(),
                self.data.len(),
                self.dim
            )));
        }
        if let Some((row, d, v)) = self.first_non_finite() {
            return Err(Error::Invalid(format!(
                "row {row} (id {}) has a non-finite value ({v}) at dimension {d}",
                self.ids.display(row)
            )));
        }
        if let Some((id, f, i)) = self.ids.first_duplicate() {
            return Err(Error::Invalid(format!("id {id} appears twice (rows {f} and {i})")));
        }
        Ok(())
    }

    /// `(row, dimension, value)` of the first NaN or infinity.
    pub fn first_non_finite(&self) -> Option<(usize, usize, f32)> {
        let i = self.data.iter().position(|x| !x.is_finite())?;
        Some((i / self.dim, i % self.dim, self.data[i]))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The embedding of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `rows`, in that order (extra columns included).
    pub fn take(&self, rows: &[usize]) -> EmbeddingSet {
        let mut data = Vec::with_capacity(rows.len() * self.dim);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        let idx = arrow::array::UInt64Array::from_iter_values(rows.iter().map(|&r| r as u64));
        let extra = self
            .extra
            .iter()
            .map(|(f, a)| {
                // `take` only fails on out-of-range indices, which `self.row` above rules out.
                let taken = arrow::compute::take(a.as_ref(), &idx, None)
                    .unwrap_or_else(|_| arrow::array::new_null_array(a.data_type(), rows.len()));
                (f.clone(), taken)
            })
            .collect();
        EmbeddingSet {
            ids: self.ids.take(rows),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
            dim: self.dim,
            data,
            extra,
        }
    }

    /// Appends the rows of `other` (same dimension, same id kind, same extra columns).
    pub fn append(&mut self, other: &EmbeddingSet) -> Result<()> {
        if other.dim != self.dim {
            return Err(Error::Invalid(format!(
                "cannot append dimension {} rows to a dimension {} set",
                other.dim, self.dim
            )));
        }
        self.ids.extend(&other.ids)?;
        self.labels.extend_from_slice(&other.labels);
        self.data.extend_from_slice(&other.data);
        if self.extra.len() == other.extra.len() {
            for ((_, a), (_, b)) in self.extra.iter_mut().zip(&other.extra) {
                *a = arrow::compute::concat(&[a.as_ref(), b.as_ref()])
                    .map_err(|e| Error::Invalid(format!("extra columns differ: {e}")))?;
            }
        } else {
            return Err(Error::Invalid("cannot append sets with different extra columns".into()));
        }
        Ok(())
    }
}
