//! `hers verify`: 1:1 verification — score only the chunk holding the claimed template.

use std::path::PathBuf;

use anyhow::Context;
use encsearch::{Client, Metric};

use super::open::{load_keys, open_gallery_for};
use super::query::load_probes;

/// Arguments of `hers verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key directory.
    #[arg(long)]
    keys: PathBuf,
    /// Gallery directory.
    #[arg(long)]
    gallery: PathBuf,
    /// Probe set (parquet); the probe is the row with id `--probe-id`, or the first row.
    #[arg(long)]
    probe: PathBuf,
    /// Id of the probe row in `--probe`.
    #[arg(long)]
    probe_id: Option<String>,
    /// Claimed gallery id.
    #[arg(long)]
    claim: String,
    /// Accept when the cosine similarity is at least this (Euclidean metric: when the squared
    /// distance is at most this).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    threshold: f64,
}

/// Verifies a claim; prints `accept`/`reject` with the similarity.
pub fn run(a: Args) -> anyhow::Result<()> {
    let keys = load_keys(&a.keys)?;
    let g = open_gallery_for(&a.gallery, &keys)?;
    let (ids, dim, data) = load_probes(&a.probe)?;
    let row = match &a.probe_id {
        Some(p) => ids.iter().position(|x| x == p).with_context(|| format!("no probe {p}"))?,
        None => 0,
    };
    if data.len() < (row + 1) * dim {
        anyhow::bail!("empty probe set");
    }
    let client = Client::with_quantizer(keys, g.quantizer())?;
    let server = g.server_context()?;
    let (chunk, slot) = g.locate(&a.claim)?;
    let hot = server.prepare_chunk(&g.chunk(chunk, &server)?)?;
    let q = client.encrypt_query(vec![ids[row].clone()], &data[row * dim..(row + 1) * dim], &mut rand::rng())?;
    let scores = server.score_probe(&q.probes[0], std::slice::from_ref(&hot))?;
    let s = client.decrypt_chunk(&scores[0])?[slot];
    let v = client.quantizer().dequantize_score(s);
    let (accept, what) = match client.quantizer().metric {
        Metric::SquaredEuclidean => (v <= a.threshold, "squared distance"),
        _ => (v >= a.threshold, "similarity"),
    };
    let verdict = if accept { "accept" } else { "reject" };
    println!("{verdict} {} vs {}: {what} {v:.4} (threshold {})", ids[row], a.claim, a.threshold);
    Ok(())
}
