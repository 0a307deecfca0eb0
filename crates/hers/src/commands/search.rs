//! `hers search`: encrypt, score and decrypt in one process (client and server roles together),
//! optionally as a two-stage search (low-dimension 1:N search → full-dimension rescoring of the
//! candidates).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use encsearch::{Client, ClientKeys, Match, Session, session::candidate_lists};

use super::open::{load_hot, load_keys, load_probes, open_gallery_for, probe_rows, server_for, write_matches};

/// Arguments of `hers search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key directory.
    #[arg(long)]
    keys: PathBuf,
    /// Gallery directory.
    #[arg(long)]
    gallery: PathBuf,
    #[command(flatten)]
    ranked: Ranked,
    /// Two-stage search: the 1:N search over `--gallery` keeps `--candidates` per probe, then
    /// the full-dimension `--fine-gallery` rescores only those. The server learns the candidate
    /// ids (not their scores).
    #[arg(long, requires_all = ["fine_gallery", "fine_probes"])]
    two_stage: bool,
    /// Neither read nor write the gallery's hot-form cache files (see `hers query score --help`).
    #[arg(long)]
    no_hot_cache: bool,
    /// Score straight from the at-rest segments, preparing each chunk as it is read: memory
    /// stays at a few chunks per core whatever the gallery's size (its hot form takes 768–1024 B
    /// per template, its segments 154), at the price of that preparation on every query.
    #[arg(long, conflicts_with = "no_hot_cache")]
    stream: bool,
    /// Full-dimension gallery enrolled with `--layout coefficient`, holding the same ids
    /// (under `--fine-keys`, or `--keys` when that is absent).
    #[arg(long, requires = "two_stage")]
    fine_gallery: Option<PathBuf>,
    #[command(flatten)]
    fine: FineStage,
}

/// The key holder's side of a two-stage search (`hers search`, `hers client search`): whose
/// keys, which full-dimension probes, how many candidates.
#[derive(Debug, clap::Args)]
pub struct FineStage {
    /// Key directory of the fine gallery, when it differs from `--keys` (a full-dimension
    /// gallery wants a larger plaintext modulus: `hers keygen --preset n8192`).
    #[arg(long, requires = "two_stage")]
    pub fine_keys: Option<PathBuf>,
    /// Full-dimension probes with the same ids as `--probes` (e.g. the set `--probes` was projected from).
    #[arg(long, requires = "two_stage")]
    pub fine_probes: Option<PathBuf>,
    /// Candidates per probe kept by the first stage.
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

impl FineStage {
    /// Matches the first stage keeps per probe.
    pub fn first_k(&self, two_stage: bool, top_k: usize) -> usize {
        if two_stage { self.candidates.max(top_k) } else { top_k }
    }

    /// The fine gallery's key set: `--fine-keys`, or the first stage's `keys` when absent.
    pub fn keys(&self, keys: ClientKeys) -> anyhow::Result<ClientKeys> {
        match &self.fine_keys {
            Some(k) => load_keys(k),
            None => Ok(keys),
        }
    }
}

/// The probes of a 1:N search and where its ranked results go (`hers search`, `hers client
/// search`).
#[derive(Debug, clap::Args)]
pub struct Ranked {
    /// Probes (parquet embedding set of the gallery's dimension).
    #[arg(long)]
    pub probes: PathBuf,
    /// Results per probe.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Output results (parquet, or CSV for a .csv name): probe_id, rank, gallery_id, score, similarity.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs an encrypted search and prints the time of each stage.
pub fn run(a: Args) -> anyhow::Result<()> {
    let keys = load_keys(&a.keys)?;
    let g = open_gallery_for(&a.gallery, &keys)?;
    let (ids, dim, data) = load_probes(&a.ranked.probes)?;
    if dim != g.manifest().dim {
        anyhow::bail!("probes are {dim}-D, the gallery is {}-D", g.manifest().dim);
    }
    let first_k = a.fine.first_k(a.two_stage, a.ranked.top_k);
    let client = Client::with_quantizer(keys, g.quantizer())?;
    let server = server_for(&g)?;
    let t = Instant::now();
    let hot = if a.stream { None } else { Some(load_hot(&g, &server, a.no_hot_cache)?) };
    let load = t.elapsed().as_secs_f64();
    let s = Session::new(&client).search(ids.clone(), &data, first_k, &mut rand::rng(), |q| match &hot {
        Some(hot) => server.score(q, hot),
        None => server.score(q, &g),
    })?;
    eprintln!(
        "{} probes × {} templates: load {load:.2} s, encrypt {:.1} ms, score {:.1} ms, decrypt+top-k {:.1} ms",
        s.probes,
        g.len(),
        s.timings.encrypt * 1e3,
        s.timings.score * 1e3,
        s.timings.decrypt * 1e3,
    );
    let m = match (a.two_stage, &a.fine_gallery, &a.fine.fine_probes) {
        (true, Some(fg), Some(fp)) => {
            fine_stage(a.fine.keys(client.into_keys())?, fg, fp, &ids, &s.matches, a.ranked.top_k)?
        }
        _ => s.matches,
    };
    write_matches(&a.ranked.out, &m)?;
    eprintln!("{} results → {}", m.len(), a.ranked.out.display());
    Ok(())
}

/// The second stage: rescores each probe's first-stage candidates at full dimension.
fn fine_stage(
    keys: ClientKeys,
    fine: &Path,
    probes: &Path,
    ids: &[String],
    first: &[Match],
    k: usize,
) -> anyhow::Result<Vec<Match>> {
    let g = open_gallery_for(fine, &keys).context("the fine gallery of the two-stage search")?;
    let fdim = g.manifest().dim;
    let rows = probe_rows(probes, fdim, ids)?;
    let client = Client::with_quantizer(keys, g.quantizer())?;
    let server = server_for(&g)?;
    let r = Session::new(&client)
        .rescore(ids, &rows, candidate_lists(ids, first), k, &mut rand::rng(), |q| server.score_candidates(q, &g))
        .context("the fine stage could not gather the candidates")?;
    eprintln!(
        "fine stage: {} candidates in {} ciphertexts ({}-D): encrypt {:.1} ms, gather+score {:.1} ms, decrypt+rank {:.1} ms",
        r.candidates,
        r.ciphertexts,
        fdim,
        r.timings.encrypt * 1e3,
        r.timings.score * 1e3,
        r.timings.decrypt * 1e3
    );
    Ok(r.matches)
}
