//! `hers eval`: plaintext identification and verification of an embedding set, or a whole
//! sweep from a config file.

use std::path::PathBuf;

use anyhow::Context;
use eval::{EvalOptions, EvalReport, evaluate};

/// Arguments of `hers eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The embedding set (parquet).
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    input: Option<PathBuf>,
    /// A sweep config (`configs/sweep-*.toml`): datasets × methods × dimensions × modes ×
    /// gallery sizes, written to `experiments/<name>/<timestamp>/`; an interrupted sweep resumes.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the probe draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seeded draws to average (seed, seed+1, …).
    #[arg(long, default_value_t = 1)]
    draws: usize,
    /// Also report rank-1 on the vectors quantised as encrypted search packs them.
    #[arg(long)]
    quantize: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the probe ids of the first draw to this JSON file (to check results elsewhere).
    #[arg(long)]
    split_out: Option<PathBuf>,
}

/// Loads the set, runs the protocol and prints the metrics (or runs a sweep).
pub fn run(a: Args) -> anyhow::Result<()> {
    if let Some(config) = &a.config {
        return sweep(config, a.json);
    }
    let Some(input) = a.input.clone() else { anyhow::bail!("give --input or --config") };
    let spinner = crate::progress::spinner("loading");
    let set = embeddings::read_set(&input).with_context(|| format!("reading {}", input.display()))?;
    spinner.set_message("searching");
    let opts = EvalOptions { seed: a.seed, draws: a.draws, quantize: a.quantize, ..EvalOptions::default() };
    let report = evaluate(&set, &opts).context("evaluating")?;
    spinner.finish_and_clear();
    if let Some(path) = &a.split_out {
        let split = eval::split_one_probe_per_identity(&set.labels, a.seed)?;
        let ids: Vec<String> = split.probes.iter().map(|&r| set.ids.display(r)).collect();
        std::fs::write(path, serde_json::to_string(&serde_json::json!({ "probe_ids": ids }))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&input.display().to_string(), &report));
    }
    Ok(())
}

fn sweep(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let config = eval::SweepConfig::from_file(path)?;
    let out = eval::run_sweep(&config, true).with_context(|| format!("running the sweep in {}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string(&out.results)?);
    } else {
        print!("{}", eval::summary(&out.results));
        eprintln!(
            "\n{} cells ({} computed now, {} from an earlier interrupted run); results, tables and plots in {}",
            out.results.len(),
            out.computed,
            out.results.len() - out.computed,
            out.dir.display()
        );
    }
    Ok(())
}

/// The report as a small markdown table.
pub fn table(name: &str, r: &EvalReport) -> String {
    let mut s = format!(
        "{name}: {} rows, {}-D, {} identities; {} probes vs {} gallery templates, {} draw(s), {:.2} s\n\n",
        r.rows, r.dim, r.identities, r.probes, r.gallery, r.draws, r.seconds
    );
    s += "| metric | value |\n|---|---|\n";
    s += &format!("| rank-1 | {:.4} |\n| rank-5 | {:.4} |\n| rank-10 | {:.4} |\n", r.rank1, r.rank5, r.rank10);
    if let Some((scale, rank1)) = r.quantized {
        s += &format!("| rank-1, quantised as encrypted (scale {scale}) | {rank1:.4} |\n");
    }
    for (far, tar) in &r.tar_at_far {
        let v = tar.map_or("n/a (too few impostors)".to_string(), |t| format!("{t:.4}"));
        s += &format!("| TAR @ FAR {far:.0e} | {v} |\n");
    }
    s
}
