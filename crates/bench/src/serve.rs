//! `hers bench serve`: closed-loop load against a running server — C clients, each sending its
//! next query when the previous answer has arrived whole — and the enrolment path: throughput,
//! and the time from an enrolment's acknowledgement to its first appearance in a search. With a
//! [`Connection`], each query is a whole key-holder search instead (encrypt, send, decrypt the
//! answer while it streams, rank), judged against the same search in process.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use encsearch::Client;
use rand::{CryptoRng, RngCore};
use serde::Serialize;

use service::{Connection, Error, Remote, Result};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server address.
    pub url: String,
    /// Bearer token: with it, the enrolment path is measured too (and its templates removed after).
    pub token: Option<String>,
    /// Concurrent clients of each phase.
    pub clients: Vec<usize>,
    /// Length of each phase.
    pub duration: Duration,
    /// Enrolment requests (one chunk each) to time.
    pub enrolments: usize,
    /// Ask for compact answers (each query carries a compact-answer key).
    pub compact: bool,
}

/// One phase: C clients for the configured duration.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// Concurrent clients.
    pub clients: usize,
    /// Queries answered whole.
    pub queries: usize,
    /// Queries refused with 429.
    pub refused: usize,
    /// Answered queries per second.
    pub qps: f64,
    /// Latency percentiles, milliseconds (request sent → whole answer read and checked frame by
    /// frame; the scores are not unpacked, which is the key holder's work, not the service's —
    /// unless the queries are key-holder searches, which include it).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Templates scored per second (queries/s × gallery slots).
    pub templates_per_s: f64,
    /// Request bytes per query.
    pub bytes_up: f64,
    /// Answer bytes per query (the id table, fetched once per version, not included).
    pub bytes_down: f64,
    /// The server's CPU milliseconds per query answered (from its `/metrics`; `None` where it
    /// does not report its CPU time).
    pub server_cpu_ms: Option<f64>,
}

/// The enrolment path.
#[derive(Debug, Clone, Serialize)]
pub struct EnrolRow {
    /// Requests (one chunk of N templates each).
    pub requests: usize,
    /// Templates enrolled per second (encryption on the client included).
    pub templates_per_s: f64,
    /// Median milliseconds from a request sent to its acknowledgement (durable, swapped in).
    pub ack_ms: f64,
    /// Median milliseconds from the acknowledgement to a search answer that holds the new ids.
    pub visible_ms: f64,
}

/// Everything `hers bench serve` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Templates in the gallery.
    pub templates: usize,
    /// Global slots scored per query.
    pub slots: usize,
    /// One row per client count.
    pub rows: Vec<LoadRow>,
    /// The enrolment path (with a token).
    pub enrol: Option<EnrolRow>,
    /// The same gallery scored in this process, no network (with `--gallery`).
    pub in_process: Option<InProcess>,
    /// Whether each query was a whole key-holder search (else: the service alone).
    pub key_holder: bool,
}

/// The kernel the service wraps, measured in-process on the same gallery: what the service's
/// overhead is judged against.
#[derive(Debug, Clone, Serialize)]
pub struct InProcess {
    /// Median milliseconds to score one single-probe query.
    pub single_ms: f64,
    /// Probes per query in the batched figure: 1 or 4, whichever scored faster (4 probes are one
    /// pass of the IFMA kernel's batch; larger queries are scored in passes of 4 anyway).
    pub batch: usize,
    /// Queries (probes) per second when queries of `batch` probes are scored.
    pub batch_qps: f64,
    /// CPU milliseconds per query in those passes (`None` where the process's CPU time is not
    /// known): what the server's CPU per query is judged against.
    pub batch_cpu_ms: Option<f64>,
    /// Median milliseconds of a whole one-probe search in process (encrypt, score, decrypt,
    /// top-k), measured when the load was key-holder searches.
    pub search_ms: Option<f64>,
}

/// Scores `probes` against the gallery in `dir` in this process (hot form mapped from its
/// cache, nothing written): the single-probe latency and the best batched throughput.
pub fn in_process<R: RngCore + CryptoRng>(
    dir: &std::path::Path,
    client: &Client,
    probes: &[f32],
    simd: encsearch::Simd,
    compact: bool,
    whole_search: bool,
    rng: &mut R,
) -> Result<InProcess> {
    let g = encsearch::Gallery::open(dir)?;
    let ctx = encsearch::ServerContext::for_gallery_with(&g, simd)?;
    let (hot, _) = ctx.load_hot_cached(&g, false)?;
    let d = client.quantizer().dim;
    let rows: Vec<f32> = probes.iter().copied().cycle().take(BATCH * d).collect();
    let query = |b: usize, rng: &mut R| {
        client.encrypt_query_as((0..b).map(|i| format!("p{i}")).collect(), &rows[..b * d], compact, rng)
    };
    let one = query(1, rng)?;
    // The median of `reps` runs of a query of `b` probes: its seconds, and its CPU milliseconds
    // per query (unknown rather than zero when a run took less than a clock tick).
    let time = |q: &encsearch::Query, b: usize, reps: usize| -> Result<(f64, Option<f64>)> {
        let mut runs = (0..reps)
            .map(|_| {
                let (s, cpu) = (Instant::now(), service::process_cpu_seconds());
                ctx.score(q, &hot)?;
                let used = cpu.zip(service::process_cpu_seconds()).map(|(a, z)| (z - a) * 1e3 / b as f64);
                Ok((s.elapsed().as_secs_f64(), used.filter(|&ms| ms > 0.0)))
            })
            .collect::<Result<Vec<_>>>()?;
        runs.sort_by(|x, y| x.0.total_cmp(&y.0));
        Ok(runs[runs.len() / 2])
    };
    time(&one, 1, 1)?;
    let (t, single_cpu) = time(&one, 1, 15)?;
    let single_ms = t * 1e3;
    let (t, cpu) = time(&query(BATCH, rng)?, BATCH, 5)?;
    let search_ms = match whole_search {
        false => None,
        true => {
            let session = encsearch::Session::new(client).with_compact_answers(compact);
            let mut runs = (0..16)
                .map(|_| {
                    let t = Instant::now();
                    session.search(vec!["p0".into()], &rows[..d], SEARCH_K, rng, |q| ctx.score(q, &hot))?;
                    Ok(t.elapsed().as_secs_f64() * 1e3)
                })
                .collect::<Result<Vec<f64>>>()?;
            runs.sort_by(f64::total_cmp);
            Some(runs[runs.len() / 2])
        }
    };
    Ok(match BATCH as f64 / t > 1e3 / single_ms {
        true => InProcess { single_ms, batch: BATCH, batch_qps: BATCH as f64 / t, batch_cpu_ms: cpu, search_ms },
        false => InProcess { single_ms, batch: 1, batch_qps: 1e3 / single_ms, batch_cpu_ms: single_cpu, search_ms },
    })
}

/// Matches per probe of a key-holder search.
const SEARCH_K: usize = 10;

/// What each client of a phase sends.
#[derive(Clone, Copy)]
enum Sender<'a> {
    /// Queries encrypted up front, their answers checked frame by frame, not decrypted.
    Service(&'a [Vec<u8>]),
    /// Whole key-holder searches of one probe each (`rows`, row-major).
    KeyHolder(&'a Connection, &'a [f32]),
}

/// The server's CPU seconds and search queries answered so far, from its `/metrics`.
fn server_counters(remote: &Remote) -> Option<(f64, f64)> {
    let text = remote.metrics().ok()?;
    let value = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
    Some((value("process_cpu_seconds_total ")?, value("hers_queries_total{endpoint=\"search\"} ")?))
}

/// Probes per query tried for the in-process batched rate besides one (the faster is kept).
const BATCH: usize = 4;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs every phase; `probes` are row-major probes of the gallery's dimension (each query is
/// one of them, encrypted once up front: the clients measure the service, not encryption).
///
/// With `key_holder`, each query is instead a whole one-probe search through that connection
/// (encryption, the answer decrypted as it streams, the top-k), as an application's would be.
pub fn run<R: RngCore + CryptoRng>(
    cfg: &LoadConfig,
    client: &Client,
    probes: &[f32],
    rng: &mut R,
    key_holder: Option<&Connection>,
) -> Result<LoadReport> {
    let d = client.quantizer().dim;
    let n = (probes.len() / d.max(1)).clamp(1, 16);
    if probes.len() < d {
        return Err(Error::Config("no probes to send".into()));
    }
    let queries: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            Ok(client
                .encrypt_query_as(vec![format!("q{i}")], &probes[i * d..(i + 1) * d], cfg.compact, rng)?
                .to_bytes())
        })
        .collect::<Result<_>>()?;
    let probe = Remote::new(&cfg.url, None, Duration::from_secs(600))?;
    let info = probe.info()?;
    // Warm up: the id table of the current version, and the server's first batch.
    let (warm, _) = probe.search_bytes(&queries[0])?;
    let slots = warm.slot_ids.len();
    let mut rows = Vec::new();
    let n_rows = &probes[..n * d];
    let sender = match key_holder {
        Some(conn) => Sender::KeyHolder(conn, n_rows),
        None => Sender::Service(&queries),
    };
    for &c in &cfg.clients {
        rows.push(phase(cfg, c.max(1), sender, d, slots)?);
    }
    let enrol = match &cfg.token {
        Some(t) if cfg.enrolments > 0 => Some(enrolments(cfg, t, client, probes, rng)?),
        _ => None,
    };
    Ok(LoadReport { templates: info.templates, slots, rows, enrol, in_process: None, key_holder: key_holder.is_some() })
}

/// C closed-loop clients for the configured duration.
fn phase(cfg: &LoadConfig, clients: usize, sender: Sender<'_>, d: usize, slots: usize) -> Result<LoadRow> {
    let latencies = Mutex::new(Vec::new());
    let bytes = Mutex::new((0usize, 0usize, 0usize));
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    // The server's CPU over the phase (queries still in flight at either end blur it a little).
    let meter = Remote::new(&cfg.url, None, Duration::from_secs(30))?;
    let counters_before = server_counters(&meter);
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (latencies, bytes, failure) = (&latencies, &bytes, &failure);
            s.spawn(move || {
                let remote = match Remote::new(&cfg.url, None, Duration::from_secs(600)) {
                    Ok(r) => r,
                    Err(e) => {
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return;
                    }
                };
                let mut i = c;
                while start.elapsed() < cfg.duration {
                    let t = Instant::now();
                    let sent = match sender {
                        Sender::Service(queries) => remote.search_verified(&queries[i % queries.len()]).map(|r| r.1),
                        Sender::KeyHolder(conn, rows) => {
                            let at = (i % (rows.len() / d)) * d;
                            conn.search(&[format!("q{i}")], &rows[at..at + d], SEARCH_K).map(|f| f.transfer)
                        }
                    };
                    i += 1;
                    match sent {
                        Ok(moved) => {
                            latencies.lock().unwrap_or_else(|p| p.into_inner()).push(t.elapsed().as_secs_f64());
                            let mut b = bytes.lock().unwrap_or_else(|p| p.into_inner());
                            b.0 += moved.up;
                            b.1 += moved.down;
                        }
                        Err(Error::Http { status: 429, .. }) => {
                            bytes.lock().unwrap_or_else(|p| p.into_inner()).2 += 1;
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    let server_cpu_ms = counters_before
        .zip(server_counters(&meter))
        .filter(|((_, q0), (_, q1))| q1 > q0)
        .map(|((c0, q0), (c1, q1))| (c1 - c0) * 1e3 / (q1 - q0));
    let mut l = latencies.into_inner().unwrap_or_else(|p| p.into_inner());
    l.sort_by(f64::total_cmp);
    let (up, down, refused) = bytes.into_inner().unwrap_or_else(|p| p.into_inner());
    let q = l.len().max(1) as f64;
    let qps = l.len() as f64 / seconds;
    Ok(LoadRow {
        clients,
        queries: l.len(),
        refused,
        qps,
        p50_ms: percentile(&l, 0.5) * 1e3,
        p95_ms: percentile(&l, 0.95) * 1e3,
        p99_ms: percentile(&l, 0.99) * 1e3,
        templates_per_s: qps * slots as f64,
        bytes_up: up as f64 / q,
        bytes_down: down as f64 / q,
        server_cpu_ms,
    })
}

/// Enrols `cfg.enrolments` chunks of fresh ids one request at a time, searching after each
/// acknowledgement until the new ids are in the answer; then removes them again.
fn enrolments<R: RngCore + CryptoRng>(
    cfg: &LoadConfig,
    token: &str,
    client: &Client,
    probes: &[f32],
    rng: &mut R,
) -> Result<EnrolRow> {
    let remote = Remote::new(&cfg.url, Some(token.to_string()), Duration::from_secs(600))?;
    let d = client.quantizer().dim;
    let per = client.chunk_size();
    let nonce = rng.next_u64();
    let rows: Vec<f32> = probes.iter().copied().cycle().take(per * d).collect();
    let query = client.encrypt_query(vec!["v".into()], &probes[..d], rng)?.to_bytes();
    let (mut acks, mut visible, mut enrolled) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    for r in 0..cfg.enrolments {
        let ids: Vec<String> = (0..per).map(|i| format!("bench-{nonce:016x}-{r}-{i}")).collect();
        let t = Instant::now();
        remote.enrol_rows(client, &ids, &rows, 1, rng, |_| {})?;
        let acked = Instant::now();
        acks.push((acked - t).as_secs_f64());
        loop {
            let (resp, _) = remote.search_bytes(&query)?;
            if resp.slot_ids.iter().flatten().any(|s| *s == ids[0]) {
                visible.push(acked.elapsed().as_secs_f64());
                break;
            }
            if acked.elapsed() > Duration::from_secs(60) {
                return Err(Error::Config(format!("{} not searchable 60 s after its acknowledgement", ids[0])));
            }
        }
        enrolled.extend(ids);
    }
    let seconds = start.elapsed().as_secs_f64() - visible.iter().sum::<f64>();
    remote.remove(client, &enrolled)?;
    acks.sort_by(f64::total_cmp);
    visible.sort_by(f64::total_cmp);
    Ok(EnrolRow {
        requests: cfg.enrolments,
        templates_per_s: enrolled.len() as f64 / seconds.max(1e-9),
        ack_ms: percentile(&acks, 0.5) * 1e3,
        visible_ms: percentile(&visible, 0.5) * 1e3,
    })
}

impl LoadReport {
    /// The report as a Markdown table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{} templates ({} slots scored per query)\n", self.templates, self.slots);
        let _ = writeln!(
            s,
            "| clients | queries | q/s | p50 ms | p95 ms | p99 ms | templates/s | up B/query | down B/query | 429s | server CPU ms/query |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let cpu = |ms: Option<f64>| ms.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"));
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3e} | {:.0} | {:.0} | {} | {} |",
                r.clients,
                r.queries,
                r.qps,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.templates_per_s,
                r.bytes_up,
                r.bytes_down,
                r.refused,
                cpu(r.server_cpu_ms)
            );
        }
        if let Some(p) = &self.in_process {
            let _ = writeln!(
                s,
                "\nin-process, same gallery, no network: one probe {:.1} ms; {} probes per query {:.1} queries/s, \
                 {} CPU ms/query",
                p.single_ms,
                p.batch,
                p.batch_qps,
                cpu(p.batch_cpu_ms)
            );
            if let (Some(one), Some(most)) =
                (self.rows.iter().find(|r| r.clients == 1), self.rows.iter().max_by_key(|r| r.clients))
            {
                match (self.key_holder, p.search_ms) {
                    (true, Some(search)) => {
                        let _ = writeln!(
                            s,
                            "key-holder searches: p50 at 1 client = {:.2} × the whole search in process ({search:.1} \
                             ms: encrypt, score, decrypt, top-k)",
                            one.p50_ms / search
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            s,
                            "service overhead: p50 at 1 client = {:.2} × the in-process query; q/s at {} clients = \
                             {:.0} % of batched in-process",
                            one.p50_ms / p.single_ms,
                            most.clients,
                            100.0 * most.qps / p.batch_qps
                        );
                    }
                }
                if let (Some(server), Some(kernel)) = (most.server_cpu_ms, p.batch_cpu_ms) {
                    let _ = writeln!(
                        s,
                        "server CPU per query at {} clients = {:.2} × the in-process kernel's (the rest of the machine \
                         went to the load generator, when it runs on the same machine)",
                        most.clients,
                        server / kernel
                    );
                }
            }
        }
        if let Some(e) = &self.enrol {
            let _ = writeln!(
                s,
                "\nenrolment: {} requests of one chunk, {:.0} templates/s (client encryption included), \
                 acknowledged in {:.1} ms (median), searchable {:.1} ms after the acknowledgement (median)",
                e.requests, e.templates_per_s, e.ack_ms, e.visible_ms
            );
        }
        s
    }
}
