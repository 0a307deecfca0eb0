//! `hers search`: encrypt, score and decrypt in one process (client and server roles together).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use encsearch::{Client, ClientKeys, Gallery};

use super::query::{load_probes, write_matches};

/// Arguments of `hers search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key directory.
    #[arg(long)]
    keys: PathBuf,
    /// Gallery directory.
    #[arg(long)]
    gallery: PathBuf,
    /// Probes (parquet embedding set of the gallery's dimension).
    #[arg(long)]
    probes: PathBuf,
    /// Results per probe.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Output results (parquet, or CSV for a .csv name): probe_id, rank, gallery_id, score, similarity.
    #[arg(long)]
    out: PathBuf,
}

/// Runs an encrypted search and prints the time of each stage.
pub fn run(a: Args) -> anyhow::Result<()> {
    let keys = ClientKeys::load(&a.keys).with_context(|| format!("loading keys {}", a.keys.display()))?;
    let g = Gallery::open(&a.gallery).with_context(|| format!("opening gallery {}", a.gallery.display()))?;
    g.manifest().public.key_id.ensure_eq(keys.key_id()).context("the gallery was enrolled with another key")?;
    let (ids, dim, data) = load_probes(&a.probes)?;
    if dim != g.manifest().dim {
        anyhow::bail!("probes are {dim}-D, the gallery is {}-D", g.manifest().dim);
    }
    let client = Client::with_quantizer(keys, g.quantizer())?;
    let server = g.server_context()?;
    let t = Instant::now();
    let hot = g.load_hot(&server)?;
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let q = client.encrypt_query(ids, &data, &mut rand::rng())?;
    let enc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = server.score(&q, &hot)?;
    let score = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let m = client.decrypt_top_k(&r, a.top_k)?;
    let dec = t.elapsed().as_secs_f64();
    write_matches(&a.out, &m)?;
    eprintln!(
        "{} probes × {} templates: load {load:.2} s, encrypt {:.1} ms, score {:.1} ms, decrypt+top-k {:.1} ms → {}",
        q.probes.len(),
        g.len(),
        enc * 1e3,
        score * 1e3,
        dec * 1e3,
        a.out.display()
    );
    Ok(())
}
