//! The model cache of a sweep: each method is fitted once per dataset, on the dataset's
//! training set, and kept on disk under `<out_dir>/models/` by the hash of its training config
//! and data, so later sweeps (and resumed ones) load it instead of training again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dimred::{CacheOptions, Config as TrainConfig, Method, Reducer, fit_or_load};
use embeddings::EmbeddingSet;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use crate::config::SweepConfig;
use crate::dataset::Dataset;
use crate::{Error, Result};

/// The reducers of the current dataset's methods, with their training seconds.
#[derive(Default)]
pub(crate) struct ModelCache {
    dataset: String,
    fitted: BTreeMap<String, (Reducer, f64)>,
}

impl ModelCache {
    /// The reducer of `method` on `dataset` and its training time (s; a cached model reports
    /// its first fit), fitted or loaded on first use. Asking for another dataset drops the
    /// reducers of the previous one.
    pub(crate) fn get(
        &mut self,
        config: &SweepConfig,
        method: &str,
        dataset: &str,
        data: &Dataset,
        bar: &ProgressBar,
    ) -> Result<(&Reducer, f64)> {
        if self.dataset != dataset {
            self.fitted.clear();
            self.dataset = dataset.to_string();
        }
        if !self.fitted.contains_key(method) {
            let fitted = fit(config, method, dataset, data, bar)?;
            self.fitted.insert(method.to_string(), fitted);
        }
        let (reducer, seconds) = &self.fitted[method];
        Ok((reducer, *seconds))
    }
}

/// Fits (or loads from the cache folder) the reducer of `method` on the dataset's training set.
fn fit(config: &SweepConfig, method: &str, dataset: &str, data: &Dataset, bar: &ProgressBar) -> Result<(Reducer, f64)> {
    let train = data
        .train
        .as_ref()
        .ok_or_else(|| Error::Config(format!("dataset `{dataset}` has no training set for `{method}`")))?;
    let tc = training_config(config, method, train.dim)?;
    let dir = cache_dir(config, &tc, method, dataset, train)?;
    let options = CacheOptions { refit: false, resume: true, progress: false };
    let fitted = fit_or_load(&tc, &dir, options, || {
        bar.set_message(format!("training {method} on {dataset}"));
        Ok(train)
    })?;
    Ok((fitted.reducer, fitted.seconds))
}

/// The sweep's training config for `method`: the shared file (or the default), its method,
/// epochs, steps, patience and time budget overridden by the sweep, its stages fitted to the input dimension.
fn training_config(config: &SweepConfig, method: &str, input_dim: usize) -> Result<TrainConfig> {
    let mut tc = match &config.training {
        Some(p) => TrainConfig::from_file(p)?,
        None => TrainConfig::default(),
    };
    tc.train.method = method.parse::<Method>()?;
    if let Some(e) = config.epochs {
        tc.train.epochs = e;
        tc.train.stage_epochs.clear();
    }
    if let Some(s) = config.steps_per_epoch {
        tc.train.steps_per_epoch = s;
    }
    if let Some(p) = config.patience {
        tc.train.patience = p;
    }
    if let Some(b) = config.time_budget_s {
        tc.train.time_budget_s = b;
    }
    adapt_stages(&mut tc, input_dim, &config.dims);
    Ok(tc)
}

/// `<out_dir>/models/<dataset>-<method>-<hash>`: the hash covers the training config and a
/// fingerprint of the training set, so a changed config or set never reuses a stale model.
fn cache_dir(
    config: &SweepConfig,
    tc: &TrainConfig,
    method: &str,
    dataset: &str,
    train: &EmbeddingSet,
) -> Result<PathBuf> {
    let mut h = Sha256::new();
    h.update(toml::to_string(tc)?);
    h.update(format!(
        "{dataset}:{}:{}:{}",
        train.len(),
        train.dim,
        train.data.iter().take(64).map(|x| x.to_bits() as u64).sum::<u64>()
    ));
    let key = &format!("{:x}", h.finalize())[..16];
    Ok(config.out_dir.join("models").join(format!("{dataset}-{}-{key}", method.replace('+', "p"))))
}

/// Makes the stage chain of the training config (output dimensions of each stage) fit the
/// dataset's input dimension and reach every dimension of the sweep: when it does not, the
/// chain halves from the input down to the smallest dimension, as the paper's chains do.
fn adapt_stages(tc: &mut TrainConfig, input: usize, dims: &[usize]) {
    let stages = &tc.model.stages;
    let fits = stages.first().is_some_and(|&s| s < input) && dims.iter().all(|d| stages.contains(d));
    if fits {
        return;
    }
    let smallest = dims.iter().copied().min().unwrap_or(16);
    let mut stages = Vec::new();
    let mut d = input;
    while d / 2 >= smallest {
        d /= 2;
        stages.push(d);
    }
    for &want in dims {
        if want < input && !stages.contains(&want) {
            stages.push(want);
        }
    }
    stages.sort_unstable_by(|a, b| b.cmp(a));
    stages.dedup();
    tc.model.stages = stages;
}
