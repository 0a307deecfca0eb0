//! The training / reduction config: a TOML file in which every number is a field with a default.
//!
//! ```toml
//! name = "bible-minilm"
//! [data]
//! train = "data/bible-minilm-train.parquet"
//! [model]
//! stages = [256, 128, 64, 32, 16]
//! [train]
//! method = "deepmds++"
//! ```
//!
//! Relative paths are resolved against the current directory by the caller (the CLI).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A reduction method: the linear baselines and the DeepMDS ablations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Method {
    /// Principal component analysis (unsupervised, linear).
    #[serde(rename = "pca")]
    Pca,
    /// Linear discriminant analysis with a shrunk within-class scatter (supervised, linear).
    #[serde(rename = "lda")]
    Lda,
    /// DeepMDS: the distance loss only.
    #[serde(rename = "deepmds")]
    DeepMds,
    /// DeepMDS + the covariance penalty.
    #[serde(rename = "deepmds-cov")]
    DeepMdsCov,
    /// DeepMDS++: distance loss + covariance penalty + hard-pair mining (the seed's method).
    #[default]
    #[serde(rename = "deepmds++")]
    DeepMdsPlusPlus,
    /// DeepMDS++ plus an in-batch ranking (softmax contrastive) term on genuine vs impostor pairs:
    /// hers' extension, not in the seed.
    #[serde(rename = "deepmds-rank")]
    DeepMdsRank,
    /// A projection head initialised from the fitted LDA (or PCA) map and fine-tuned with a
    /// supervised contrastive loss over identity-balanced batches: hers' default, not in the seed.
    #[serde(rename = "supcon")]
    SupCon,
}

impl Method {
    /// Every method, in the order of the paper's ablation (then hers' extension).
    pub const ALL: [Method; 7] = [
        Method::Pca,
        Method::Lda,
        Method::DeepMds,
        Method::DeepMdsCov,
        Method::DeepMdsPlusPlus,
        Method::DeepMdsRank,
        Method::SupCon,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Pca => "pca",
            Method::Lda => "lda",
            Method::DeepMds => "deepmds",
            Method::DeepMdsCov => "deepmds-cov",
            Method::DeepMdsPlusPlus => "deepmds++",
            Method::DeepMdsRank => "deepmds-rank",
            Method::SupCon => "supcon",
        }
    }

    /// True for the learned (burn) methods.
    pub fn is_deep(self) -> bool {
        !matches!(self, Method::Pca | Method::Lda)
    }

    /// True for the DeepMDS chain methods (trained stage by stage on pair losses).
    pub fn is_chain(self) -> bool {
        self.is_deep() && self != Method::SupCon
    }

    /// Whether the covariance penalty is part of the loss.
    pub fn uses_covariance(self) -> bool {
        matches!(self, Method::DeepMdsCov | Method::DeepMdsPlusPlus | Method::DeepMdsRank)
    }

    /// Whether hard-pair mining is used.
    pub fn uses_mining(self) -> bool {
        matches!(self, Method::DeepMdsPlusPlus | Method::DeepMdsRank)
    }

    /// Whether the ranking term is part of the loss.
    pub fn uses_ranking(self) -> bool {
        matches!(self, Method::DeepMdsRank)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            Error::config(
                "train.method",
                format!("unknown method `{s}`; expected one of {}", Method::ALL.map(Method::name).join(", ")),
            )
        })
    }
}

/// The compute backend of the learned methods; chosen at the entry point only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's flex CPU backend (always built).
    #[default]
    Cpu,
    /// burn's wgpu backend (needs the `wgpu` cargo feature and a Vulkan/Metal/DX12 device).
    Wgpu,
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" => Ok(Backend::Wgpu),
            _ => Err(Error::config("train.backend", format!("unknown backend `{s}`; expected cpu or wgpu"))),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
        })
    }
}

/// The distance-loss norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Mean absolute error, as in the original code.
    #[default]
    L1,
    /// Mean squared error, as on the slides (squared Frobenius norm with normalisers).
    L2,
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name of the run (used for the default model directory).
    pub name: String,
    /// Where the training data comes from.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Optimisation and method.
    pub train: TrainConfig,
    /// The loss terms.
    pub loss: LossConfig,
    /// Hard-pair mining.
    pub mining: MiningConfig,
    /// The linear baselines (and the starting map of `supcon`).
    pub linear: LinearConfig,
    /// The supervised contrastive method (`supcon`).
    pub contrastive: ContrastiveConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "dimred".into(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            loss: LossConfig::default(),
            mining: MiningConfig::default(),
            linear: LinearConfig::default(),
            contrastive: ContrastiveConfig::default(),
        }
    }
}

/// Training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Parquet embedding set to train on (`id`, `label`, `embedding`).
    pub train: PathBuf,
    /// Fraction of the training identities held out for per-epoch validation (0 disables it).
    pub validation_fraction: f64,
    /// Most identities used for validation (rank-1 is O(n²)); 0 means no cap.
    pub max_validation_identities: usize,
    /// Seed of the identity split.
    pub split_seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { train: PathBuf::new(), validation_fraction: 0.1, max_validation_identities: 1000, split_seed: 17 }
    }
}

/// The chain of stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Output dimension of each stage, decreasing (the input dimension comes from the data).
    pub stages: Vec<usize>,
    /// Hidden layers per stage (the original uses 3).
    pub hidden_layers: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { stages: vec![256, 128, 64, 32, 16], hidden_layers: 3 }
    }
}

/// Optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The reduction method.
    pub method: Method,
    /// Compute backend of the learned methods.
    pub backend: Backend,
    /// Epochs per stage.
    pub epochs: usize,
    /// Epochs of each stage, overriding `epochs` (empty: `epochs` for every stage). Small late
    /// stages are cheap and decide the final accuracy, so they may get more.
    pub stage_epochs: Vec<usize>,
    /// Optimiser steps per epoch.
    pub steps_per_epoch: usize,
    /// Genuine pairs per batch; as many impostor pairs are added (250 + 250 in the original).
    pub num_pairs: usize,
    /// Initial learning rate (Adam).
    pub lr: f64,
    /// Adam β₁.
    pub beta1: f32,
    /// Adam β₂.
    pub beta2: f32,
    /// Adam ε.
    pub epsilon: f32,
    /// L2 weight decay.
    pub weight_decay: f32,
    /// Steps (counted within a stage) at which the learning rate factor changes.
    pub lr_decay_steps: Vec<usize>,
    /// Learning-rate factor from the matching step of `lr_decay_steps` on (same length).
    pub lr_decay_factors: Vec<f64>,
    /// Read `lr_decay_steps` as per-mille of each stage's total steps instead of absolute steps
    /// (so one schedule fits stages of different lengths).
    pub lr_decay_relative: bool,
    /// Freeze the earlier stages while a stage trains (otherwise they are trained with it).
    pub freeze: bool,
    /// Per-stage override of `freeze` (empty: `freeze` for every stage). An unfrozen stage is
    /// trained end to end with every stage before it, each earlier output kept in the loss
    /// with weight `loss.earlier_stage_weight`.
    pub stage_freeze: Vec<bool>,
    /// Seed of initialisation and pair sampling.
    pub seed: u64,
    /// Rows per batch when projecting (validation, inference).
    pub inference_batch: usize,
    /// Validate every this many epochs (the last epoch is always validated).
    pub validate_every: usize,
    /// Stop a stage after this many validations without a better validation rank-1 (0: train
    /// every epoch). With it, `epochs` is a ceiling: training runs until validation stops
    /// improving, and the best epoch is kept.
    pub patience: usize,
    /// Seconds of training allowed in all (0: no limit), shared equally by the stages (or the
    /// contrastive heads) still to train; one past its share stops after the epoch it is in
    /// (best epoch kept).
    pub time_budget_s: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            method: Method::DeepMdsPlusPlus,
            backend: Backend::Cpu,
            epochs: 200,
            stage_epochs: Vec::new(),
            steps_per_epoch: 1000,
            num_pairs: 250,
            lr: 3e-4,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 4e-5,
            lr_decay_steps: vec![25_000, 50_000, 75_000, 100_000, 125_000, 150_000],
            lr_decay_factors: vec![0.9, 0.5, 0.1, 0.05, 0.02, 0.01],
            lr_decay_relative: false,
            freeze: true,
            stage_freeze: Vec::new(),
            seed: 42,
            inference_batch: 4096,
            validate_every: 1,
            patience: 0,
            time_budget_s: 0.0,
        }
    }
}

/// Loss weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `l1` (original code) or `l2` (slides).
    pub kind: LossKind,
    /// Weight of the genuine-pair distance term.
    pub genuine_weight: f32,
    /// Weight of the impostor-pair distance term.
    pub impostor_weight: f32,
    /// λ, the covariance-penalty weight (10 in the original).
    pub covariance_weight: f32,
    /// Weight of the ranking term (method `deepmds-rank` only).
    pub ranking_weight: f32,
    /// Softmax temperature of the ranking term.
    pub ranking_temperature: f32,
    /// Weight of the loss on each earlier stage's output when stages are trained end to end
    /// (unfrozen), so their outputs stay usable.
    pub earlier_stage_weight: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: LossKind::L1,
            genuine_weight: 1.0,
            impostor_weight: 1.0,
            covariance_weight: 10.0,
            ranking_weight: 1.0,
            ranking_temperature: 0.05,
            earlier_stage_weight: 1.0,
        }
    }
}

/// One step of the mining schedule: keep `keep` hard pairs of each kind while `epoch < until_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiningStep {
    /// First epoch (0-based, within a stage) this step no longer applies to.
    pub until_epoch: usize,
    /// Hard pairs of each kind kept per batch.
    pub keep: usize,
}

/// Hard-pair mining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningConfig {
    /// Candidate pairs of each kind ranked per batch (1000 in the original).
    pub candidates: usize,
    /// Hard pairs kept, by epoch; after the last step `final_keep` applies.
    pub schedule: Vec<MiningStep>,
    /// Hard pairs kept after the schedule (250 in the original: the whole batch).
    pub final_keep: usize,
}

impl Default for MiningConfig {
    fn default() -> Self {
        MiningConfig {
            candidates: 1000,
            schedule: vec![
                MiningStep { until_epoch: 50, keep: 50 },
                MiningStep { until_epoch: 100, keep: 100 },
                MiningStep { until_epoch: 150, keep: 150 },
            ],
            final_keep: 250,
        }
    }
}

impl MiningConfig {
    /// Hard pairs to keep in `epoch` (0-based within a stage).
    pub fn keep_at(&self, epoch: usize) -> usize {
        self.schedule.iter().find(|s| epoch < s.until_epoch).map_or(self.final_keep, |s| s.keep)
    }
}

/// The linear baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearConfig {
    /// LDA shrinkage α ∈ [0, 1]: S_w ← (1−α)·S_w + α·(tr S_w / d)·I.
    pub shrinkage: f64,
    /// Components fitted (0: the largest stage dimension of `model.stages`).
    pub components: usize,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig { shrinkage: 0.1, components: 0 }
    }
}

/// The map a contrastive head starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeadInit {
    /// The shrinkage-LDA projection (supervised: the best linear start).
    #[default]
    Lda,
    /// The PCA projection.
    Pca,
}

/// The shape of a contrastive head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// One linear map (plus bias): the initial linear projection, fine-tuned.
    #[default]
    Linear,
    /// The linear map plus a residual MLP branch `Linear → ReLU → Linear` whose last layer starts
    /// at zero, so training still starts exactly at the linear projection.
    Mlp,
}

/// The supervised contrastive method (`supcon`): one head per output dimension of
/// `model.stages`, each started from the first `k` columns of the fitted linear map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContrastiveConfig {
    /// The starting map.
    pub init: HeadInit,
    /// Linear head, or linear plus a residual MLP.
    pub head: HeadKind,
    /// Hidden width of the MLP branch (`head = "mlp"`).
    pub mlp_hidden: usize,
    /// Identities per batch (P); capped at the number of training identities.
    pub identities_per_batch: usize,
    /// Samples of each identity per batch (K); identities with fewer repeat samples.
    pub samples_per_identity: usize,
    /// Softmax temperature τ of the loss (logits = cosine / τ).
    pub temperature: f32,
    /// Peak learning rate (AdamW), decayed to zero along a cosine over `max_epochs`.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Most epochs per head (an epoch: every training identity once).
    pub max_epochs: usize,
    /// Stop a head after this many epochs without a lower validation loss (0: never).
    pub patience: usize,
    /// Probe draws averaged per validation (rank-1 on a few hundred identities is noisy).
    pub validation_draws: usize,
}

impl Default for ContrastiveConfig {
    fn default() -> Self {
        ContrastiveConfig {
            init: HeadInit::Lda,
            head: HeadKind::Linear,
            mlp_hidden: 256,
            identities_per_batch: 256,
            samples_per_identity: 5,
            temperature: 0.05,
            lr: 4e-3,
            weight_decay: 1e-4,
            max_epochs: 40,
            patience: 8,
            validation_draws: 5,
        }
    }
}

impl Config {
    /// Reads and validates a TOML config.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg = Self::from_toml(&text).map_err(|e| match e {
            Error::ConfigParse { message, .. } => Error::ConfigParse { path: path.into(), message },
            other => other,
        })?;
        Ok(cfg)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: Config = toml::from_str(text)
            .map_err(|e| Error::ConfigParse { path: PathBuf::from("<config>"), message: e.to_string() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as TOML (what a model directory stores).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::config("<config>", e.to_string()))
    }

    /// Largest dimension the linear methods fit.
    pub fn linear_components(&self) -> usize {
        if self.linear.components > 0 {
            self.linear.components
        } else {
            self.model.stages.iter().copied().max().unwrap_or(0)
        }
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<()> {
        let s = &self.model.stages;
        if s.is_empty() {
            return Err(Error::config("model.stages", "needs at least one stage output dimension"));
        }
        if s.contains(&0) || s.windows(2).any(|w| w[1] >= w[0]) {
            return Err(Error::config(
                "model.stages",
                format!("{s:?}: dimensions must be ≥ 1 and strictly decreasing"),
            ));
        }
        if self.model.hidden_layers == 0 {
            return Err(Error::config("model.hidden_layers", "must be at least 1"));
        }
        let t = &self.train;
        if t.epochs == 0 || t.steps_per_epoch == 0 {
            return Err(Error::config("train.epochs", "epochs and steps_per_epoch must be ≥ 1"));
        }
        if t.num_pairs < 2 {
            return Err(Error::config("train.num_pairs", "must be at least 2"));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(Error::config("train.lr", "must be a positive number"));
        }
        if t.lr_decay_steps.len() != t.lr_decay_factors.len() {
            return Err(Error::config("train.lr_decay_factors", "must have as many entries as train.lr_decay_steps"));
        }
        if t.lr_decay_steps.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::config("train.lr_decay_steps", "must be strictly increasing"));
        }
        if !t.stage_epochs.is_empty() && t.stage_epochs.len() != self.model.stages.len() {
            return Err(Error::config("train.stage_epochs", "must be empty or have one entry per stage"));
        }
        if !t.stage_freeze.is_empty() && t.stage_freeze.len() != self.model.stages.len() {
            return Err(Error::config("train.stage_freeze", "must be empty or have one entry per stage"));
        }
        if t.stage_epochs.contains(&0) {
            return Err(Error::config("train.stage_epochs", "every stage needs at least one epoch"));
        }
        if !(t.time_budget_s >= 0.0 && t.time_budget_s.is_finite()) {
            return Err(Error::config("train.time_budget_s", "must be 0 (no limit) or a positive number of seconds"));
        }
        if t.inference_batch == 0 || t.validate_every == 0 {
            return Err(Error::config("train.inference_batch", "inference_batch and validate_every must be ≥ 1"));
        }
        if !(0.0..1.0).contains(&self.data.validation_fraction) {
            return Err(Error::config("data.validation_fraction", "must be in [0, 1)"));
        }
        if !(0.0..=1.0).contains(&self.linear.shrinkage) {
            return Err(Error::config("linear.shrinkage", "must be in [0, 1]"));
        }
        if self.loss.ranking_temperature <= 0.0 {
            return Err(Error::config("loss.ranking_temperature", "must be positive"));
        }
        if self.mining.candidates == 0 {
            return Err(Error::config("mining.candidates", "must be ≥ 1"));
        }
        let c = &self.contrastive;
        if c.identities_per_batch < 2 || c.samples_per_identity < 2 {
            return Err(Error::config(
                "contrastive.identities_per_batch",
                "identities_per_batch and samples_per_identity must be ≥ 2 (positives and negatives per batch)",
            ));
        }
        if !(c.temperature > 0.0 && c.temperature.is_finite()) {
            return Err(Error::config("contrastive.temperature", "must be a positive number"));
        }
        if !(c.lr > 0.0 && c.lr.is_finite()) {
            return Err(Error::config("contrastive.lr", "must be a positive number"));
        }
        if c.max_epochs == 0 || c.validation_draws == 0 {
            return Err(Error::config("contrastive.max_epochs", "max_epochs and validation_draws must be ≥ 1"));
        }
        if c.head == HeadKind::Mlp && c.mlp_hidden == 0 {
            return Err(Error::config("contrastive.mlp_hidden", "must be ≥ 1 for head = \"mlp\""));
        }
        Ok(())
    }

    /// The training set of a learned method, normalised and split by identity as `[data]` says.
    pub fn split(&self, set: &embeddings::EmbeddingSet) -> crate::data::TrainValidation {
        let d = &self.data;
        crate::data::TrainValidation::split(
            &set.data,
            &set.labels,
            set.dim,
            d.validation_fraction,
            d.max_validation_identities,
            d.split_seed,
        )
    }

    /// Whether the stages before `s` are frozen while `s` trains.
    pub fn freeze_of(&self, s: usize) -> bool {
        self.train.stage_freeze.get(s).copied().unwrap_or(self.train.freeze)
    }

    /// Epochs of stage `s`.
    pub fn epochs_of(&self, s: usize) -> usize {
        self.train.stage_epochs.get(s).copied().unwrap_or(self.train.epochs)
    }

    /// Learning rate of `supcon` at `step` of `total`: a cosine from `contrastive.lr` to zero.
    pub fn contrastive_lr_at(&self, step: usize, total: usize) -> f64 {
        let t = step as f64 / total.max(1) as f64;
        self.contrastive.lr * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }

    /// Learning rate at `step` of stage `s`, counted within the stage (see [`Config::lr_at`]).
    pub fn lr_in_stage(&self, s: usize, step: usize) -> f64 {
        if self.train.lr_decay_relative {
            let total = (self.epochs_of(s) * self.train.steps_per_epoch).max(1);
            self.lr_at(step * 1000 / total)
        } else {
            self.lr_at(step)
        }
    }

    /// Learning rate at `step` (counted within a stage): `lr` times the factor of the last
    /// decay step reached.
    pub fn lr_at(&self, step: usize) -> f64 {
        let t = &self.train;
        let f = t
            .lr_decay_steps
            .iter()
            .zip(&t.lr_decay_factors)
            .filter(|(s, _)| step >= **s)
            .map(|(_, f)| *f)
            .next_back()
            .unwrap_or(1.0);
        t.lr * f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_validate() {
        let c = Config::default();
        c.validate().expect("defaults are valid");
        let back = Config::from_toml(&c.to_toml().expect("toml")).expect("parse");
        assert_eq!(back, c);
    }

    #[test]
    fn schedules() {
        let c = Config::default();
        assert_eq!(c.lr_at(0), 3e-4);
        assert!((c.lr_at(25_000) - 3e-4 * 0.9).abs() < 1e-12);
        assert!((c.lr_at(160_000) - 3e-4 * 0.01).abs() < 1e-12);
        assert_eq!(c.mining.keep_at(0), 50);
        assert_eq!(c.mining.keep_at(50), 100);
        assert_eq!(c.mining.keep_at(149), 150);
        assert_eq!(c.mining.keep_at(150), 250);
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml("[model]\nstages = [16, 32]").expect_err("increasing");
        assert!(e.to_string().contains("model.stages"), "{e}");
        let e = Config::from_toml("[train]\nmethod = \"tsne\"").expect_err("unknown");
        assert!(e.to_string().contains("tsne"), "{e}");
    }
}
