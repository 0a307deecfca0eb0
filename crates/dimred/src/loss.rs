//! The loss terms, on burn tensors (so they differentiate).
//!
//! All outputs are unit-norm rows, so the cosine similarity of a pair is its inner product.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Tensor, TensorData};

use crate::LossKind;

/// Cosine similarity of row `i` of `a` with row `i` of `b`: `[n, d], [n, d] → [n]`.
pub fn pair_cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let n = a.dims()[0];
    (a * b).sum_dim(1).reshape([n]) // [n]
}

/// The distance loss `L_D = w_g·E|s_G − ŝ_G|^p + w_i·E|s_I − ŝ_I|^p` (p = 1 for `l1`, 2 for
/// `l2`): targets `s` are the input cosines, predictions `ŝ` the output cosines. Returns `[1]`.
pub fn distance_loss(
    pred_genuine: Tensor<1>,
    target_genuine: Tensor<1>,
    pred_impostor: Tensor<1>,
    target_impostor: Tensor<1>,
    kind: LossKind,
    genuine_weight: f32,
    impostor_weight: f32,
) -> Tensor<1> {
    let term = |p: Tensor<1>, t: Tensor<1>| match kind {
        LossKind::L1 => (t - p).abs().mean(),
        LossKind::L2 => (t - p).powf_scalar(2.0).mean(),
    };
    term(pred_genuine, target_genuine).mul_scalar(genuine_weight)
        + term(pred_impostor, target_impostor).mul_scalar(impostor_weight)
}

/// The covariance penalty `λ·mean|C − diag(C)|` over the `d × d` covariance `C` of the batch
/// outputs `y: [n, d]` (centred, divided by `n`). Returns `[1]`.
pub fn covariance_penalty(y: Tensor<2>, lambda: f32) -> Tensor<1> {
    let [n, d] = y.dims();
    let device = y.device();
    let centred = y.clone() - y.mean_dim(0); // [n, d]
    let cov = centred.clone().transpose().matmul(centred).div_scalar(n as f32); // [d, d]
    let diagonal = Tensor::<2, Bool>::diag_mask([d, d], 0, &device).bool_not(); // true on the diagonal
    cov.mask_fill(diagonal, 0.0).abs().mean().mul_scalar(lambda)
}

/// The ranking term (hers' `deepmds-rank`): for genuine pairs `(a_i, b_i)` of distinct
/// identities, softmax cross-entropy of `a_i` picking `b_i` among all `b_j` (and the converse),
/// logits = cosine / `temperature`; every `b_j, j ≠ i` is an impostor. Returns `[1]`.
pub fn ranking_loss(a: Tensor<2>, b: Tensor<2>, temperature: f32) -> Tensor<1> {
    let n = a.dims()[0];
    let device = a.device();
    let logits = a.matmul(b.transpose()).div_scalar(temperature); // [n, n]
    let eye = Tensor::<2>::eye(n, &device); // [n, n]
    let rows = (log_softmax(logits.clone(), 1) * eye.clone()).sum().div_scalar(n as f32);
    let cols = (log_softmax(logits, 0) * eye).sum().div_scalar(n as f32);
    (rows + cols).mul_scalar(-0.5)
}

/// The supervised contrastive loss (Khosla et al. 2020) of unit-norm rows `z: [n, d]` whose
/// identities are `groups` (one per row): for each anchor `i`,
/// `−1/|P(i)| · Σ_{p ∈ P(i)} log( exp(z_i·z_p/τ) / Σ_{a ≠ i} exp(z_i·z_a/τ) )`, with `P(i)` the
/// other rows of its identity; averaged over the anchors that have a positive. Returns `[1]`.
pub fn supervised_contrastive_loss(z: Tensor<2>, groups: &[usize], temperature: f32) -> Tensor<1> {
    let n = z.dims()[0];
    let device = z.device();
    let mut positives = vec![0f32; n * n];
    let mut weight = vec![0f32; n]; // 1 / |P(i)|, 0 for anchors without a positive
    for i in 0..n {
        let mut count = 0usize;
        for j in 0..n {
            if i != j && groups[i] == groups[j] {
                positives[i * n + j] = 1.0;
                count += 1;
            }
        }
        if count > 0 {
            weight[i] = 1.0 / count as f32;
        }
    }
    let anchors = weight.iter().filter(|&&w| w > 0.0).count().max(1);
    let positives = Tensor::<2>::from_data(TensorData::new(positives, [n, n]), &device);
    let weight = Tensor::<1>::from_data(TensorData::new(weight, [n]), &device);
    // The anchor itself leaves the denominator: a large finite negative logit (not −∞, whose
    // log-probability times the zero mask would be NaN).
    let self_mask = Tensor::<2>::eye(n, &device).mul_scalar(1e9);
    let logits = z.clone().matmul(z.transpose()).div_scalar(temperature) - self_mask; // [n, n]
    let log_p = log_softmax(logits, 1); // [n, n]
    let per_anchor = (log_p * positives).sum_dim(1).reshape([n]) * weight; // [n]
    per_anchor.sum().div_scalar(anchors as f32).neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn t1(v: &[f32], d: &Device) -> Tensor<1> {
        Tensor::<1>::from_floats(v, d)
    }

    fn t2<const C: usize>(v: &[[f32; C]], d: &Device) -> Tensor<2> {
        let flat: Vec<f32> = v.iter().flatten().copied().collect();
        Tensor::<2>::from_data(burn::tensor::TensorData::new(flat, [v.len(), C]), d)
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    #[test]
    fn distance_loss_l1_and_l2_by_hand() {
        let d = Device::flex();
        // genuine errors 0.1, 0.3 → L1 0.2, L2 (0.01 + 0.09)/2 = 0.05
        // impostor errors 0.2, 0.0, 0.4 → L1 0.2, L2 (0.04 + 0 + 0.16)/3 = 0.0666…
        let pg = [0.8, 0.5];
        let tg = [0.9, 0.8];
        let pi = [0.1, -0.2, 0.5];
        let ti = [0.3, -0.2, 0.1];
        let l1 = distance_loss(t1(&pg, &d), t1(&tg, &d), t1(&pi, &d), t1(&ti, &d), LossKind::L1, 1.0, 1.0);
        assert!((scalar(l1) - 0.4).abs() < 1e-6);
        let l1w = distance_loss(t1(&pg, &d), t1(&tg, &d), t1(&pi, &d), t1(&ti, &d), LossKind::L1, 2.0, 0.5);
        assert!((scalar(l1w) - (0.4 + 0.1)).abs() < 1e-6);
        let l2 = distance_loss(t1(&pg, &d), t1(&tg, &d), t1(&pi, &d), t1(&ti, &d), LossKind::L2, 1.0, 1.0);
        assert!((scalar(l2) - (0.05 + 0.2 / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn pair_cosine_is_rowwise_dot() {
        let d = Device::flex();
        let a = t2(&[[1.0, 0.0], [0.6, 0.8]], &d);
        let b = t2(&[[0.0, 1.0], [0.6, 0.8]], &d);
        let c = pair_cosine(a, b).into_data().try_to_vec::<f32>().expect("f32");
        assert!((c[0]).abs() < 1e-6 && (c[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn covariance_penalty_by_hand_and_zero_when_decorrelated() {
        let d = Device::flex();
        // Decorrelated: columns ±1 in an orthogonal pattern → off-diagonal covariance 0.
        let y = t2(&[[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], &d);
        assert!(scalar(covariance_penalty(y, 10.0)).abs() < 1e-7);
        // Correlated: x = (0, 2), y = (0, 2): means 1, 1; cov = [[1,1],[1,1]]; off-diag mean
        // over 4 entries = 2/4 = 0.5; × λ = 10 → 5.
        let y = t2(&[[0.0, 0.0], [2.0, 2.0]], &d);
        assert!((scalar(covariance_penalty(y, 10.0)) - 5.0).abs() < 1e-5);
    }

    #[test]
    fn supervised_contrastive_loss_by_hand() {
        let d = Device::flex();
        // Two identities of two identical rows, τ = 1: each anchor sees its positive at cosine 1
        // and two negatives at 0, so the loss is −log(e / (e + 2)) = ln(e + 2) − 1.
        let z = t2(&[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], &d);
        let e = std::f32::consts::E;
        let got = scalar(supervised_contrastive_loss(z.clone(), &[0, 0, 1, 1], 1.0));
        assert!((got - ((e + 2.0).ln() - 1.0)).abs() < 1e-5, "{got}");
        // τ = 0.5 doubles every logit: ln(e² + 2) − 2.
        let got = scalar(supervised_contrastive_loss(z, &[0, 0, 1, 1], 0.5));
        assert!((got - ((e * e + 2.0).ln() - 2.0)).abs() < 1e-5, "{got}");
        // Unequal cosines; the third row has no positive and is no anchor (but is a negative):
        // anchor 0: −log(e^0.6 / (e^0.6 + e^0)), anchor 1: −log(e^0.6 / (e^0.6 + e^0.8)).
        let z = t2(&[[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], &d);
        let a0 = -(0.6f32.exp() / (0.6f32.exp() + 1.0)).ln();
        let a1 = -(0.6f32.exp() / (0.6f32.exp() + 0.8f32.exp())).ln();
        let got = scalar(supervised_contrastive_loss(z, &[7, 7, 9], 1.0));
        assert!((got - 0.5 * (a0 + a1)).abs() < 1e-5, "{got} vs {}", 0.5 * (a0 + a1));
    }

    #[test]
    fn ranking_loss_by_hand() {
        let d = Device::flex();
        // a = b = I₂, τ = 1: logits [[1,0],[0,1]], −log softmax diag = log(1 + e⁻¹).
        let a = t2(&[[1.0, 0.0], [0.0, 1.0]], &d);
        let expected = (1.0f32 + (-1.0f32).exp()).ln();
        assert!((scalar(ranking_loss(a.clone(), a.clone(), 1.0)) - expected).abs() < 1e-5);
        // τ = 0.5 doubles the logits.
        let expected = (1.0f32 + (-2.0f32).exp()).ln();
        assert!((scalar(ranking_loss(a.clone(), a, 0.5)) - expected).abs() < 1e-5);
    }
}
