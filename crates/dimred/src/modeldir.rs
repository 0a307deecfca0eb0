//! The model directory: `config.toml` (the resolved config), `meta.json` (method, dimensions,
//! training history) and the weights (`weights.bpk` for the learned methods, burnpack format;
//! `linear.json` for PCA / LDA). Projection needs nothing else. Every file is written
//! atomically (see [`write_atomic`]), so an interrupted save never leaves a half file.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::head::Heads;
use crate::linear::LinearProjection;
use crate::model::DeepMds;
use crate::{Config, Error, Method, Result};

/// File name of the resolved config.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the metadata.
pub const META_FILE: &str = "meta.json";
/// File name of the learned weights.
pub const WEIGHTS_FILE: &str = "weights.bpk";
/// File name of a linear projection.
pub const LINEAR_FILE: &str = "linear.json";
/// Version of the directory layout.
pub const FORMAT_VERSION: u32 = 1;

/// One validated epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Stage index (0-based).
    pub stage: usize,
    /// Epoch within the stage (0-based).
    pub epoch: usize,
    /// Mean training loss of the epoch.
    pub loss: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Validation rank-1 (held-out training identities), if validated.
    pub val_rank1: Option<f64>,
    /// Validation loss (the contrastive method's selection criterion), if computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Validation TAR at FAR = 1e-3, if validated.
    pub val_tar: Option<f64>,
    /// Seconds since training started.
    pub elapsed_s: f64,
}

/// What a model directory says about its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Directory layout version.
    pub format_version: u32,
    /// The method.
    pub method: Method,
    /// Input embedding dimension.
    pub input_dim: usize,
    /// Output dimensions available (stage outputs, or the linear components).
    pub output_dims: Vec<usize>,
    /// Hidden layers per stage (learned methods).
    pub hidden_layers: usize,
    /// Stages trained so far (learned methods; equals `output_dims.len()` when complete).
    pub trained_stages: usize,
    /// Training wall-clock seconds.
    pub train_seconds: f64,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
}

impl ModelMeta {
    /// True when every stage is trained.
    pub fn complete(&self) -> bool {
        !self.method.is_deep() || self.trained_stages == self.output_dims.len()
    }
}

/// Writes `bytes` to `path` durably and atomically: a temporary file beside it is written and
/// fsynced, renamed over `path`, and the directory is fsynced, so after a crash `path` holds
/// either the old or the new content, never a half file. The one writer of this crate.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    embeddings::atomic::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// Writes `config.toml` and `meta.json` into `dir` (created if needed).
pub fn write_header(dir: &Path, config: &Config, meta: &ModelMeta) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic(&dir.join(CONFIG_FILE), config.to_toml()?.as_bytes())?;
    let json = serde_json::to_string_pretty(meta).map_err(|e| Error::model(dir, e.to_string()))?;
    write_atomic(&dir.join(META_FILE), json.as_bytes())
}

/// Reads `config.toml` and `meta.json` from `dir`.
pub fn read_header(dir: &Path) -> Result<(Config, ModelMeta)> {
    let need = |f: &str| -> Result<PathBuf> {
        let p = dir.join(f);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::model(dir, format!("not a model directory: `{f}` is missing (train one with `hers train`)")))
        }
    };
    let config = Config::from_file(need(CONFIG_FILE)?)?;
    let mp = need(META_FILE)?;
    let text = std::fs::read_to_string(&mp).map_err(|e| Error::io(&mp, e))?;
    let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| Error::model(&mp, e.to_string()))?;
    if meta.format_version != FORMAT_VERSION {
        return Err(Error::model(
            &mp,
            format!("format version {} not supported (expected {FORMAT_VERSION})", meta.format_version),
        ));
    }
    Ok((config, meta))
}

/// Writes a learned model's weights (a DeepMDS chain or contrastive heads) into
/// `dir/weights.bpk` (burnpack).
pub(crate) fn write_weights<M: Module>(dir: &Path, model: &M) -> Result<()> {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = model.clone().into_record().into_bytes().map_err(|e| Error::model(&path, e.to_string()))?;
    write_atomic(&path, &bytes)
}

/// Reads the first `stages` stages of the chain described by `meta` from `dir/weights.bpk`.
pub(crate) fn read_weights(dir: &Path, meta: &ModelMeta, stages: usize, device: &Device) -> Result<DeepMds> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(Error::model(dir, format!("`{WEIGHTS_FILE}` is missing")));
    }
    let skeleton = DeepMds::new(meta.input_dim, &meta.output_dims[..stages], meta.hidden_layers.max(1), device);
    // A checkpoint may hold more stages than asked for (resuming from an earlier stage).
    let record =
        burn::store::ModuleRecord::load(&path).map_err(|e| Error::model(&path, e.to_string()))?.allow_unused(true);
    skeleton.try_load_record(record).map_err(|e| Error::model(&path, e.to_string()))
}

/// Reads the first `heads` heads of the contrastive model described by `config` and `meta`
/// from `dir/weights.bpk`.
pub(crate) fn read_heads(
    dir: &Path,
    config: &Config,
    meta: &ModelMeta,
    heads: usize,
    device: &Device,
) -> Result<Heads> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(Error::model(dir, format!("`{WEIGHTS_FILE}` is missing")));
    }
    let c = &config.contrastive;
    let skeleton = Heads::skeleton(meta.input_dim, &meta.output_dims[..heads], c.head, c.mlp_hidden, device);
    let record =
        burn::store::ModuleRecord::load(&path).map_err(|e| Error::model(&path, e.to_string()))?.allow_unused(true);
    skeleton.try_load_record(record).map_err(|e| Error::model(&path, e.to_string()))
}

/// Writes a linear projection into `dir/linear.json`.
pub(crate) fn write_linear(dir: &Path, projection: &LinearProjection) -> Result<()> {
    let path = dir.join(LINEAR_FILE);
    let json = serde_json::to_string(projection).map_err(|e| Error::model(&path, e.to_string()))?;
    write_atomic(&path, json.as_bytes())
}

/// Reads the linear projection of `dir/linear.json`, checked against `meta`.
pub(crate) fn read_linear(dir: &Path, meta: &ModelMeta) -> Result<LinearProjection> {
    let path = dir.join(LINEAR_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let projection: LinearProjection = serde_json::from_str(&text).map_err(|e| Error::model(&path, e.to_string()))?;
    if projection.in_dim != meta.input_dim
        || projection.mean.len() != projection.in_dim
        || projection.matrix.len() != projection.in_dim * projection.components
    {
        return Err(Error::model(&path, "linear projection does not match meta.json"));
    }
    Ok(projection)
}
