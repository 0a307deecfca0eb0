//! `hers query encrypt|score|decrypt`: the three roles of a search as separate steps.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use encsearch::{Client, Match, Query, Quantizer, Response};

use super::open::{load_keys, open_gallery};

/// Arguments of `hers query`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which step.
    #[command(subcommand)]
    step: Step,
}

/// The steps of a query.
#[derive(Debug, clap::Subcommand)]
enum Step {
    /// Client: quantise and encrypt probes.
    Encrypt {
        /// Key directory.
        #[arg(long)]
        keys: PathBuf,
        /// Probes (parquet embedding set).
        #[arg(long)]
        probes: PathBuf,
        /// Gallery whose quantiser (scale, metric) to use; only its public manifest is read.
        #[arg(long)]
        gallery: Option<PathBuf>,
        /// Quantisation scale without `--gallery` (default: the key's cosine default).
        #[arg(long)]
        scale: Option<u32>,
        /// Output query file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Server: score an encrypted query against a gallery (no key needed).
    Score {
        /// Gallery directory.
        #[arg(long)]
        gallery: PathBuf,
        /// Encrypted query.
        #[arg(long)]
        query: PathBuf,
        /// Output response file.
        #[arg(long)]
        out: PathBuf,
        /// Score straight from the memory-mapped segments without holding the gallery's hot
        /// form in memory (galleries larger than memory; the hot-form preparation is paid per query).
        #[arg(long)]
        stream: bool,
    },
    /// Client: decrypt a response and keep the top-k of every probe.
    Decrypt {
        /// Key directory.
        #[arg(long)]
        keys: PathBuf,
        /// Encrypted response.
        #[arg(long)]
        response: PathBuf,
        /// Results per probe.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// Output results (parquet, or CSV for a .csv name): probe_id, rank, gallery_id, score, similarity.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Loads a probe set: ids and row-major data.
pub(crate) fn load_probes(path: &Path) -> anyhow::Result<(Vec<String>, usize, Vec<f32>)> {
    let set = embeddings::read_set(path).with_context(|| format!("reading probes {}", path.display()))?;
    let ids = (0..set.len()).map(|i| set.ids.display(i)).collect();
    Ok((ids, set.dim, set.data))
}

/// Writes results (`probe_id, rank, gallery_id, score, similarity`): parquet, or CSV for `.csv`.
pub(crate) fn write_matches(path: &Path, matches: &[Match]) -> anyhow::Result<()> {
    eval::write_matches(path, matches).with_context(|| format!("writing {}", path.display()))
}

fn client(keys: &Path, dim: usize, scale: Option<u32>) -> anyhow::Result<Client> {
    let keys = load_keys(keys)?;
    let q = match scale {
        Some(s) => Quantizer::with_scale(&keys.public().params, dim, s)?,
        None => Quantizer::new(&keys.public().params, dim)?,
    };
    Ok(Client::with_quantizer(keys, q)?)
}

/// Runs one step.
pub fn run(a: Args) -> anyhow::Result<()> {
    match a.step {
        Step::Encrypt { keys, probes, gallery, scale, out } => {
            let (ids, dim, data) = load_probes(&probes)?;
            let c = match gallery {
                Some(g) => {
                    let g = open_gallery(&g)?;
                    let keys = load_keys(&keys)?;
                    Client::with_quantizer(keys, g.quantizer())?
                }
                None => client(&keys, dim, scale)?,
            };
            let q = c.encrypt_query(ids, &data, &mut rand::rng())?;
            let bytes = q.to_bytes();
            fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("encrypted {} probes ({} B) → {}", q.probes.len(), bytes.len(), out.display());
        }
        Step::Score { gallery, query, out, stream } => {
            let g = open_gallery(&gallery)?;
            let server = g.server_context()?;
            let bytes = fs::read(&query).with_context(|| format!("reading {}", query.display()))?;
            g.manifest().public.key_id.ensure_eq(&Query::peek_key_id(&bytes)?).context("query made with another key")?;
            let q = Query::from_bytes(&bytes, server.bfv(), server.dim())?;
            let t = std::time::Instant::now();
            let hot = if stream { None } else { Some(g.load_hot(&server)?) };
            let load = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let r = match &hot {
                Some(hot) => server.score(&q, hot)?,
                None => server.score_streaming(&q, &g)?,
            };
            let score = t.elapsed().as_secs_f64();
            let bytes = r.to_bytes();
            fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("loaded gallery in {load:.2} s, scored in {score:.3} s → {} ({} B)", out.display(), bytes.len());
        }
        Step::Decrypt { keys, response, top_k, out } => {
            let bytes = fs::read(&response).with_context(|| format!("reading {}", response.display()))?;
            let r = Response::from_bytes(&bytes)?;
            let keys = load_keys(&keys)?;
            let c = Client::new(keys, 1)?;
            let m = c.decrypt_top_k(&r, top_k)?;
            write_matches(&out, &m)?;
            eprintln!("{} results → {}", m.len(), out.display());
        }
    }
    Ok(())
}
