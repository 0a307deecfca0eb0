//! `hers synth`: synthetic embedding sets.

use std::path::PathBuf;

use anyhow::Context;
use embeddings::{Preset, SynthSpec, synth_to_parquet};

/// Arguments of `hers synth`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which model to imitate: arcface (512-D faces), deepprint (192-D fingerprints), imagenet (1536-D images).
    #[arg(long, default_value = "arcface")]
    preset: Preset,
    /// Number of identities (classes).
    #[arg(long)]
    identities: usize,
    /// Samples per identity.
    #[arg(long, default_value_t = 10)]
    per_identity: usize,
    /// Seed: the same arguments and seed give the same rows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Override the embedding dimension.
    #[arg(long)]
    dim: Option<usize>,
    /// Override the intrinsic dimension of the identity manifold (default 16).
    #[arg(long)]
    intrinsic_dim: Option<usize>,
    /// Output parquet file.
    #[arg(long)]
    out: PathBuf,
}

/// Generates the set, streaming it to disk.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut spec = SynthSpec::preset(a.preset, a.identities, a.per_identity, a.seed);
    if let Some(d) = a.dim {
        spec.dim = d;
    }
    if let Some(k) = a.intrinsic_dim {
        spec.intrinsic_dim = k;
    }
    let pb = crate::progress::bar(spec.rows() as u64, "synth");
    let rows = synth_to_parquet(&spec, &a.out, &pb).with_context(|| format!("generating {}", a.out.display()))?;
    pb.finish_and_clear();
    eprintln!("wrote {rows} rows × {}-D to {}", spec.dim, a.out.display());
    Ok(())
}
