//! Sweep configuration: the TOML files in `configs/sweep-*.toml`.
//!
//! Every field has a default, and the resolved config is saved beside the results, so a sweep
//! can be repeated from its output folder alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A sweep: datasets × methods × dimensions × search modes × gallery sizes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Name of the sweep; outputs go to `<out_dir>/<name>/<timestamp>/`.
    pub name: String,
    /// Root of the outputs.
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    /// Seed of the probe draw (and of synthetic data where a dataset gives none).
    #[serde(default)]
    pub seed: u64,
    /// The datasets.
    pub datasets: Vec<DatasetConfig>,
    /// Reduction methods: `none`, `pca`, `lda`, `deepmds`, `deepmds-cov`, `deepmds++` (and
    /// any other method dimred knows).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Output dimensions (ignored for `none`, which keeps the input dimension).
    #[serde(default = "default_dims")]
    pub dims: Vec<usize>,
    /// Search modes.
    #[serde(default = "default_modes")]
    pub modes: Vec<Mode>,
    /// Gallery sizes in templates, reached by adding distractor identities (synthetic datasets
    /// only); empty means the dataset's own gallery.
    #[serde(default)]
    pub gallery_sizes: Vec<usize>,
    /// The dimred training config used for every learned method (the method is overridden per
    /// cell); relative paths are resolved from the working directory.
    #[serde(default)]
    pub training: Option<PathBuf>,
    /// Overrides of the training config: epochs per stage (short runs for sweeps).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Overrides of the training config: validations without improvement before a stage stops
    /// (train to convergence, `epochs` then being a ceiling).
    #[serde(default)]
    pub patience: Option<usize>,
    /// Overrides of the training config: seconds of training allowed per model.
    #[serde(default)]
    pub time_budget_s: Option<f64>,
    /// Overrides of the training config: optimiser steps per epoch (short runs for sweeps of
    /// wide inputs, where each step is costly).
    #[serde(default)]
    pub steps_per_epoch: Option<usize>,
    /// Also time the HERS algorithm (multiply + relinearise + add per dimension) on this many
    /// chunks per encrypted cell and report the ratio (0 turns it off).
    #[serde(default = "default_hers_chunks")]
    pub hers_chunks: usize,
    /// Most probes searched in encrypted mode (the rest are plaintext-only); encrypted search
    /// costs one query per probe.
    #[serde(default = "default_max_encrypted_probes")]
    pub max_encrypted_probes: usize,
    /// Encrypted cells are run only up to this dimension (full-dimension `none` stays
    /// plaintext: hundreds of ciphertexts per probe is what the reduction exists to avoid).
    #[serde(default = "default_max_encrypted_dim")]
    pub max_encrypted_dim: usize,
    /// Two-stage mode: candidates per probe kept by the reduced-dimension stage.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// Retrieval metrics (precision@k, mAP over same-class items) for image-retrieval setups.
    #[serde(default)]
    pub retrieval: bool,
}

/// How the gallery is searched.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// float32 brute force on the (reduced) embeddings.
    Plaintext,
    /// BFV-encrypted gallery and probe; scores decrypted by the client.
    Encrypted,
    /// Encrypted search at the reduced dimension keeps `candidates` per probe; an encrypted
    /// full-dimension gallery (coefficient layout) rescores them.
    TwoStage,
}

impl Mode {
    /// The name used in configs, results tables and cell keys (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plaintext => "plaintext",
            Mode::Encrypted => "encrypted",
            Mode::TwoStage => "two-stage",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dataset of a sweep: real parquet files, or a synthetic stand-in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Name in the results.
    pub name: String,
    /// Training set (identities disjoint from `test`) for the learned and linear methods.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// Probe + gallery set.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// A synthetic dataset instead of files.
    #[serde(default)]
    pub synthetic: Option<SyntheticConfig>,
}

/// A synthetic dataset from `hers synth` presets; train, test and distractor identities are
/// disjoint identities of the same generator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// `arcface`, `deepprint` or `imagenet`.
    pub preset: String,
    /// Identities for training.
    #[serde(default = "default_train_identities")]
    pub train_identities: usize,
    /// Identities in the probe/gallery set.
    #[serde(default = "default_test_identities")]
    pub test_identities: usize,
    /// Samples per identity.
    #[serde(default = "default_per_identity")]
    pub per_identity: usize,
    /// Generator seed.
    #[serde(default = "default_synth_seed")]
    pub seed: u64,
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("experiments")
}
fn default_methods() -> Vec<String> {
    ["none", "pca", "deepmds++"].map(String::from).to_vec()
}
fn default_dims() -> Vec<usize> {
    vec![16, 32, 64]
}
fn default_modes() -> Vec<Mode> {
    vec![Mode::Plaintext]
}
fn default_candidates() -> usize {
    100
}
fn default_hers_chunks() -> usize {
    1
}
fn default_max_encrypted_probes() -> usize {
    500
}
fn default_max_encrypted_dim() -> usize {
    64
}
fn default_train_identities() -> usize {
    2000
}
fn default_test_identities() -> usize {
    1000
}
fn default_per_identity() -> usize {
    5
}
fn default_synth_seed() -> u64 {
    1
}

impl SweepConfig {
    /// Reads and checks a sweep config.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| crate::error::io(path, e))?;
        let config: SweepConfig =
            toml::from_str(&text).map_err(|source| Error::ConfigParse { path: path.to_path_buf(), source })?;
        config.check().map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Ok(config)
    }

    /// Checks what serde cannot: non-empty lists, one data source per dataset.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.datasets.is_empty() || self.methods.is_empty() || self.modes.is_empty() {
            return Err("datasets, methods and modes must not be empty".into());
        }
        for d in &self.datasets {
            match (&d.test, &d.synthetic) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => return Err(format!("dataset `{}`: give either `test` (a parquet file) or `synthetic`", d.name)),
            }
            let learned = self.methods.iter().any(|m| m != "none");
            if learned && d.test.is_some() && d.train.is_none() {
                return Err(format!("dataset `{}`: methods other than `none` need a `train` file", d.name));
            }
        }
        if self.dims.contains(&0) {
            return Err("dimensions must be at least 1".into());
        }
        Ok(())
    }
}
