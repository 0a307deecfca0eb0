//! A model directory used as a cache: load the finished model it holds, or fit one and let the
//! fit write it there (once: [`Reducer::fit`] saves into its `out_dir` itself).

use std::borrow::Borrow;
use std::path::Path;
use std::time::Instant;

use embeddings::EmbeddingSet;

use crate::{Config, Error, ModelMeta, Reducer, Result, TrainOptions};

/// How [`fit_or_load`] treats the model directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheOptions {
    /// Fit even when the directory holds a finished model (overwriting it).
    pub refit: bool,
    /// When fitting a learned method, continue from the stages already trained in the directory.
    pub resume: bool,
    /// Show the training progress bar on stderr.
    pub progress: bool,
}

/// A reducer from [`fit_or_load`].
#[derive(Debug)]
pub struct Fitted {
    /// The fitted or loaded reducer.
    pub reducer: Reducer,
    /// Its metadata, as written in the directory.
    pub meta: ModelMeta,
    /// True when the directory held a finished model and it was loaded.
    pub loaded: bool,
    /// Seconds of fitting: measured now when fitted, the recorded training time when loaded.
    pub seconds: f64,
}

/// Loads the finished model in `dir`, or fits the method of `config` on the set that `train`
/// returns (called only when fitting, so a cached model costs no read of the training set) and
/// writes it into `dir`. Fails when `dir` holds a finished model of another method.
pub fn fit_or_load<S: Borrow<EmbeddingSet>>(
    config: &Config,
    dir: &Path,
    options: CacheOptions,
    train: impl FnOnce() -> Result<S>,
) -> Result<Fitted> {
    if !options.refit {
        match Reducer::load(dir, None) {
            Ok((reducer, _, meta)) => {
                if meta.method != config.train.method {
                    return Err(Error::model(
                        dir,
                        format!(
                            "holds a `{}` model, not `{}`: remove it or choose another directory",
                            meta.method, config.train.method
                        ),
                    ));
                }
                let seconds = meta.train_seconds;
                return Ok(Fitted { reducer, meta, loaded: true, seconds });
            }
            // Missing, unfinished or unreadable: fit (resuming what can be resumed).
            Err(e) => tracing::debug!("{}: no finished model to reuse ({e})", dir.display()),
        }
    }
    let train = train()?;
    let start = Instant::now();
    let fit_options =
        TrainOptions { out_dir: Some(dir.to_path_buf()), resume: options.resume, progress: options.progress };
    let (reducer, meta) = Reducer::fit(config, train.borrow(), &fit_options)?;
    Ok(Fitted { reducer, meta, loaded: false, seconds: start.elapsed().as_secs_f64() })
}
