//! `hers verify`: 1:1 verification — score only the chunk holding the claimed template.

use std::path::PathBuf;

use anyhow::Context;
use encsearch::{Client, Metric, Session, server::GalleryChunk};

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
    #[command(flatten)]
    claim: Claim,
}

/// A 1:1 claim: the probe row, the claimed id and the threshold (`hers verify`, `hers client
/// verify`).
#[derive(Debug, clap::Args)]
pub struct Claim {
    /// Probe set (parquet); the probe is the row with id `--probe-id`, or the first row.
    #[arg(long)]
    probe: PathBuf,
    /// Id of the probe row in `--probe`.
    #[arg(long)]
    probe_id: Option<String>,
    /// Claimed gallery id.
    #[arg(long)]
    pub claim: String,
    /// Accept when the cosine similarity is at least this (Euclidean metric: when the squared
    /// distance is at most this).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub threshold: f64,
}

impl Claim {
    /// The probe's id and vector, checked to be `dim`-D.
    pub fn probe_row(&self, dim: usize) -> anyhow::Result<(String, Vec<f32>)> {
        let (ids, d, data) = load_probes(&self.probe)?;
        if d != dim {
            anyhow::bail!("{} is {d}-D, the gallery is {dim}-D", self.probe.display());
        }
        let row = match &self.probe_id {
            Some(p) => {
                ids.iter().position(|x| x == p).with_context(|| format!("no probe {p} in {}", self.probe.display()))?
            }
            None => 0,
        };
        let v = data.get(row * d..(row + 1) * d).with_context(|| format!("{} is empty", self.probe.display()))?;
        Ok((ids[row].clone(), v.to_vec()))
    }

    /// Prints the verdict.
    pub fn report(&self, probe_id: &str, v: &encsearch::session::Verified) {
        let what = match v.metric {
            Metric::SquaredEuclidean => "squared distance",
            _ => "similarity",
        };
        let verdict = if v.accept { "accept" } else { "reject" };
        println!("{verdict} {probe_id} vs {}: {what} {:.4} (threshold {})", self.claim, v.value, self.threshold);
    }
}

/// Verifies a claim; prints `accept`/`reject` with the similarity.
pub fn run(a: Args) -> anyhow::Result<()> {
    let keys = load_keys(&a.keys)?;
    let g = open_gallery_for(&a.gallery, &keys)?;
    let (probe_id, row) = a.claim.probe_row(g.manifest().dim)?;
    let client = Client::with_quantizer(keys, g.quantizer())?;
    let server = server_for(&g)?;
    let claimed = GalleryChunk::holding(&g, &a.claim.claim)?;
    let v =
        Session::new(&client).verify(&probe_id, &row, &a.claim.claim, a.claim.threshold, &mut rand::rng(), |q| {
            server.score(q, &claimed)
        })?;
    a.claim.report(&probe_id, &v);
    Ok(())
}
