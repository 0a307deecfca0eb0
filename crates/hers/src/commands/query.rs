//! `hers query encrypt|score|decrypt`: the three roles of a search as separate steps, and
//! `hers query fine-encrypt|fine-score|fine-decrypt`: the same for the second stage of a
//! two-stage search (what `hers search --two-stage` runs in one process).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use encsearch::{
    Client, Quantizer, Query, Response,
    session::{candidate_lists, probe_order},
    wire::{FineQuery, FineResponse},
};

use super::open::{
    load_hot, load_keys, load_probes, open_gallery, probe_rows, read_matches, server_for, write_matches,
};

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
        /// Ask for a compact answer: the query carries a key with which the server
        /// relinearises the scores (7.6 B per template instead of 15).
        #[arg(long)]
        compact: bool,
        /// Output query file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Server: score an encrypted query against a gallery (no key needed).
    Score {
        #[command(flatten)]
        files: ScoreFiles,
        /// Score straight from the memory-mapped segments without holding the gallery's hot
        /// form in memory (galleries larger than memory; the hot-form preparation is paid per query).
        #[arg(long)]
        stream: bool,
        /// Neither read nor write the hot-form cache files (`seg-N.hot`, 1 KB per template at
        /// 16-D) beside the segments; by default a load maps them, or builds and writes them.
        #[arg(long)]
        no_hot_cache: bool,
    },
    /// Client: decrypt a response and keep the top-k of every probe.
    Decrypt(Decrypt),
    /// Client, second stage: encrypt the full-dimension probes with the candidates the first
    /// stage kept (its `decrypt` output).
    FineEncrypt {
        /// Key directory of the full-dimension gallery.
        #[arg(long)]
        keys: PathBuf,
        /// Full-dimension probes (parquet embedding set; the ids of the first stage).
        #[arg(long)]
        probes: PathBuf,
        /// First-stage results (`hers query decrypt --out`): every row is a candidate.
        #[arg(long)]
        candidates: PathBuf,
        /// The full-dimension gallery (coefficient layout); only its public manifest is read.
        #[arg(long)]
        gallery: PathBuf,
        /// Output query file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Server, second stage: gather and score the candidates' ciphertexts (no key needed; the
    /// server learns the candidate ids, never a score).
    FineScore(ScoreFiles),
    /// Client, second stage: decrypt and rank each probe's candidates.
    FineDecrypt(Decrypt),
}

/// Files of both scoring steps.
#[derive(Debug, clap::Args)]
struct ScoreFiles {
    /// Gallery directory (for `fine-score`, the full-dimension coefficient-layout gallery).
    #[arg(long)]
    gallery: PathBuf,
    /// Encrypted query.
    #[arg(long)]
    query: PathBuf,
    /// Output response file.
    #[arg(long)]
    out: PathBuf,
}

/// The server side of a scoring step: the gallery, its context and the query's bytes, refused
/// up front when the query (key id read by `peek`) was made with another key.
fn open_for_query(
    f: &ScoreFiles,
    peek: fn(&[u8]) -> encsearch::Result<encsearch::keys::KeyId>,
) -> anyhow::Result<(encsearch::Gallery, encsearch::ServerContext, Vec<u8>)> {
    let g = open_gallery(&f.gallery)?;
    let server = server_for(&g)?;
    let bytes = read(&f.query)?;
    g.manifest().public.key_id.ensure_eq(&peek(&bytes)?).context("query made with another key")?;
    Ok((g, server, bytes))
}

/// Arguments of both decryption steps.
#[derive(Debug, clap::Args)]
struct Decrypt {
    /// Key directory (for `fine-decrypt`, the full-dimension gallery's).
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
}

/// Reads `path`, naming it in errors.
fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes `bytes` to `out`, naming it in errors.
fn write(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
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
        Step::Encrypt { keys, probes, gallery, scale, compact, out } => {
            let (ids, dim, data) = load_probes(&probes)?;
            let c = match gallery {
                Some(g) => {
                    let g = open_gallery(&g)?;
                    let keys = load_keys(&keys)?;
                    Client::with_quantizer(keys, g.quantizer())?
                }
                None => client(&keys, dim, scale)?,
            };
            let q = c.encrypt_query_as(ids, &data, compact, &mut rand::rng())?;
            let bytes = q.to_bytes();
            write(&out, &bytes)?;
            eprintln!("encrypted {} probes ({} B) → {}", q.probes.len(), bytes.len(), out.display());
        }
        Step::Score { files, stream, no_hot_cache } => {
            let (g, server, bytes) = open_for_query(&files, Query::peek_key_id)?;
            let out = files.out;
            let q = Query::from_bytes(&bytes, server.bfv(), server.rows())?;
            let t = std::time::Instant::now();
            let hot = if stream { None } else { Some(load_hot(&g, &server, no_hot_cache)?) };
            let load = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let r = match &hot {
                Some(hot) => server.score(&q, hot)?,
                None => server.score(&q, &g)?,
            };
            let score = t.elapsed().as_secs_f64();
            let bytes = r.to_bytes();
            write(&out, &bytes)?;
            eprintln!("loaded gallery in {load:.2} s, scored in {score:.3} s → {} ({} B)", out.display(), bytes.len());
        }
        Step::Decrypt(d) => decrypt(d, false)?,
        Step::FineEncrypt { keys, probes, candidates, gallery, out } => {
            let g = open_gallery(&gallery)?;
            let keys = load_keys(&keys)?;
            g.manifest()
                .public
                .key_id
                .ensure_eq(keys.key_id())
                .context("the fine gallery was enrolled with another key")?;
            let first = read_matches(&candidates)?;
            // Probes in order of first appearance.
            let ids = probe_order(&first);
            let rows = probe_rows(&probes, g.manifest().dim, &ids)?;
            let lists = candidate_lists(&ids, &first);
            let client = Client::with_quantizer(keys, g.quantizer())?;
            let q = client.encrypt_fine_query(ids, &rows, lists, &mut rand::rng())?;
            let bytes = q.to_bytes();
            write(&out, &bytes)?;
            eprintln!(
                "encrypted {} probes with {} candidates ({} B) → {}",
                q.probes.len(),
                first.len(),
                bytes.len(),
                out.display()
            );
        }
        Step::FineScore(files) => {
            let (g, server, bytes) = open_for_query(&files, FineQuery::peek_key_id)?;
            let out = files.out;
            let q = FineQuery::from_bytes(&bytes, server.bfv())?;
            let t = std::time::Instant::now();
            let r = server.score_candidates(&q, &g).context("the fine stage could not gather the candidates")?;
            let score = t.elapsed().as_secs_f64();
            let bytes = r.to_bytes();
            write(&out, &bytes)?;
            eprintln!(
                "gathered {} ciphertexts, scored in {score:.3} s → {} ({} B)",
                r.ciphertexts(),
                out.display(),
                bytes.len()
            );
        }
        Step::FineDecrypt(d) => decrypt(d, true)?,
    }
    Ok(())
}

/// Decrypts a response (of the second stage when `fine`) and writes the ranked results.
fn decrypt(d: Decrypt, fine: bool) -> anyhow::Result<()> {
    let bytes = read(&d.response)?;
    let c = Client::new(load_keys(&d.keys)?, 1)?;
    let m = if fine {
        c.decrypt_fine(&FineResponse::from_bytes(&bytes)?, d.top_k)?
    } else {
        c.decrypt_top_k(&Response::from_bytes(&bytes)?, d.top_k)?
    };
    write_matches(&d.out, &m)?;
    eprintln!("{} results → {}", m.len(), d.out.display());
    Ok(())
}
