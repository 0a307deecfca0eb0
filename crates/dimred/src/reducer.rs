//! One interface over every method: fit, project, save, load.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use embeddings::EmbeddingSet;

use crate::contrastive::train_contrastive;
use crate::head::Heads;
use crate::linear::{LinearProjection, fit_lda, fit_pca};
use crate::model::DeepMds;
use crate::modeldir::{self, FORMAT_VERSION, ModelMeta};
use crate::training::{TrainOptions, train_deep};
use crate::{Backend, Config, Error, Method, Result, backend};

/// A fitted reduction.
#[derive(Debug)]
pub enum Reducer {
    /// PCA or LDA.
    Linear {
        /// Which linear method.
        method: Method,
        /// The fitted map.
        projection: LinearProjection,
    },
    /// A DeepMDS network (any of the DeepMDS methods).
    Deep {
        /// Which learned method.
        method: Method,
        /// The network, on `device`.
        model: DeepMds,
        /// Inference device.
        device: Device,
        /// Input dimension.
        input_dim: usize,
        /// Rows per projection batch.
        batch: usize,
    },
    /// The contrastive method's heads, one per output dimension.
    Contrastive {
        /// The heads, on `device`.
        model: Heads,
        /// Inference device.
        device: Device,
        /// Input dimension.
        input_dim: usize,
        /// Rows per projection batch.
        batch: usize,
    },
}

impl Reducer {
    /// Fits the method of `config` on `set`. Learned methods train progressively (see
    /// [`train_deep`]) and, when `options.out_dir` is set, checkpoint there after every stage.
    pub fn fit(config: &Config, set: &EmbeddingSet, options: &TrainOptions) -> Result<(Reducer, ModelMeta)> {
        config.validate()?;
        let method = config.train.method;
        if !method.is_deep() {
            let start = std::time::Instant::now();
            let k = config.linear_components();
            let projection = match method {
                Method::Pca => fit_pca(&set.data, set.dim, k)?,
                _ => fit_lda(&set.data, &set.labels, set.dim, k, config.linear.shrinkage)?,
            };
            let meta = ModelMeta {
                format_version: FORMAT_VERSION,
                method,
                input_dim: set.dim,
                output_dims: (1..=k).rev().collect(),
                hidden_layers: 0,
                trained_stages: 0,
                train_seconds: start.elapsed().as_secs_f64(),
                history: Vec::new(),
            };
            let r = Reducer::Linear { method, projection };
            if let Some(dir) = &options.out_dir {
                r.save(dir, config, &meta)?;
            }
            return Ok((r, meta));
        }
        let device = backend::device(config.train.backend)?;
        if method == Method::SupCon {
            let (model, meta) = train_contrastive(config, set, options)?;
            let r = Reducer::Contrastive { model, device, input_dim: set.dim, batch: config.train.inference_batch };
            return Ok((r, meta));
        }
        let (model, meta) = train_deep(config, set, options)?;
        Ok((
            Reducer::Deep {
                method,
                model: model.valid(),
                device,
                input_dim: set.dim,
                batch: config.train.inference_batch,
            },
            meta,
        ))
    }

    /// The method.
    pub fn method(&self) -> Method {
        match self {
            Reducer::Linear { method, .. } | Reducer::Deep { method, .. } => *method,
            Reducer::Contrastive { .. } => Method::SupCon,
        }
    }

    /// Input dimension.
    pub fn input_dim(&self) -> usize {
        match self {
            Reducer::Linear { projection, .. } => projection.in_dim,
            Reducer::Deep { input_dim, .. } | Reducer::Contrastive { input_dim, .. } => *input_dim,
        }
    }

    /// Output dimensions this reducer can produce (stage outputs, or `1..=components`).
    pub fn output_dims(&self) -> Vec<usize> {
        match self {
            Reducer::Linear { projection, .. } => (1..=projection.components).rev().collect(),
            Reducer::Deep { model, .. } => model.output_dims(),
            Reducer::Contrastive { model, .. } => model.output_dims(),
        }
    }

    /// The smallest output dimension (the default of `project`).
    pub fn default_dim(&self) -> usize {
        match self {
            Reducer::Linear { projection, .. } => projection.components,
            Reducer::Deep { model, .. } => model.output_dims().last().copied().unwrap_or(0),
            Reducer::Contrastive { model, .. } => model.output_dims().iter().copied().min().unwrap_or(0),
        }
    }

    /// Projects row-major `rows × input_dim` data to `dim` dimensions; rows come out unit-norm.
    pub fn project(&self, data: &[f32], dim: usize) -> Result<Vec<f32>> {
        let d = self.input_dim();
        if d == 0 || !data.len().is_multiple_of(d) {
            return Err(Error::InputDim { context: "input".into(), expected: d, found: data.len() });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "row {} holds a NaN or an infinity (component {}); drop or repair that row",
                i / d,
                i % d
            )));
        }
        match self {
            Reducer::Linear { projection, .. } => projection.project(data, dim),
            Reducer::Deep { model, device, batch, .. } => {
                let dims = model.output_dims();
                let Some(i) = dims.iter().position(|&k| k == dim) else {
                    return Err(Error::OutputDim { requested: dim, available: format!("{dims:?}") });
                };
                Ok(model.project_rows(data, d, i + 1, *batch, device))
            }
            Reducer::Contrastive { model, device, batch, .. } => {
                let dims = model.output_dims();
                let Some(i) = dims.iter().position(|&k| k == dim) else {
                    return Err(Error::OutputDim { requested: dim, available: format!("{dims:?}") });
                };
                Ok(model.project_rows(data, d, i, *batch, device))
            }
        }
    }

    /// Writes the model directory (`config`, `meta` and the weights).
    pub fn save(&self, dir: &Path, config: &Config, meta: &ModelMeta) -> Result<()> {
        modeldir::write_header(dir, config, meta)?;
        match self {
            Reducer::Linear { projection, .. } => modeldir::write_linear(dir, projection),
            Reducer::Deep { model, .. } => modeldir::write_weights(dir, model),
            Reducer::Contrastive { model, .. } => modeldir::write_weights(dir, model),
        }
    }

    /// Loads a model directory for projection on `backend` (CPU when `None`).
    pub fn load(dir: &Path, backend: Option<Backend>) -> Result<(Reducer, Config, ModelMeta)> {
        let (config, meta) = modeldir::read_header(dir)?;
        if !meta.complete() {
            return Err(Error::model(
                dir,
                format!(
                    "training stopped after {} of {} stages; finish it with `hers train --resume`",
                    meta.trained_stages,
                    meta.output_dims.len()
                ),
            ));
        }
        let r = if meta.method == Method::SupCon {
            let device = backend::device(backend.unwrap_or(Backend::Cpu))?;
            let model = modeldir::read_heads(dir, &config, &meta, meta.output_dims.len(), &device)?;
            Reducer::Contrastive { model, device, input_dim: meta.input_dim, batch: config.train.inference_batch }
        } else if meta.method.is_deep() {
            let device = backend::device(backend.unwrap_or(Backend::Cpu))?;
            let model = modeldir::read_weights(dir, &meta, meta.output_dims.len(), &device)?;
            Reducer::Deep {
                method: meta.method,
                model,
                device,
                input_dim: meta.input_dim,
                batch: config.train.inference_batch,
            }
        } else {
            let projection = modeldir::read_linear(dir, &meta)?;
            Reducer::Linear { method: meta.method, projection }
        };
        Ok((r, config, meta))
    }
}
