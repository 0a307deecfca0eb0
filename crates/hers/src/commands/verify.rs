//! `hers verify`: 1:1 verification — score only the chunk holding the claimed template.

use std::path::PathBuf;

use anyhow::Context;
use encsearch::{Client, GalleryChunk, Metric, Session};

use super::open::{load_keys, load_probes, open_gallery_for, server_for};

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
    let server = server_for(&g)?;
    let claimed = GalleryChunk::holding(&g, &a.claim)?;
    let v = Session::new(&client).verify(
        &ids[row],
        &data[row * dim..(row + 1) * dim],
        &a.claim,
        a.threshold,
        &mut rand::rng(),
        |q| server.score(q, &claimed),
    )?;
    let what = match v.metric {
        Metric::SquaredEuclidean => "squared distance",
        _ => "similarity",
    };
    let verdict = if v.accept { "accept" } else { "reject" };
    println!("{verdict} {} vs {}: {what} {:.4} (threshold {})", ids[row], a.claim, v.value, a.threshold);
    Ok(())
}
