//! `hers train`: fit a reduction (DeepMDS++, its ablations, PCA or LDA) from a TOML config.

use std::path::PathBuf;

use anyhow::Context;
use dimred::{Backend, Config, Reducer, TrainOptions};

/// Arguments of `hers train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (see `configs/`): training data, stages, method, schedule.
    #[arg(long)]
    config: PathBuf,
    /// Compute backend for the learned methods (overrides `train.backend`).
    #[arg(long)]
    backend: Option<Backend>,
    /// Method (overrides `train.method`): pca, lda, deepmds, deepmds-cov, deepmds++, deepmds-rank, supcon.
    #[arg(long)]
    method: Option<dimred::Method>,
    /// Model directory to write (default: `models/<name>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue after the stages already trained in `--out`.
    #[arg(long)]
    resume: bool,
}

/// Trains and writes the model directory.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut config = Config::from_file(&a.config).with_context(|| format!("reading {}", a.config.display()))?;
    if let Some(b) = a.backend {
        config.train.backend = b;
    }
    if let Some(m) = a.method {
        config.train.method = m;
    }
    let out = a.out.unwrap_or_else(|| PathBuf::from("models").join(&config.name));
    let set = embeddings::read_set(&config.data.train)
        .with_context(|| format!("reading training set {} (data.train)", config.data.train.display()))?;
    eprintln!(
        "training {} on {} ({} rows × {}-D) → {}",
        config.train.method,
        config.data.train.display(),
        set.len(),
        set.dim,
        out.display()
    );
    let options = TrainOptions { out_dir: Some(out.clone()), resume: a.resume, progress: true };
    // fit writes the model directory (after every stage for the learned methods).
    let (_, meta) = Reducer::fit(&config, &set, &options)?;
    let best: Vec<String> = (0..meta.output_dims.len())
        .filter_map(|s| {
            meta.history
                .iter()
                .filter(|e| e.stage == s)
                .filter_map(|e| e.val_rank1)
                .reduce(f64::max)
                .map(|r| format!("{}-D {r:.3}", meta.output_dims[s]))
        })
        .collect();
    if !best.is_empty() {
        eprintln!("validation rank-1 (held-out training identities): {}", best.join(", "));
    }
    eprintln!("trained in {:.1} s; model in {}", meta.train_seconds, out.display());
    Ok(())
}
