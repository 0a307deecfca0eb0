//! `hers import`: `.npy` features of the original HERS code to parquet.

use std::path::PathBuf;

use anyhow::Context;
use embeddings::{NpyImport, import_npy};

/// Arguments of `hers import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// float32 feature matrix, N×D (or D×N with --dimension-major).
    #[arg(long)]
    features: PathBuf,
    /// Integer labels, one per template.
    #[arg(long)]
    labels: PathBuf,
    /// Integer ids, one per template (default: row numbers).
    #[arg(long)]
    ids: Option<PathBuf>,
    /// The feature file is D×N: one row per dimension.
    #[arg(long)]
    dimension_major: bool,
    /// Output parquet file.
    #[arg(long)]
    out: PathBuf,
}

/// Reads, validates and writes the set.
pub fn run(a: Args) -> anyhow::Result<()> {
    let spec = NpyImport { features: a.features, labels: a.labels, ids: a.ids, dimension_major: a.dimension_major };
    let (n, d) = import_npy(&spec, &a.out).with_context(|| format!("importing into {}", a.out.display()))?;
    eprintln!("wrote {n} rows × {d}-D to {}", a.out.display());
    Ok(())
}
