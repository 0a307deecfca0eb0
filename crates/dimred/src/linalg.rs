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

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations.
///
/// Returns the eigenvalues in decreasing order and the matching eigenvectors as the columns
/// of a row-major `n × n` matrix.
pub(crate) fn symmetric_eigen(m: &Sym) -> (Vec<f64>, Vec<f64>) {
    let n = m.n;
    let mut a = m.a.clone();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                off += a[i * n + j] * a[i * n + j];
            }
        }
        if off.sqrt() <= 1e-14 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ A J, on rows/columns p and q.
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let vals = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vecs = vec![0.0; n * n];
    for (c, &i) in order.iter().enumerate() {
        for k in 0..n {
            vecs[k * n + c] = v[k * n + i];
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
