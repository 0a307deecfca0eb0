//! A fitted linear projection `y = normalise((normalise(x) − mean) · W)`, shared by PCA and LDA.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A centred linear map to `components` dimensions; the first `k` columns give the `k`-D
/// projection, so one fit serves every smaller dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearProjection {
    /// Input dimension.
    pub in_dim: usize,
    /// Number of columns of `matrix`.
    pub components: usize,
    /// Mean subtracted from every (L2-normalised) input, `in_dim` values.
    pub mean: Vec<f32>,
    /// Row-major `in_dim × components` matrix, columns in decreasing order of importance.
    pub matrix: Vec<f32>,
    /// Eigenvalue (variance or discriminability) of each column, for reports.
    pub eigenvalues: Vec<f64>,
}

impl LinearProjection {
    /// Projects row-major `rows × in_dim` inputs to `k` dims, rows L2-normalised.
    pub fn project(&self, data: &[f32], k: usize) -> Result<Vec<f32>> {
        if k == 0 || k > self.components {
            return Err(Error::OutputDim { requested: k, available: format!("1..={}", self.components) });
        }
        let d = self.in_dim;
        if !data.len().is_multiple_of(d) {
            return Err(Error::InputDim { context: "input".into(), expected: d, found: data.len() });
        }
        let rows = data.len() / d;
        let mut out = vec![0f32; rows * k];
        let mut x = vec![0f32; d];
        for r in 0..rows {
            x.copy_from_slice(&data[r * d..(r + 1) * d]);
            embeddings::l2_normalize(&mut x);
            let o = &mut out[r * k..(r + 1) * k];
            for (i, xi) in x.iter().enumerate() {
                let v = xi - self.mean[i];
                let row = &self.matrix[i * self.components..i * self.components + k];
                for (oj, w) in o.iter_mut().zip(row) {
                    *oj += v * w;
                }
            }
            embeddings::l2_normalize(o);
        }
        Ok(out)
    }
}

/// Normalised inputs (f64) and their mean.
fn normalised(data: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = data.len() / dim;
    let mut x: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    let mut mean = vec![0.0; dim];
    for r in x.chunks_exact_mut(dim) {
        let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        if n > 0.0 {
            r.iter_mut().for_each(|v| *v /= n);
        }
        mean.iter_mut().zip(r.iter()).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= rows.max(1) as f64);
    (x, mean)
}

fn check_fit(rows: usize, dim: usize, components: usize) -> Result<()> {
    if rows < 2 {
        return Err(Error::Data(format!("{rows} rows: need at least 2 to fit")));
    }
    if components == 0 || components > dim {
        return Err(Error::OutputDim { requested: components, available: format!("1..={dim}") });
    }
    Ok(())
}

/// Fits PCA: the top `components` eigenvectors of the covariance of the L2-normalised inputs.
pub fn fit_pca(data: &[f32], dim: usize, components: usize) -> Result<LinearProjection> {
    let rows = data.len() / dim.max(1);
    check_fit(rows, dim, components)?;
    let (x, mean) = normalised(data, dim);
    let mut cov = crate::linalg::Sym::zeros(dim);
    let mut c = vec![0.0; dim];
    for r in x.chunks_exact(dim) {
        c.iter_mut().zip(r.iter().zip(&mean)).for_each(|(c, (v, m))| *c = v - m);
        cov.add_outer_upper(&c, 1.0 / rows as f64);
    }
    cov.mirror();
    let (vals, vecs) = crate::linalg::symmetric_eigen(&cov);
    Ok(take_columns(dim, components, mean, &vecs, dim, &vals))
}

/// Fits shrinkage LDA: directions maximising between-class over (shrunk) within-class scatter,
/// `S_w ← (1−α)·S_w + α·(tr S_w / d)·I`, in the within-class-whitened space.
pub fn fit_lda(
    data: &[f32],
    labels: &[i64],
    dim: usize,
    components: usize,
    shrinkage: f64,
) -> Result<LinearProjection> {
    let rows = data.len() / dim.max(1);
    check_fit(rows, dim, components)?;
    let (x, mean) = normalised(data, dim);
    let mut classes: std::collections::HashMap<i64, (usize, Vec<f64>)> = std::collections::HashMap::new();
    for (r, &l) in x.chunks_exact(dim).zip(labels) {
        let e = classes.entry(l).or_insert_with(|| (0, vec![0.0; dim]));
        e.0 += 1;
        e.1.iter_mut().zip(r).for_each(|(s, v)| *s += v);
    }
    if classes.len() < 2 {
        return Err(Error::Data("LDA needs at least two classes".into()));
    }
    for (n, s) in classes.values_mut() {
        s.iter_mut().for_each(|v| *v /= *n as f64);
    }
    let mut sw = crate::linalg::Sym::zeros(dim);
    let mut c = vec![0.0; dim];
    for (r, l) in x.chunks_exact(dim).zip(labels) {
        let mu = &classes[l].1;
        c.iter_mut().zip(r.iter().zip(mu)).for_each(|(c, (v, m))| *c = v - m);
        sw.add_outer_upper(&c, 1.0 / rows as f64);
    }
    sw.mirror();
    let mut sb = crate::linalg::Sym::zeros(dim);
    for (n, mu) in classes.values() {
        c.iter_mut().zip(mu.iter().zip(&mean)).for_each(|(c, (v, m))| *c = v - m);
        sb.add_outer_upper(&c, *n as f64 / rows as f64);
    }
    sb.mirror();
    let avg = sw.trace() / dim as f64;
    for v in sw.a.iter_mut() {
        *v *= 1.0 - shrinkage;
    }
    for i in 0..dim {
        sw.a[i * dim + i] += shrinkage * avg;
    }
    // W = U Λ^{-1/2}: whitens the within-class scatter.
    let (wv, wu) = crate::linalg::symmetric_eigen(&sw);
    let floor = wv.first().copied().unwrap_or(0.0) * 1e-10;
    if wv.iter().any(|v| !v.is_finite()) || floor <= 0.0 {
        return Err(Error::Numerical("within-class scatter is zero or not finite; raise linear.shrinkage".into()));
    }
    let mut w = wu;
    for i in 0..dim {
        for j in 0..dim {
            w[i * dim + j] /= wv[j].max(floor).sqrt();
        }
    }
    // M = Wᵀ S_b W.
    let mut wt = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..dim {
            wt[j * dim + i] = w[i * dim + j];
        }
    }
    let sbw = crate::linalg::matmul(&sb.a, &w, dim, dim, dim);
    let mut m = crate::linalg::Sym { n: dim, a: crate::linalg::matmul(&wt, &sbw, dim, dim, dim) };
    // Symmetrise against rounding.
    for i in 0..dim {
        for j in i + 1..dim {
            let s = 0.5 * (m.a[i * dim + j] + m.a[j * dim + i]);
            m.a[i * dim + j] = s;
            m.a[j * dim + i] = s;
        }
    }
    let (vals, v) = crate::linalg::symmetric_eigen(&m);
    let p = crate::linalg::matmul(&w, &v, dim, dim, dim);
    Ok(take_columns(dim, components, mean, &p, dim, &vals))
}

fn take_columns(dim: usize, k: usize, mean: Vec<f64>, m: &[f64], cols: usize, vals: &[f64]) -> LinearProjection {
    let mut matrix = vec![0f32; dim * k];
    for i in 0..dim {
        for j in 0..k {
            matrix[i * k + j] = m[i * cols + j] as f32;
        }
    }
    LinearProjection {
        in_dim: dim,
        components: k,
        mean: mean.iter().map(|&v| v as f32).collect(),
        matrix,
        eigenvalues: vals[..k].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes separated along axis 2, large noise along axis 0.
    fn toy() -> (Vec<f32>, Vec<i64>) {
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200 {
            let noise = ((i * 37 % 101) as f32 / 101.0 - 0.5) * 4.0;
            let class = (i % 2) as i64;
            let sep = if class == 0 { 0.3 } else { -0.3 };
            data.extend_from_slice(&[noise, 1.0, sep + 0.01 * ((i * 13 % 7) as f32), 2.0]);
            labels.push(class);
        }
        (data, labels)
    }

    #[test]
    fn pca_finds_the_high_variance_axis_and_lda_the_separating_one() {
        let (data, labels) = toy();
        let pca = fit_pca(&data, 4, 1).expect("pca");
        let lda = fit_lda(&data, &labels, 4, 1, 0.01).expect("lda");
        let pca_axis: Vec<f32> = pca.matrix.iter().map(|v| v.abs()).collect();
        let lda_axis: Vec<f32> = lda.matrix.iter().map(|v| v.abs()).collect();
        let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|x| x.0);
        assert_eq!(argmax(&pca_axis), Some(0));
        assert_ne!(argmax(&lda_axis), Some(0), "{lda_axis:?}");
        // 1-D LDA projections are ±1 and split the classes.
        let y = lda.project(&data, 1).expect("project");
        let s0 = y[0].signum();
        for (v, l) in y.iter().zip(&labels) {
            assert!((v.abs() - 1.0).abs() < 1e-5);
            assert_eq!(v.signum() == s0, *l == labels[0]);
        }
    }

    #[test]
    fn wrong_dimension_is_an_error() {
        let (data, _) = toy();
        let pca = fit_pca(&data, 4, 2).expect("pca");
        assert!(matches!(pca.project(&data, 3), Err(Error::OutputDim { .. })));
        assert!(matches!(pca.project(&data[..6], 2), Err(Error::InputDim { .. })));
    }
}
