//! The model of the contrastive method (`supcon`): one projection head per output dimension,
//! each started from the first `k` columns of a fitted linear map (LDA or PCA) so that training
//! begins exactly at the best linear projection and only has to improve on it.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use crate::HeadKind;
use crate::linear::LinearProjection;
use crate::model::{l2_normalize_rows, tensor_to_vec};

/// One head `in → k`: `normalise(W·x + b + mlp(x))` of a unit-norm input `x`. `W`, `b` start as
/// the linear map (`b = −mean·W`, so `W·x + b = (x − mean)·W`); the optional MLP branch
/// (`in → hidden → k`, ReLU) starts with a zero last layer, so it adds nothing at step 0.
#[derive(Module, Debug)]
pub struct Head {
    /// The linear map (weight `[in, k]`, bias `[k]`).
    pub linear: Linear,
    /// Empty for a linear head; `[in → hidden, hidden → k]` for an MLP head.
    pub mlp: Vec<Linear>,
}

/// Rows used to set the scale of a head's starting weights.
const SCALE_ROWS: usize = 4096;

impl Head {
    /// A head of output dimension `k` that reproduces `projection.project(·, k)` exactly.
    ///
    /// The map is multiplied by one positive factor so that the training rows `rows` (row-major,
    /// `in_dim` wide, unit-norm) land at mean norm 1 before normalisation: the output is
    /// unchanged (it is normalised), but LDA's whitening leaves entries of arbitrary size and
    /// the optimiser's steps are absolute, so without it the learning rate would depend on the
    /// data's within-class scatter.
    pub fn from_projection(
        projection: &LinearProjection,
        k: usize,
        kind: HeadKind,
        hidden: usize,
        rows: &[f32],
        device: &Device,
    ) -> Head {
        let d = projection.in_dim;
        let c = projection.components;
        let mut w = vec![0f32; d * k];
        for i in 0..d {
            w[i * k..(i + 1) * k].copy_from_slice(&projection.matrix[i * c..i * c + k]);
        }
        let n = (rows.len() / d.max(1)).min(SCALE_ROWS);
        let mut norm_sum = 0f64;
        let mut y = vec![0f32; k];
        for r in rows[..n * d].chunks_exact(d) {
            y.iter_mut().for_each(|v| *v = 0.0);
            for (i, xi) in r.iter().enumerate() {
                let v = xi - projection.mean[i];
                y.iter_mut().zip(&w[i * k..(i + 1) * k]).for_each(|(o, wi)| *o += v * wi);
            }
            norm_sum += f64::from(y.iter().map(|v| v * v).sum::<f32>().sqrt());
        }
        let mean_norm = norm_sum / n.max(1) as f64;
        let scale = if mean_norm > 0.0 && mean_norm.is_finite() { (1.0 / mean_norm) as f32 } else { 1.0 };
        w.iter_mut().for_each(|v| *v *= scale);
        let bias: Vec<f32> = (0..k).map(|j| -(0..d).map(|i| projection.mean[i] * w[i * k + j]).sum::<f32>()).collect();
        let linear = Linear {
            weight: Param::from_tensor(Tensor::<2>::from_data(TensorData::new(w, [d, k]), device)),
            bias: Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(bias, [k]), device))),
        };
        Head { linear, mlp: mlp_branch(d, k, kind, hidden, device) }
    }

    /// A head of the right shape with arbitrary weights, to load a record into.
    pub fn skeleton(input: usize, k: usize, kind: HeadKind, hidden: usize, device: &Device) -> Head {
        Head { linear: LinearConfig::new(input, k).init(device), mlp: mlp_branch(input, k, kind, hidden, device) }
    }

    /// Output dimension.
    pub fn output_dim(&self) -> usize {
        self.linear.weight.shape().dims::<2>()[1]
    }

    /// `[n, in]` → `[n, k]`, both unit-norm rows (the input is normalised here).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = l2_normalize_rows(x);
        let mut y = self.linear.forward(x.clone()); // [n, k]
        if let [up, down] = self.mlp.as_slice() {
            y = y + down.forward(relu(up.forward(x))); // [n, k]
        }
        l2_normalize_rows(y)
    }
}

/// The MLP branch of a head: nothing for a linear head.
fn mlp_branch(input: usize, k: usize, kind: HeadKind, hidden: usize, device: &Device) -> Vec<Linear> {
    match kind {
        HeadKind::Linear => Vec::new(),
        HeadKind::Mlp => vec![
            LinearConfig::new(input, hidden).with_initializer(Initializer::XavierUniform { gain: 1.0 }).init(device),
            LinearConfig::new(hidden, k).with_initializer(Initializer::Zeros).init(device),
        ],
    }
}

/// The heads of a contrastive model, one per output dimension (in `model.stages` order).
#[derive(Module, Debug)]
pub struct Heads {
    /// Heads in order of the configured output dimensions.
    pub heads: Vec<Head>,
}

impl Heads {
    /// Heads of the given output dimensions with arbitrary weights, to load a record into.
    pub fn skeleton(input: usize, dims: &[usize], kind: HeadKind, hidden: usize, device: &Device) -> Heads {
        Heads { heads: dims.iter().map(|&k| Head::skeleton(input, k, kind, hidden, device)).collect() }
    }

    /// Output dimension of each head.
    pub fn output_dims(&self) -> Vec<usize> {
        self.heads.iter().map(Head::output_dim).collect()
    }

    /// Projects row-major `rows × dim` data through head `index` on `device`, `batch` rows at a
    /// time.
    pub fn project_rows(&self, data: &[f32], dim: usize, index: usize, batch: usize, device: &Device) -> Vec<f32> {
        project_with(&self.heads[index], data, dim, batch, device)
    }
}

/// Projects row-major `rows × dim` data through one head, `batch` rows at a time.
pub fn project_with(head: &Head, data: &[f32], dim: usize, batch: usize, device: &Device) -> Vec<f32> {
    let rows = data.len() / dim.max(1);
    let mut out = Vec::with_capacity(rows * head.output_dim());
    for start in (0..rows).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(rows);
        let x =
            Tensor::<2>::from_data(TensorData::new(data[start * dim..end * dim].to_vec(), [end - start, dim]), device);
        out.extend(tensor_to_vec(head.forward(x)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::fit_lda;

    /// 12 identities × 4 noisy samples in 10-D, unit-norm.
    fn toy() -> (Vec<f32>, Vec<i64>) {
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for id in 0..12 {
            for s in 0..4 {
                let mut v: Vec<f32> = (0..10)
                    .map(|i| ((id * 31 + i * 7) % 13) as f32 / 13.0 - 0.5 + 0.05 * ((s * 17 + i * 5) % 11) as f32)
                    .collect();
                embeddings::l2_normalize(&mut v);
                data.extend(v);
                labels.push(id as i64);
            }
        }
        (data, labels)
    }

    #[test]
    fn at_step_zero_a_head_reproduces_the_lda_projection() {
        let (data, labels) = toy();
        let lda = fit_lda(&data, &labels, 10, 6, 0.1).expect("lda");
        let device = Device::flex();
        for kind in [HeadKind::Linear, HeadKind::Mlp] {
            for k in [6, 3] {
                let head = Head::from_projection(&lda, k, kind, 8, &data, &device);
                let got = project_with(&head, &data, 10, 7, &device);
                let want = lda.project(&data, k).expect("project");
                assert_eq!(got.len(), want.len());
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-5, "{kind:?} {k}-D: largest difference {worst}");
            }
        }
    }
}
