//! `hers client search|verify|enroll|remove`: the key holder's side of `hers serve` — encrypt
//! locally, send, decrypt and rank locally; the results file is the one `hers search` writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use encsearch::{Client, ClientKeys, Quantizer, Session, candidate_lists};
use service::{Remote, ServerInfo, read_token};

use super::open::{load_keys, load_probes, probe_rows, write_matches};
use super::search::{FineStage, Ranked};
use super::verify::Claim;

/// Arguments of `hers client`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server address, e.g. http://127.0.0.1:7878.
    #[arg(long, global = true, default_value = "http://127.0.0.1:7878")]
    server: String,
    /// Bearer token file (enroll and remove).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// For an https:// server: trust only this CA certificate (PEM), e.g. the server's own
    /// self-signed certificate (default: the bundled web roots).
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// Seconds one request may take, answer included.
    #[arg(long, global = true, default_value_t = 600)]
    timeout_s: u64,
    /// Ask for full answers (3 parts, 15 B per template at N = 4096) instead of compact ones
    /// (relinearised by the server, 7.6 B per template; the query carries a ≈ 79 KB key). Only
    /// `search` asks for compact answers: `verify`'s answer is one chunk (61 KB), less than the
    /// key would add.
    #[arg(long, global = true)]
    full_answers: bool,
    /// What to do.
    #[command(subcommand)]
    what: What,
}

/// Client operations.
#[derive(Debug, clap::Subcommand)]
enum What {
    /// Encrypted 1:N search (optionally two-stage); writes the same results file as `hers search`.
    Search {
        /// Key directory (the gallery's key set).
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        ranked: Ranked,
        /// Two-stage search against the server's --fine-gallery: the 1:N search keeps
        /// `--candidates` per probe, the full-dimension `--fine-probes` rescore only those.
        #[arg(long, requires = "fine_probes")]
        two_stage: bool,
        #[command(flatten)]
        fine: FineStage,
    },
    /// Encrypted 1:1 verification against a claimed id.
    Verify {
        /// Key directory.
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        claim: Claim,
    },
    /// Encrypt an embedding set locally and enrol it (needs --token-file).
    Enroll {
        /// Key directory.
        #[arg(long)]
        keys: PathBuf,
        /// Embedding set to enrol (parquet).
        #[arg(long)]
        input: PathBuf,
        /// Chunks (of N templates) per request; each request is one durable segment.
        #[arg(long, default_value_t = 8)]
        chunks_per_request: usize,
    },
    /// Remove templates by id (needs --token-file).
    Remove {
        /// Ids to remove (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<String>,
    },
}

/// Runs one client operation.
pub fn run(a: Args) -> anyhow::Result<()> {
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    let ca = a
        .ca_cert
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading --ca-cert {}", p.display())))
        .transpose()?;
    let remote = Remote::with_ca(&a.server, token, Duration::from_secs(a.timeout_s), ca.as_deref())?;
    match a.what {
        What::Search { keys, ranked: Ranked { probes, top_k, out }, two_stage, fine } => {
            let (info, client) = connect(&remote, &keys)?;
            let (ids, dim, data) = load_probes(&probes)?;
            same_dim(dim, &info, &probes)?;
            let first_k = fine.first_k(two_stage, top_k);
            let s = Session::new(&client).with_compact_answers(!a.full_answers).search(
                ids.clone(),
                &data,
                first_k,
                &mut rand::rng(),
                |q| remote.search(q).map_err(Into::into),
            )?;
            eprintln!(
                "{} probes × {} templates (version {:016x}): encrypt {:.1} ms, round trip {:.1} ms, decrypt+top-k {:.1} ms",
                s.probes,
                info.templates,
                info.version,
                s.timings.encrypt * 1e3,
                s.timings.score * 1e3,
                s.timings.decrypt * 1e3
            );
            let matches = match (two_stage, &fine.fine_probes) {
                (true, Some(fp)) => {
                    let served =
                        info.fine.as_ref().context("the server has no fine gallery (hers serve --fine-gallery)")?;
                    let keys = fine.keys(client.into_keys())?;
                    same_key(&keys, &served.public, "the server's fine gallery")?;
                    let rows = probe_rows(fp, served.quantizer.dim, &ids)?;
                    let client = Client::with_quantizer(keys, served.quantizer)?;
                    let r = Session::new(&client).rescore(
                        &ids,
                        &rows,
                        candidate_lists(&ids, &s.matches),
                        top_k,
                        &mut rand::rng(),
                        |q| remote.fine(q).map_err(Into::into),
                    )?;
                    eprintln!(
                        "fine stage: {} candidates in {} ciphertexts: round trip {:.1} ms",
                        r.candidates,
                        r.ciphertexts,
                        r.timings.score * 1e3
                    );
                    r.matches
                }
                _ => s.matches,
            };
            write_matches(&out, &matches)?;
            eprintln!("{} results → {}", matches.len(), out.display());
        }
        What::Verify { keys, claim } => {
            let (info, client) = connect(&remote, &keys)?;
            let (probe_id, row) = claim.probe_row(info.quantizer.dim)?;
            let v = Session::new(&client).verify(
                &probe_id,
                &row,
                &claim.claim,
                claim.threshold,
                &mut rand::rng(),
                |q| remote.verify(q, &claim.claim).map_err(Into::into),
            )?;
            claim.report(&probe_id, &v);
        }
        What::Enroll { keys, input, chunks_per_request } => {
            let (info, client) = connect(&remote, &keys)?;
            let set = embeddings::read_set(&input).with_context(|| format!("reading {}", input.display()))?;
            same_dim(set.dim, &info, &input)?;
            let ids: Vec<String> = (0..set.len()).map(|i| set.ids.display(i)).collect();
            let pb = crate::progress::bar(ids.len() as u64, "enroll");
            let t = std::time::Instant::now();
            let ack = remote
                .enrol_rows(&client, &ids, &set.data, chunks_per_request, &mut rand::rng(), |n| pb.inc(n as u64))?;
            pb.finish_and_clear();
            eprintln!(
                "enrolled {} templates in {:.1} s; the server holds {} (version {:016x})",
                ids.len(),
                t.elapsed().as_secs_f64(),
                ack.templates,
                ack.version
            );
        }
        What::Remove { ids } => {
            let ack = remote.remove(&ids)?;
            eprintln!("removed {} ids; the server holds {} (version {:016x})", ack.changed, ack.templates, ack.version);
        }
    }
    Ok(())
}

/// The server's description and a client for it, refused when the keys are not the gallery's.
fn connect(remote: &Remote, keys: &Path) -> anyhow::Result<(ServerInfo, Client)> {
    let info = remote.info()?;
    let keys = load_keys(keys)?;
    same_key(&keys, &info.public, "the server's gallery")?;
    let q: Quantizer = info.quantizer;
    Ok((info, Client::with_quantizer(keys, q)?))
}

fn same_key(keys: &ClientKeys, public: &encsearch::PublicParams, what: &str) -> anyhow::Result<()> {
    if keys.public() != public {
        anyhow::bail!(
            "{what} is under key {} (N = {}, t = {}), these keys are {} (N = {}, t = {}): use the key set it \
             was enrolled with",
            public.key_id.0,
            public.params.degree,
            public.params.plaintext,
            keys.key_id().0,
            keys.public().params.degree,
            keys.public().params.plaintext
        );
    }
    Ok(())
}

fn same_dim(dim: usize, info: &ServerInfo, file: &Path) -> anyhow::Result<()> {
    if dim != info.quantizer.dim {
        anyhow::bail!("{} is {dim}-D, the server's gallery is {}-D", file.display(), info.quantizer.dim);
    }
    Ok(())
}
