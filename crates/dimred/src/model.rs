//! The DeepMDS network: a chain of residual-MLP stages, each reducing the dimension and
//! L2-normalising its output; usable up to any stage.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

/// One stage `in → out`: a long skip `Linear(in→out)`, and `hidden_layers` residual blocks whose
/// widths shrink by `(in − out) / hidden_layers` each (remainder on the last); block `i` is
/// `x = ReLU(Linear(x)) + x; x = Linear_{w_i → w_{i+1}}(x)`. Output: `normalise(x + skip)`.
#[derive(Module, Debug)]
pub struct Stage {
    /// The long skip connection `in → out`.
    pub skip: Linear,
    /// Square residual layers, one per block.
    pub residual: Vec<Linear>,
    /// Width-reducing layers, one per block.
    pub down: Vec<Linear>,
}

/// The widths `w_0 = in, …, w_L = out` of a stage with `layers` blocks.
pub fn stage_widths(input: usize, output: usize, layers: usize) -> Vec<usize> {
    let step = input.saturating_sub(output) / layers.max(1);
    let mut w: Vec<usize> = (0..layers).map(|i| input - i * step).collect();
    w.push(output);
    w
}

fn xavier(i: usize, o: usize, device: &Device) -> Linear {
    LinearConfig::new(i, o).with_initializer(Initializer::XavierUniform { gain: 1.0 }).init(device)
}

impl Stage {
    /// A freshly initialised (Xavier uniform) stage.
    pub fn new(input: usize, output: usize, hidden_layers: usize, device: &Device) -> Self {
        let w = stage_widths(input, output, hidden_layers);
        Stage {
            skip: xavier(input, output, device),
            residual: w[..hidden_layers].iter().map(|&d| xavier(d, d, device)).collect(),
            down: w.windows(2).map(|p| xavier(p[0], p[1], device)).collect(),
        }
    }

    /// Input dimension.
    pub fn input_dim(&self) -> usize {
        self.skip.weight.shape().dims::<2>()[0]
    }

    /// Output dimension.
    pub fn output_dim(&self) -> usize {
        self.skip.weight.shape().dims::<2>()[1]
    }

    /// `[n, in] → [n, out]`, rows unit-norm.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let skip = self.skip.forward(x.clone()); // [n, out]
        let mut h = x; // [n, w_0]
        for (res, down) in self.residual.iter().zip(&self.down) {
            h = relu(res.forward(h.clone())) + h; // [n, w_i]
            h = down.forward(h); // [n, w_{i+1}]
        }
        l2_normalize_rows(h + skip) // [n, out]
    }
}

/// Divides every row by its L2 norm (guarded against zero rows).
pub fn l2_normalize_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12); // [n, 1]
    x / norm
}

/// The chain of stages.
#[derive(Module, Debug)]
pub struct DeepMds {
    /// Stages in order; stage `i` maps `dims[i] → dims[i + 1]`.
    pub stages: Vec<Stage>,
}

impl DeepMds {
    /// A chain `input → stages[0] → stages[1] → …`, freshly initialised.
    pub fn new(input: usize, stages: &[usize], hidden_layers: usize, device: &Device) -> Self {
        let mut dims = vec![input];
        dims.extend_from_slice(stages);
        DeepMds { stages: dims.windows(2).map(|w| Stage::new(w[0], w[1], hidden_layers, device)).collect() }
    }

    /// Output dimension of each stage.
    pub fn output_dims(&self) -> Vec<usize> {
        self.stages.iter().map(Stage::output_dim).collect()
    }

    /// `[n, in]` (rows L2-normalised here) through the first `upto` stages.
    pub fn forward_to(&self, x: Tensor<2>, upto: usize) -> Tensor<2> {
        let mut h = l2_normalize_rows(x);
        for s in &self.stages[..upto.min(self.stages.len())] {
            h = s.forward(h);
        }
        h
    }

    /// The outputs of each of the first `upto` stages (input rows L2-normalised here).
    pub fn forward_all(&self, x: Tensor<2>, upto: usize) -> Vec<Tensor<2>> {
        let mut h = l2_normalize_rows(x);
        let mut out = Vec::with_capacity(upto);
        for s in &self.stages[..upto.min(self.stages.len())] {
            h = s.forward(h);
            out.push(h.clone());
        }
        out
    }

    /// Projects row-major `rows × dim` data through the first `upto` stages on `device`, in
    /// batches of `batch` rows.
    pub fn project_rows(&self, data: &[f32], dim: usize, upto: usize, batch: usize, device: &Device) -> Vec<f32> {
        let rows = data.len() / dim.max(1);
        let upto = upto.min(self.stages.len());
        let out_dim = if upto == 0 { dim } else { self.stages[upto - 1].output_dim() };
        let mut out = Vec::with_capacity(rows * out_dim);
        for start in (0..rows).step_by(batch.max(1)) {
            let end = (start + batch.max(1)).min(rows);
            let x = Tensor::<2>::from_data(
                TensorData::new(data[start * dim..end * dim].to_vec(), [end - start, dim]),
                device,
            );
            let y = self.forward_to(x, upto);
            out.extend(tensor_to_vec(y));
        }
        out
    }
}

/// Reads a float tensor back as a `Vec<f32>`.
pub fn tensor_to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let data = t.into_data();
    data.try_into_vec_as::<f32>().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_original() {
        assert_eq!(stage_widths(384, 256, 3), vec![384, 342, 300, 256]);
        assert_eq!(stage_widths(512, 256, 3), vec![512, 427, 342, 256]);
        assert_eq!(stage_widths(32, 16, 3), vec![32, 27, 22, 16]);
    }

    #[test]
    fn outputs_are_unit_norm_at_every_stage() {
        let device = Device::flex();
        device.seed(3);
        let model = DeepMds::new(24, &[16, 8, 4], 3, &device);
        let data: Vec<f32> = (0..10 * 24).map(|i| ((i * 7919 % 97) as f32 / 97.0) - 0.4).collect();
        for upto in 1..=3 {
            let y = model.project_rows(&data, 24, upto, 4, &device);
            let d = model.output_dims()[upto - 1];
            assert_eq!(y.len(), 10 * d);
            for row in y.chunks(d) {
                let n: f32 = row.iter().map(|v| v * v).sum();
                assert!((n - 1.0).abs() < 1e-5, "stage {upto}: norm² {n}");
            }
        }
    }
}
