//! The little dense linear algebra the linear baselines need (f64, row-major).

/// A dense row-major square matrix.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sym {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Sym {
    pub fn zeros(n: usize) -> Self {
        Sym { n, a: vec![0.0; n * n] }
    }

    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }

    /// Adds `w·x xᵀ` to the upper triangle (call [`Sym::mirror`] when done).
    pub fn add_outer_upper(&mut self, x: &[f64], w: f64) {
        let n = self.n;
        for i in 0..n {
            let xi = x[i] * w;
            if xi == 0.0 {
                continue;
            }
            let row = &mut self.a[i * n + i..(i + 1) * n];
            for (r, &xj) in row.iter_mut().zip(&x[i..]) {
                *r += xi * xj;
            }
        }
    }

    /// Copies the upper triangle into the lower one.
    pub fn mirror(&mut self) {
        let n = self.n;
        for i in 0..n {
            for j in 0..i {
                self.a[i * n + j] = self.a[j * n + i];
            }
        }
    }

    pub fn trace(&self) -> f64 {
        (0..self.n).map(|i| self.at(i, i)).sum()
    }
}

/// Eigen-decomposition of a symmetric matrix (nalgebra: Householder tridiagonalisation and
/// implicit QR, O(n³) — seconds at the 1536-D of the ImageNet setup, where cyclic Jacobi
/// rotations took tens of minutes).
///
/// Returns the eigenvalues in decreasing order and the matching eigenvectors as the columns
/// of a row-major `n × n` matrix.
pub(crate) fn symmetric_eigen(m: &Sym) -> (Vec<f64>, Vec<f64>) {
    let n = m.n;
    let e = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_row_slice(n, n, &m.a));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| e.eigenvalues[j].total_cmp(&e.eigenvalues[i]));
    let vals = order.iter().map(|&i| e.eigenvalues[i]).collect();
    let mut vecs = vec![0.0; n * n];
    for (c, &i) in order.iter().enumerate() {
        for k in 0..n {
            vecs[k * n + c] = e.eigenvectors[(k, i)];
        }
    }
    (vals, vecs)
}

/// `a (r×k) · b (k×c)`, row-major.
pub(crate) fn matmul(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for l in 0..k {
            let x = a[i * k + l];
            if x == 0.0 {
                continue;
            }
            let (orow, brow) = (&mut out[i * c..(i + 1) * c], &b[l * c..(l + 1) * c]);
            for (o, &y) in orow.iter_mut().zip(brow) {
                *o += x * y;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_reconstructs() {
        let n = 6;
        let mut m = Sym::zeros(n);
        for i in 0..n {
            for j in 0..n {
                m.a[i * n + j] = ((i + 1) * (j + 1)) as f64 / 7.0 + if i == j { i as f64 } else { 0.0 };
            }
        }
        let (vals, vecs) = symmetric_eigen(&m);
        assert!(vals.windows(2).all(|w| w[0] >= w[1]));
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n).map(|k| vecs[i * n + k] * vals[k] * vecs[j * n + k]).sum();
                assert!((r - m.at(i, j)).abs() < 1e-9, "{i},{j}");
            }
        }
    }
}
