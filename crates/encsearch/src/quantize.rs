//! Fixed-point quantisation of embeddings and the packed rows of both matching functions.
//!
//! * Cosine (default): L2-normalise, then `round(s·x)`; a template packs as its `d` components,
//!   a probe likewise, and the score is the integer inner product (≈ `s²·cos`).
//! * Squared Euclidean (features that are not normalised, e.g. dlib's): `round(s·x)` without
//!   normalisation; a template packs as `[x, ‖x‖², 1]` and a probe as `[−2y, 1, ‖y‖²]`, so the
//!   encrypted score is `‖x‖² − 2x·y + ‖y‖² = ‖x − y‖²` exactly, with no client-side state.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::SearchParams;

/// How templates are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Inner product of L2-normalised vectors (higher is closer).
    #[default]
    Cosine,
    /// Squared Euclidean distance of raw vectors (lower is closer).
    SquaredEuclidean,
}

impl Metric {
    /// Parses `cosine` or `euclidean`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" | "squared_euclidean" => Ok(Metric::SquaredEuclidean),
            _ => Err(Error::InvalidArgument { reason: format!("unknown metric {name:?} (cosine, euclidean)") }),
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Metric::Cosine => 0,
            Metric::SquaredEuclidean => 1,
        }
    }

    pub(crate) fn from_code(c: u8) -> Result<Self> {
        match c {
            0 => Ok(Metric::Cosine),
            1 => Ok(Metric::SquaredEuclidean),
            _ => Err(Error::malformed("metric", format!("unknown code {c}"))),
        }
    }
}

/// Quantiser for vectors of one dimension at one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantizer {
    /// Vector dimension d.
    pub dim: usize,
    /// Scale s: a component x becomes `round(s·x)`.
    pub scale: u32,
    /// Matching function.
    #[serde(default)]
    pub metric: Metric,
    /// Plaintext modulus bound: the largest |score| that decrypts exactly, `(t-1)/2`.
    pub max_abs_score: u64,
}

impl Quantizer {
    /// Cosine quantiser at the default scale for `dim` (largest s with d·s² ≤ (t-1)/2).
    pub fn new(params: &SearchParams, dim: usize) -> Result<Self> {
        let scale = params.default_scale(dim)?;
        Self::with_scale(params, dim, scale)
    }

    /// Cosine quantiser at an explicit scale; errors if `dim · scale²` could overflow `t`.
    pub fn with_scale(params: &SearchParams, dim: usize, scale: u32) -> Result<Self> {
        if scale == 0 || dim == 0 {
            return Err(Error::InvalidArgument { reason: "scale and dimension must be positive".into() });
        }
        params.check_capacity(dim, scale)?;
        Ok(Self { dim, scale, metric: Metric::Cosine, max_abs_score: params.max_abs_score() })
    }

    /// The quantiser of a new gallery: `metric` at `scale`, or when `None` the largest scale
    /// that fits the plaintext modulus (for the squared distance, for norms up to `max_norm`).
    pub fn for_metric(
        params: &SearchParams,
        dim: usize,
        metric: Metric,
        scale: Option<u32>,
        max_norm: f64,
    ) -> Result<Self> {
        match (metric, scale) {
            (Metric::Cosine, Some(s)) => Self::with_scale(params, dim, s),
            (Metric::Cosine, None) => Self::new(params, dim),
            (Metric::SquaredEuclidean, Some(s)) => Self::euclidean_with_scale(params, dim, s),
            (Metric::SquaredEuclidean, None) => Self::euclidean(params, dim, max_norm),
        }
    }

    /// Squared-Euclidean quantiser for vectors of norm at most `max_norm`: the largest scale
    /// with `4·(s·max_norm + √d/2)² ≤ (t-1)/2`. Vectors beyond the bound are rejected.
    pub fn euclidean(params: &SearchParams, dim: usize, max_norm: f64) -> Result<Self> {
        if dim == 0 || !(max_norm.is_finite() && max_norm > 0.0) {
            return Err(Error::InvalidArgument { reason: "dimension and max norm must be positive".into() });
        }
        let r = ((params.max_abs_score() as f64) / 4.0).sqrt();
        let s = ((r - (dim as f64).sqrt() / 2.0) / max_norm).floor();
        if s < 1.0 {
            return Err(Error::params(format!("t = {} too small for max norm {max_norm}", params.plaintext)));
        }
        Self::euclidean_with_scale(params, dim, s as u32)
    }

    /// Squared-Euclidean quantiser at an explicit scale.
    pub fn euclidean_with_scale(params: &SearchParams, dim: usize, scale: u32) -> Result<Self> {
        if scale == 0 || dim == 0 {
            return Err(Error::InvalidArgument { reason: "scale and dimension must be positive".into() });
        }
        Ok(Self { dim, scale, metric: Metric::SquaredEuclidean, max_abs_score: params.max_abs_score() })
    }

    /// The range every score of a probe and a template quantised by this quantiser lies in:
    /// for cosine `±min(d·s², (s + √d/2)²)` (components clamped to ±s, norms at most s + √d/2
    /// after rounding), for the squared distance `[0, (t−1)/2]` (norms at most half the
    /// bound). A decrypted score outside it cannot have come from the gallery.
    pub fn score_bounds(&self) -> (i64, i64) {
        let s = f64::from(self.scale);
        match self.metric {
            Metric::Cosine => {
                let by_norm = (s + (self.dim as f64).sqrt() / 2.0).powi(2).floor() as u128;
                let by_components = self.dim as u128 * u128::from(self.scale) * u128::from(self.scale);
                let b = by_norm.min(by_components).min(u128::from(self.max_abs_score)) as i64;
                (-b, b)
            }
            Metric::SquaredEuclidean => (0, self.max_abs_score as i64),
        }
    }

    /// Number of packed rows (ciphertexts per chunk and per probe): `d`, or `d + 2` for the
    /// Euclidean metric.
    pub fn rows(&self) -> usize {
        match self.metric {
            Metric::Cosine => self.dim,
            Metric::SquaredEuclidean => self.dim + 2,
        }
    }

    /// Quantises one vector (row `index` is only used in error messages).
    pub fn quantize(&self, x: &[f32], index: usize) -> Result<Vec<i64>> {
        if x.len() != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, actual: x.len() });
        }
        if let Some(component) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { index, component });
        }
        let s = f64::from(self.scale);
        match self.metric {
            Metric::Cosine => {
                let norm = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
                if norm == 0.0 || !norm.is_finite() {
                    return Err(Error::ZeroNorm { index });
                }
                Ok(x.iter()
                    .map(|&v| {
                        ((s * f64::from(v) / norm).round() as i64).clamp(-i64::from(self.scale), i64::from(self.scale))
                    })
                    .collect())
            }
            Metric::SquaredEuclidean => {
                let q: Vec<i64> = x.iter().map(|&v| (s * f64::from(v)).round() as i64).collect();
                let n2: i128 = q.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
                if n2 > (self.max_abs_score / 4) as i128 {
                    return Err(Error::InvalidArgument {
                        reason: format!("vector {index}: norm too large for scale {} (‖q‖² = {n2})", self.scale),
                    });
                }
                Ok(q)
            }
        }
    }

    /// The packed template row(s) of one vector: `q` (cosine) or `[q, ‖q‖², 1]`.
    pub fn template_row(&self, x: &[f32], index: usize) -> Result<Vec<i64>> {
        let mut q = self.quantize(x, index)?;
        if self.metric == Metric::SquaredEuclidean {
            let n2 = q.iter().map(|v| v * v).sum();
            q.push(n2);
            q.push(1);
        }
        Ok(q)
    }

    /// The packed probe row of one vector: `q` (cosine) or `[−2q, 1, ‖q‖²]`.
    pub fn probe_row(&self, y: &[f32], index: usize) -> Result<Vec<i64>> {
        let q = self.quantize(y, index)?;
        Ok(match self.metric {
            Metric::Cosine => q,
            Metric::SquaredEuclidean => {
                let n2 = q.iter().map(|v| v * v).sum();
                let mut r: Vec<i64> = q.iter().map(|v| -2 * v).collect();
                r.push(1);
                r.push(n2);
                r
            }
        })
    }

    /// Packed template rows of a row-major matrix of `rows.len() / dim` vectors.
    pub fn template_rows(&self, rows: &[f32]) -> Result<Vec<Vec<i64>>> {
        self.map_rows(rows, |x, i| self.template_row(x, i))
    }

    /// Packed probe rows of a row-major matrix.
    pub fn probe_rows(&self, rows: &[f32]) -> Result<Vec<Vec<i64>>> {
        self.map_rows(rows, |x, i| self.probe_row(x, i))
    }

    /// Quantises a row-major matrix (no packing).
    pub fn quantize_rows(&self, rows: &[f32]) -> Result<Vec<Vec<i64>>> {
        self.map_rows(rows, |x, i| self.quantize(x, i))
    }

    fn map_rows(&self, rows: &[f32], f: impl Fn(&[f32], usize) -> Result<Vec<i64>>) -> Result<Vec<Vec<i64>>> {
        if self.dim == 0 || !rows.len().is_multiple_of(self.dim) {
            return Err(Error::DimensionMismatch { expected: self.dim, actual: rows.len() % self.dim.max(1) });
        }
        rows.chunks_exact(self.dim).enumerate().map(|(i, r)| f(r, i)).collect()
    }

    /// Turns an integer score back into the metric's unit (cosine similarity or squared distance).
    pub fn dequantize_score(&self, score: i64) -> f64 {
        score as f64 / (f64::from(self.scale) * f64::from(self.scale))
    }
}

/// Integer inner product (the plaintext reference for encrypted scores).
pub fn int_dot(a: &[i64], b: &[i64]) -> i64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Preset;

    #[test]
    fn quantizes_and_rejects_bad_input() {
        let p = Preset::N4096.params().expect("preset");
        let q = Quantizer::new(&p, 4).expect("q");
        let v = q.quantize(&[3.0, 0.0, -4.0, 0.0], 0).expect("ok");
        let s = q.scale as i64;
        assert_eq!(v, vec![(0.6 * s as f64).round() as i64, 0, (-0.8 * s as f64).round() as i64, 0]);
        assert!(matches!(q.quantize(&[1.0, f32::NAN, 0.0, 0.0], 3), Err(Error::NonFinite { index: 3, component: 1 })));
        assert!(matches!(q.quantize(&[0.0; 4], 0), Err(Error::ZeroNorm { .. })));
        assert!(matches!(q.quantize(&[1.0; 3], 0), Err(Error::DimensionMismatch { expected: 4, actual: 3 })));
        assert!(Quantizer::with_scale(&p, 4, 100_000).is_err());
    }

    #[test]
    fn euclidean_rows_give_squared_distance() {
        let p = Preset::N4096.params().expect("preset");
        let q = Quantizer::euclidean(&p, 3, 2.0).expect("q");
        let (x, y) = ([0.5f32, -1.0, 1.2], [1.5f32, 0.25, -0.3]);
        let (qx, qy) = (q.quantize(&x, 0).expect("x"), q.quantize(&y, 0).expect("y"));
        let d2: i64 = qx.iter().zip(&qy).map(|(a, b)| (a - b) * (a - b)).sum();
        assert_eq!(int_dot(&q.template_row(&x, 0).expect("t"), &q.probe_row(&y, 0).expect("p")), d2);
        assert!(q.quantize(&[3.0, 3.0, 3.0], 0).is_err());
    }
}
