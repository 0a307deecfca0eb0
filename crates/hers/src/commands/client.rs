//! `hers client search|verify|enroll|remove`: the key holder's side of `hers serve` or a
//! cluster — encrypt locally, send, decrypt and rank locally, through the client library
//! ([`service::Connection`]); the results file is the one `hers search` writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use encsearch::{Client, Session, session::candidate_lists};
use service::{ConnectOptions, Connection, EnrolOptions, RetryPolicy, SEEN_FILE, ServerInfo, check_keys, read_token};

use super::open::{load_keys, load_probes, probe_rows, write_matches};
use super::search::{FineStage, Ranked};
use super::verify::Claim;

/// Arguments of `hers client`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server address, e.g. http://127.0.0.1:7878.
    #[arg(long, global = true, default_value = "http://127.0.0.1:7878")]
    server: String,
    /// Bearer token file (enroll and remove; also sent with reads when --read-token-file is absent).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Bearer token file for searches and verification (a server with --read-token-file).
    #[arg(long, global = true)]
    read_token_file: Option<PathBuf>,
    /// For an https:// server: trust only this CA certificate (PEM), e.g. the server's own
    /// self-signed certificate (default: the bundled web roots).
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// Seconds one request may take, answer included.
    #[arg(long, global = true, default_value_t = 600)]
    timeout_s: u64,
    /// Ask for full answers (3 parts, 15 B per template at N = 4096) instead of compact ones
    /// (relinearised by the server, 7.6 B per template; the query carries a ≈ 74 KB key). Only
    /// `search` asks for compact answers: `verify`'s answer is one chunk (61 KB), less than the
    /// key would add.
    #[arg(long, global = true)]
    full_answers: bool,
    /// Queries in flight at once when a search is split (the server's probe and body limits).
    #[arg(long, global = true, default_value_t = 2)]
    in_flight: usize,
    /// Tries of a request the server refused for now (429, 503) or whose connection was
    /// refused (a restarting server), first included.
    #[arg(long, global = true, default_value_t = 10)]
    retries: u32,
    /// Seconds within which those retries must start.
    #[arg(long, global = true, default_value_t = 60)]
    retry_s: u64,
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
        /// Finish an interrupted enrolment: send only the rows whose ids the server lacks.
        #[arg(long)]
        resume: bool,
    },
    /// Remove templates by id (needs --token-file).
    Remove {
        /// Key directory of the gallery (the removal is sealed with it).
        #[arg(long)]
        keys: PathBuf,
        /// Ids to remove (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<String>,
    },
}

/// Runs one client operation.
pub fn run(a: Args) -> anyhow::Result<()> {
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    let ca_pem = a
        .ca_cert
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading --ca-cert {}", p.display())))
        .transpose()?;
    let options = ConnectOptions {
        token,
        read_token: a.read_token_file.as_deref().map(read_token).transpose()?,
        ca_pem,
        timeout: Duration::from_secs(a.timeout_s),
        retry: RetryPolicy {
            attempts: a.retries.max(1),
            total: Duration::from_secs(a.retry_s),
            ..RetryPolicy::default()
        },
        compact_answers: !a.full_answers,
        in_flight: a.in_flight.max(1),
        seen_file: None,
    };
    // The seals this key holder has seen live beside its keys (replays and swapped galleries
    // are caught across runs).
    let connect = |keys: &Path| -> anyhow::Result<Connection> {
        let options = ConnectOptions { seen_file: Some(keys.join(SEEN_FILE)), ..options.clone() };
        let keys = load_keys(keys)?;
        Ok(Connection::connect(&a.server, keys, options)?)
    };
    match a.what {
        What::Search { keys, ranked: Ranked { probes, top_k, out }, two_stage, fine } => {
            let server = connect(&keys)?;
            let info = server.info().clone();
            let (ids, dim, data) = load_probes(&probes)?;
            same_dim(dim, &info, &probes)?;
            let first_k = fine.first_k(two_stage, top_k);
            if two_stage && info.fine.is_some() && first_k > info.max_candidates {
                anyhow::bail!(
                    "--candidates {first_k}: the server rescores at most {} candidates per probe",
                    info.max_candidates
                );
            }
            let s = server.search(&ids, &data, first_k)?;
            eprintln!(
                "{} probes × {} templates in {} queries: {:.1} s; encrypt {:.1} ms, round trips {:.1} ms \
                 (decryption overlapping), rest of decrypt+top-k {:.1} ms; {:.1} MB up, {:.1} MB down",
                s.probes,
                info.templates,
                s.queries,
                s.seconds,
                s.timings.encrypt * 1e3,
                s.timings.score * 1e3,
                s.timings.decrypt * 1e3,
                s.transfer.up as f64 / 1e6,
                s.transfer.down as f64 / 1e6
            );
            let matches = match (two_stage, &fine.fine_probes) {
                (true, Some(fp)) => {
                    let served =
                        info.fine.as_ref().context("the server has no fine gallery (hers serve --fine-gallery)")?;
                    let (remote, client) = server.into_parts();
                    let keys = fine.keys(client.into_keys())?;
                    check_keys(&keys, &served.public, "the server's fine gallery")?;
                    let rows = probe_rows(fp, served.quantizer.dim, &ids)?;
                    let client = Client::with_quantizer(keys, served.quantizer)?;
                    let session = Session::new(&client);
                    // One fine query per group of at most the server's probe limit.
                    let per = info.max_probes.max(1);
                    let (mut matches, mut candidates, mut ciphertexts, mut seconds) = (Vec::new(), 0, 0, 0.0);
                    for (group, rows) in ids.chunks(per).zip(rows.chunks(per * served.quantizer.dim)) {
                        let r = session.rescore(
                            group,
                            rows,
                            candidate_lists(group, &s.matches),
                            top_k,
                            &mut rand::rng(),
                            |q| remote.fine(q).map_err(Into::into),
                        )?;
                        matches.extend(r.matches);
                        (candidates, ciphertexts, seconds) =
                            (candidates + r.candidates, ciphertexts + r.ciphertexts, seconds + r.timings.score);
                    }
                    eprintln!(
                        "fine stage: {candidates} candidates in {ciphertexts} ciphertexts: round trips {:.1} ms",
                        seconds * 1e3
                    );
                    matches
                }
                _ => s.matches,
            };
            write_matches(&out, &matches)?;
            eprintln!("{} results → {}", matches.len(), out.display());
        }
        What::Verify { keys, claim } => {
            let server = connect(&keys)?;
            let (probe_id, row) = claim.probe_row(server.info().quantizer.dim)?;
            let v = server.verify(&probe_id, &row, &claim.claim, claim.threshold)?;
            claim.report(&probe_id, &v);
        }
        What::Enroll { keys, input, chunks_per_request, resume } => {
            let server = connect(&keys)?;
            let set = embeddings::read_set(&input).with_context(|| format!("reading {}", input.display()))?;
            same_dim(set.dim, server.info(), &input)?;
            let ids: Vec<String> = (0..set.len()).map(|i| set.ids.display(i)).collect();
            let pb = crate::progress::bar(ids.len() as u64, "enroll");
            let t = std::time::Instant::now();
            let options = EnrolOptions { resume, chunks_per_request };
            let done = server
                .enrol(&ids, &set.data, options, |n| pb.inc(n as u64))
                .with_context(|| format!("enrolling {}", input.display()))?;
            pb.finish_and_clear();
            eprintln!(
                "enrolled {} templates in {:.1} s{}{}; the server holds {} (version {:016x})",
                done.enrolled,
                t.elapsed().as_secs_f64(),
                match done.skipped {
                    0 => String::new(),
                    n => format!(", skipped {n} the server held already"),
                },
                match done.recovered {
                    0 => String::new(),
                    n => format!(", {n} requests found applied after their answer was lost"),
                },
                done.templates,
                done.version
            );
        }
        What::Remove { keys, ids } => {
            let server = connect(&keys)?;
            let ack = server.remove(&ids)?;
            eprintln!("removed {} ids; the server holds {} (version {:016x})", ack.changed, ack.templates, ack.version);
        }
    }
    Ok(())
}

fn same_dim(dim: usize, info: &ServerInfo, file: &Path) -> anyhow::Result<()> {
    if dim != info.quantizer.dim {
        anyhow::bail!("{} is {dim}-D, the server's gallery is {}-D", file.display(), info.quantizer.dim);
    }
    Ok(())
}
