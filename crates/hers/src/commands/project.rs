//! `hers project`: reduce an embedding set with a trained model (the export for encrypted search).

use std::path::PathBuf;

use anyhow::Context;
use dimred::{Backend, Reducer, project_file};

/// Arguments of `hers project`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory written by `hers train`.
    #[arg(long)]
    model: PathBuf,
    /// Embedding set to project (parquet with id, label, embedding; extra columns are kept).
    #[arg(long)]
    input: PathBuf,
    /// Output parquet.
    #[arg(long)]
    out: PathBuf,
    /// Output dimension (a stage output of the model; default: the smallest).
    #[arg(long)]
    dim: Option<usize>,
    /// Compute backend for learned models.
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

/// Projects `--input` into `--out`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let (reducer, _, meta) =
        Reducer::load(&a.model, Some(a.backend)).with_context(|| format!("loading model {}", a.model.display()))?;
    let stats = project_file(&reducer, &a.input, &a.out, a.dim)?;
    eprintln!(
        "projected {} rows {}-D → {}-D with {} in {:.1} s → {}",
        stats.rows,
        stats.input_dim,
        stats.output_dim,
        meta.method,
        stats.seconds,
        a.out.display()
    );
    Ok(())
}
