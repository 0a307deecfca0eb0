//! The two packing layouts of templates into plaintexts.
//!
//! * Dimension-wise (the 1:N gallery): SIMD slot k of plaintext j holds `g_k[j]`, so one
//!   ciphertext per dimension covers N templates and the score of template k lands in slot k.
//! * Coefficient (the fine gallery of the two-stage search): template b occupies coefficients
//!   `b·R .. b·R + R` of one plaintext (R packed rows), and a probe `p` is encoded as
//!   `p(x⁻¹) = p0 − Σ_{i≥1} p_i·x^{N−i}` (negacyclic, `x^N = −1`). Coefficient `b·R` of the
//!   product is then exactly `Σ_i g_b[i]·p_i` (the wrapped terms pick up `−1` twice, and
//!   neighbouring blocks cannot reach a block start because `|i − i'| < R`): one
//!   ciphertext–ciphertext product scores ⌊N/R⌋ templates with the sum over dimensions done
//!   under encryption, no rotation keys needed, and the client sees only the scores.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a gallery packs its templates (recorded in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One ciphertext per dimension, N templates per chunk: every template is scored per query.
    #[default]
    DimensionWise,
    /// One ciphertext per chunk holding ⌊N/R⌋ whole templates: cheap to gather a few candidates.
    Coefficient,
}

impl Layout {
    /// Templates one chunk holds, for ring degree `n` and `rows` packed rows per template.
    pub fn templates_per_chunk(self, n: usize, rows: usize) -> usize {
        match self {
            Layout::DimensionWise => n,
            Layout::Coefficient => n / rows.max(1),
        }
    }

    /// Ciphertexts in one chunk (and in one probe).
    pub fn cts_per_chunk(self, rows: usize) -> usize {
        match self {
            Layout::DimensionWise => rows,
            Layout::Coefficient => 1,
        }
    }
}

/// Coefficient layout: packs up to ⌊n/rows⌋ templates into one coefficient vector of length n.
pub(crate) fn pack_coefficients(templates: &[Vec<i64>], rows: usize, n: usize) -> Result<Vec<i64>> {
    if rows == 0 || rows > n || templates.len() > n / rows {
        return Err(Error::InvalidArgument {
            reason: format!("{} templates of {rows} rows do not fit {n} coefficients", templates.len()),
        });
    }
    let mut c = vec![0i64; n];
    for (b, t) in templates.iter().enumerate() {
        if t.len() != rows {
            return Err(Error::DimensionMismatch { expected: rows, actual: t.len() });
        }
        c[b * rows..(b + 1) * rows].copy_from_slice(t);
    }
    Ok(c)
}

/// Coefficient layout: the probe polynomial `p(x⁻¹)` mod `x^n + 1` (see the module docs).
pub(crate) fn pack_probe_coefficients(probe: &[i64], n: usize) -> Result<Vec<i64>> {
    if probe.is_empty() || probe.len() > n {
        return Err(Error::InvalidArgument { reason: format!("probe of {} rows for {n} coefficients", probe.len()) });
    }
    let mut c = vec![0i64; n];
    c[0] = probe[0];
    for (i, &v) in probe.iter().enumerate().skip(1) {
        c[n - i] = -v;
    }
    Ok(c)
}

/// Transposes up to `n` quantised templates (each of length `dim`) into `dim` slot vectors of
/// length `n`; unused slots are 0.
pub(crate) fn pack_chunk(templates: &[Vec<i64>], dim: usize, n: usize) -> Result<Vec<Vec<i64>>> {
    if templates.len() > n {
        return Err(Error::InvalidArgument {
            reason: format!("{} templates do not fit a chunk of {n} slots", templates.len()),
        });
    }
    let mut cols = vec![vec![0i64; n]; dim];
    for (k, t) in templates.iter().enumerate() {
        if t.len() != dim {
            return Err(Error::DimensionMismatch { expected: dim, actual: t.len() });
        }
        for (j, &v) in t.iter().enumerate() {
            cols[j][k] = v;
        }
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Negacyclic product mod x^n + 1, over the integers.
    #[allow(clippy::needless_range_loop, reason = "the exponent arithmetic is the point")]
    fn negacyclic(a: &[i64], b: &[i64]) -> Vec<i64> {
        let n = a.len();
        let mut c = vec![0i64; n];
        for i in 0..n {
            for j in 0..n {
                let (k, sign) = if i + j < n { (i + j, 1) } else { (i + j - n, -1) };
                c[k] += sign * a[i] * b[j];
            }
        }
        c
    }

    #[test]
    fn coefficient_product_holds_every_inner_product() {
        let (n, rows) = (64, 5);
        let mut x = 7i64;
        let mut next = || {
            x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
            x % 41 - 20
        };
        let templates: Vec<Vec<i64>> = (0..n / rows).map(|_| (0..rows).map(|_| next()).collect()).collect();
        let probe: Vec<i64> = (0..rows).map(|_| next()).collect();
        let c = negacyclic(
            &pack_coefficients(&templates, rows, n).expect("fits"),
            &pack_probe_coefficients(&probe, n).expect("fits"),
        );
        for (b, t) in templates.iter().enumerate() {
            let dot: i64 = t.iter().zip(&probe).map(|(a, b)| a * b).sum();
            assert_eq!(c[b * rows], dot, "template {b}");
        }
        assert!(pack_coefficients(&vec![vec![0; rows]; n / rows + 1], rows, n).is_err());
        assert_eq!(Layout::Coefficient.templates_per_chunk(n, rows), 12);
    }

    #[test]
    fn chunk_is_transposed() {
        let c = pack_chunk(&[vec![1, 2], vec![3, 4]], 2, 4).expect("ok");
        assert_eq!(c, vec![vec![1, 3, 0, 0], vec![2, 4, 0, 0]]);
        assert!(pack_chunk(&[vec![1]], 2, 4).is_err());
    }
}
