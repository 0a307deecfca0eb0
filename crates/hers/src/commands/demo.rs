//! `hers demo`: the pipeline on the shipped data, one table at the end.

use std::path::{Path, PathBuf};

use anyhow::Context;
use embeddings::{Preset, SynthSpec, synth_to_parquet};
use eval::{EvalOptions, evaluate};

/// Arguments of `hers demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder with the shipped data (default: `data/` of the working directory or of the checkout).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the demo writes its files.
    #[arg(long, default_value = "experiments/demo")]
    out: PathBuf,
}

/// Finds the shipped `data/` folder.
pub fn data_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let candidates = given.into_iter().chain([
        PathBuf::from("data"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    ]);
    for c in candidates {
        if c.join("bible-minilm-test.parquet").exists() {
            return Ok(c);
        }
    }
    anyhow::bail!("cannot find data/bible-minilm-test.parquet; run the demo from the repository root or pass --data DIR")
}

/// Runs the demo.
pub fn run(a: Args) -> anyhow::Result<()> {
    let data = data_dir(a.data)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut rows = Vec::new();

    let test = data.join("bible-minilm-test.parquet");
    let set = embeddings::read_set(&test).with_context(|| format!("reading {}", test.display()))?;
    let opts = EvalOptions::default();
    let r = evaluate(&set, &opts)?;
    rows.push(("bible-minilm test, plaintext full-D".to_string(), r));

    let synth = a.out.join("synth-arcface.parquet");
    let spec = SynthSpec::preset(Preset::Arcface, 2000, 5, 1);
    let pb = crate::progress::bar(spec.rows() as u64, "synth");
    synth_to_parquet(&spec, &synth, &pb)?;
    pb.finish_and_clear();
    let set = embeddings::read_set(&synth)?;
    let r = evaluate(&set, &opts)?;
    rows.push(("synthetic ArcFace-like, plaintext 512-D".to_string(), r));

    println!("| set | dim | probes | gallery | rank-1 | rank-10 | TAR@FAR=1e-3 | time (s) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, r) in &rows {
        let tar = r.tar_at_far.get(1).and_then(|t| t.1).map_or("n/a".into(), |t| format!("{t:.4}"));
        println!(
            "| {name} | {} | {} | {} | {:.4} | {:.4} | {tar} | {:.2} |",
            r.dim, r.probes, r.gallery, r.rank1, r.rank10, r.seconds
        );
    }
    println!("\nfiles: {}", a.out.display());
    Ok(())
}
