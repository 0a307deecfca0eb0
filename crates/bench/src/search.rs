//! `hers bench search`: one run timing our encrypted search against the HERS algorithm and
//! plaintext brute force on a synthetic gallery.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::Serialize;

use encsearch::{
    Client, ClientKeys, Error, Hit, Match, Preset, Response, Result, ServerContext, Session, Simd, TopK,
    hot::HotGallery, server::HersBaseline, session::Timings,
};

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Templates in the synthetic gallery.
    pub gallery_size: usize,
    /// Template dimension.
    pub dim: usize,
    /// Parameter preset.
    pub preset: Preset,
    /// Templates over which the HERS baseline and our scoring are compared (e.g. 100 000).
    pub baseline_size: usize,
    /// Top-k of the query.
    pub k: usize,
    /// Dimension of the second plaintext brute-force reference.
    pub plain_dim_high: usize,
    /// RNG seed.
    pub seed: u64,
    /// Times each timed step runs; the report gives the median (first-call effects such as
    /// page faults and thread-pool start-up are not what a serving system sees).
    pub repeats: usize,
    /// Vector builds the kernels may use.
    pub simd: Simd,
    /// Probes of the batch timed against as many single-probe scans (0: no batch timing).
    pub batch: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            gallery_size: 100_000,
            dim: 16,
            preset: Preset::N4096,
            baseline_size: 100_000,
            k: 10,
            plain_dim_high: 512,
            seed: 1,
            repeats: 3,
            simd: Simd::detect(),
            batch: 8,
        }
    }
}

/// Results of one benchmark run (seconds and bytes).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Templates in the gallery.
    pub gallery_size: usize,
    /// Dimension.
    pub dim: usize,
    /// Ring degree N.
    pub degree: usize,
    /// log2 Q.
    pub log_q: f64,
    /// Number of primes of the multiplication basis (Q ∪ P, or the narrow basis).
    pub ext_primes: usize,
    /// Chunks of N templates.
    pub chunks: usize,
    /// The scoring kernel that ran (`Ifma`, `Avx2` or `Scalar`, see [`encsearch::Kernel`]).
    pub kernel: String,
    /// The CPU features found and the builds used.
    pub cpu: String,
    /// Repetitions per timed step (times are medians).
    pub repeats: usize,
    /// Client: quantise + encrypt the whole gallery (all cores).
    pub enroll_s: f64,
    /// Server: at-rest form → hot form for the whole gallery (all cores).
    pub prepare_s: f64,
    /// Client: quantise + encrypt one probe.
    pub encrypt_s: f64,
    /// Server: score one probe against the gallery.
    pub score_s: f64,
    /// Client: decrypt every chunk + top-k.
    pub decrypt_topk_s: f64,
    /// Probes in the timed batch (0: not timed).
    pub batch: usize,
    /// Server: score one query of `batch` probes against the gallery (each chunk obtained once
    /// for all of them).
    pub batch_score_s: f64,
    /// `batch_score_s / (batch · score_s)`: what a batch costs against as many single scans.
    pub batch_ratio: f64,
    /// encrypt + score + decrypt/top-k.
    pub query_s: f64,
    /// Server: score the same probe for a compact answer (relinearised, two small primes).
    pub compact_score_s: f64,
    /// What a compact answer adds to the server's time, as a fraction of the full answer's:
    /// the median over `repeats` pairs of a full and a compact score run back to back (a
    /// shared machine's slow spells then hit both sides of a pair alike).
    pub compact_extra: f64,
    /// Client: decrypt + top-k of the compact answer.
    pub compact_decrypt_topk_s: f64,
    /// Encrypted scores of the compact answer: bytes per template.
    pub compact_bytes_per_template: f64,
    /// What the compact-answer key adds to a query, in bytes.
    pub compact_key_bytes: usize,
    /// Templates the baseline comparison used.
    pub baseline_size: usize,
    /// Our scoring over `baseline_size` templates.
    pub ours_at_baseline_s: f64,
    /// HERS algorithm (multiply + relinearise + add per dimension) over `baseline_size` templates.
    pub hers_at_baseline_s: f64,
    /// Plaintext f32 brute force + top-k at `dim` (measured on at most 1M templates, scaled
    /// linearly beyond).
    pub plain_s: f64,
    /// Plaintext f32 brute force + top-k at `plain_dim_high`.
    pub plain_high_s: f64,
    /// The high plaintext dimension.
    pub plain_dim_high: usize,
    /// At rest (seeded ciphertexts, serialised): bytes per template.
    pub rest_bytes_per_template: f64,
    /// Hot form (extended basis, NTT, in memory): bytes per template.
    pub hot_bytes_per_template: f64,
    /// Encrypted scores in the response: bytes per template.
    pub response_bytes_per_template: f64,
    /// Encrypted query size in bytes.
    pub query_bytes: usize,
    /// HERS time / our time at `baseline_size`.
    pub speedup_vs_hers: f64,
    /// Every decrypted score of the probe (whole gallery) equals the integer inner product of
    /// the quantised vectors, and the encrypted top-k equals the plaintext top-k of those.
    pub exact: bool,
    /// Our query time / plaintext brute force at `dim`.
    pub slowdown_vs_plain: f64,
}

/// Runs `f` `repeats` times (at least once); returns the median time and the last result.
fn median<T>(repeats: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        last = Some(f()?);
        times.push(secs(t));
    }
    let out = last.ok_or_else(|| Error::InvalidArgument { reason: "no repetition ran".into() })?;
    Ok((middle(times), out))
}

/// The median of at least one time.
fn middle(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Templates the plaintext reference holds at most; beyond, its time is scaled linearly (a
/// brute-force scan is linear, and 10M × 512-D floats would not fit this machine's memory).
const PLAIN_MAX: usize = 1_000_000;

fn plain_search(dim: usize, count: usize, k: usize, rng: &mut ChaCha20Rng) -> f64 {
    let measured = count.min(PLAIN_MAX);
    let gallery: Vec<f32> = (0..measured * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let probe: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let t = Instant::now();
    let top = gallery
        .par_chunks(dim * 4096)
        .enumerate()
        .map(|(c, rows)| {
            let mut t = TopK::new(k);
            for (i, r) in rows.chunks_exact(dim).enumerate() {
                let s: f32 = r.iter().zip(&probe).map(|(a, b)| a * b).sum();
                t.push(Hit { index: (c * 4096 + i) as u64, score: (s * 1e6) as i64 });
            }
            t
        })
        .reduce(
            || TopK::new(k),
            |mut a, b| {
                a.merge(b);
                a
            },
        );
    std::hint::black_box(top.into_sorted());
    secs(t) * count as f64 / measured.max(1) as f64
}

/// Decrypts every score of the response (outside the timed query) and compares it, and the
/// top-k, with the plaintext integer scores of the quantised vectors.
fn check_exact(
    client: &Client,
    rows: &[f32],
    probe: &[f32],
    resp: &Response,
    top: &[Match],
    cfg: &BenchConfig,
) -> Result<bool> {
    let q = client.quantizer();
    let p = q.probe_row(probe, 0)?;
    let want: Vec<i64> = rows
        .par_chunks(cfg.dim)
        .enumerate()
        .map(|(i, r)| Ok(encsearch::int_dot(&q.template_row(r, i)?, &p)))
        .collect::<Result<_>>()?;
    let got: Vec<Vec<i64>> = resp.scores[0].par_iter().map(|c| client.decrypt_chunk(c)).collect::<Result<_>>()?;
    let all_equal = got.iter().flatten().zip(&want).all(|(a, b)| a == b);
    let plain: Vec<i64> = TopK::of(want.iter().copied(), cfg.k).iter().map(|h| h.score).collect();
    let enc: Vec<i64> = top.iter().map(|m| m.score).collect();
    Ok(all_equal && plain == enc)
}

/// Runs the benchmark.
pub fn run(cfg: &BenchConfig) -> Result<BenchReport> {
    let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed);
    let keys = ClientKeys::generate(cfg.preset.params()?, &mut rng)?;
    let server = ServerContext::with_simd(keys.public(), cfg.dim, cfg.simd)?;
    let client = Client::new(keys, cfg.dim)?.with_simd(cfg.simd);
    let n = client.chunk_size();
    let dim = cfg.dim;

    let rows: Vec<f32> = (0..cfg.gallery_size * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let total_chunks = cfg.gallery_size.div_ceil(n).max(1);
    let bchunks = cfg.baseline_size.div_ceil(n).clamp(1, total_chunks);
    // Enrol and prepare in batches, keeping only the hot form (and the at-rest chunks the HERS
    // baseline needs): memory stays at about the hot form's size.
    let (mut enroll_s, mut prepare_s, mut rest_bytes) = (0.0, 0.0, 0usize);
    let mut hot = Vec::with_capacity(total_chunks);
    let mut chunks = Vec::with_capacity(bchunks);
    for batch in rows.chunks(64 * n * dim) {
        let t = Instant::now();
        let enc = client.encrypt_templates(batch, &mut rng)?;
        enroll_s += secs(t);
        rest_bytes += enc.par_iter().map(|c| c.to_bytes().len()).sum::<usize>();
        let t = Instant::now();
        hot.extend(server.prepare_chunks(&enc)?);
        prepare_s += secs(t);
        let room = bchunks.saturating_sub(chunks.len());
        chunks.extend(enc.into_iter().take(room));
    }
    let mut slot_ids = vec![None; hot.len() * n];
    for (i, s) in slot_ids.iter_mut().take(cfg.gallery_size).enumerate() {
        *s = Some(i.to_string());
    }
    let gallery = HotGallery::in_memory(hot, slot_ids, client.quantizer());

    let probe = rows[..dim].to_vec();
    // One encrypted query for the baseline comparison and the size figure.
    let query = client.encrypt_query(vec!["probe".into()], &probe, &mut rng)?;
    let query_bytes = query.to_bytes().len();
    // The query as a client runs it (encrypt → score → decrypt + top-k), `repeats` times.
    let session = Session::new(&client);
    let mut runs = Vec::new();
    let mut last: Option<(Response, Vec<Match>)> = None;
    for _ in 0..cfg.repeats.max(1) {
        let s = session.search(vec!["probe".into()], &probe, cfg.k, &mut rng, |q| server.score(q, &gallery))?;
        runs.push(s.timings);
        last = Some((s.response, s.matches));
    }
    let (resp, top) = last.ok_or_else(|| Error::InvalidArgument { reason: "no repetition ran".into() })?;
    let step = |f: fn(&Timings) -> f64| middle(runs.iter().map(f).collect());
    let (encrypt_s, score_s, decrypt_topk_s) = (step(|t| t.encrypt), step(|t| t.score), step(|t| t.decrypt));
    let exact = check_exact(&client, &rows, &probe, &resp, &top, cfg)?;

    // A batch of probes in one query (the first `batch` templates, the single probe first),
    // against as many single scans (`score_s` each).
    let batch = cfg.batch.min(cfg.gallery_size);
    let (batch_score_s, batch_exact) = match batch {
        0 => (0.0, true),
        b => {
            let ids = (0..b).map(|i| format!("probe{i}")).collect();
            let batch_query = client.encrypt_query(ids, &rows[..b * dim], &mut rng)?;
            let (t, batch_resp) = median(cfg.repeats, || server.score(&batch_query, &gallery))?;
            // The batch's first answer decrypts to the single query's, score for score.
            let decrypt = |r: &Response| -> Result<Vec<Vec<i64>>> {
                r.scores[0].par_iter().map(|c| client.decrypt_chunk(c)).collect()
            };
            (t, decrypt(&batch_resp)? == decrypt(&resp)?)
        }
    };
    let exact = exact && batch_exact;

    // The same probe asking for a compact answer: its scores must be the full answer's.
    let mut compact_query = query.clone();
    compact_query.compact = Some(client.compact_key(&mut rng)?);
    let compact_key_bytes = compact_query.to_bytes().len() - query_bytes;
    let (mut compact_times, mut extras, mut compact) = (Vec::new(), Vec::new(), None);
    for _ in 0..cfg.repeats.max(1) {
        let t = Instant::now();
        server.score(&query, &gallery)?;
        let full = secs(t);
        let t = Instant::now();
        compact = Some(server.score(&compact_query, &gallery)?);
        let c = secs(t);
        compact_times.push(c);
        extras.push(c / full - 1.0);
    }
    let compact = compact.ok_or_else(|| Error::InvalidArgument { reason: "no repetition ran".into() })?;
    let (compact_score_s, compact_extra) = (middle(compact_times), middle(extras));
    let (compact_decrypt_topk_s, compact_top) = median(cfg.repeats, || client.decrypt_top_k(&compact, cfg.k))?;
    let exact = exact
        && check_exact(&client, &rows, &probe, &compact, &compact_top, cfg)?
        && compact_top.iter().map(|m| m.score).eq(top.iter().map(|m| m.score));

    // Baseline comparison on the first `baseline_size` templates, same probe, same cores.
    let first = gallery.slice(0..bchunks)?;
    let (ours_at_baseline_s, _) = median(cfg.repeats, || server.score(&query, &first))?;
    let hers = HersBaseline::new(&server, &client.relinearization_key(&mut rng)?)?;
    let (hers_at_baseline_s, _) = median(cfg.repeats, || hers.scan(&query.probes[0], &chunks[..bchunks]))?;

    let plain_s = plain_search(dim, cfg.gallery_size, cfg.k, &mut rng);
    let plain_high_s = plain_search(cfg.plain_dim_high, cfg.gallery_size, cfg.k, &mut rng);
    let query_s = encrypt_s + score_s + decrypt_topk_s;
    Ok(BenchReport {
        gallery_size: cfg.gallery_size,
        dim,
        degree: n,
        log_q: client.keys().public().params.log_q(),
        ext_primes: server.extended_moduli().len(),
        chunks: total_chunks,
        kernel: format!("{:?}", server.kernel()),
        cpu: server.simd().describe(),
        repeats: cfg.repeats.max(1),
        enroll_s,
        prepare_s,
        encrypt_s,
        score_s,
        decrypt_topk_s,
        batch,
        batch_score_s,
        batch_ratio: if batch > 0 { batch_score_s / (batch as f64 * score_s) } else { 0.0 },
        query_s,
        compact_score_s,
        compact_extra,
        compact_decrypt_topk_s,
        compact_bytes_per_template: compact.score_bytes_per_slot(),
        compact_key_bytes,
        baseline_size: bchunks * n,
        ours_at_baseline_s,
        hers_at_baseline_s,
        plain_s,
        plain_high_s,
        plain_dim_high: cfg.plain_dim_high,
        rest_bytes_per_template: rest_bytes as f64 / (total_chunks * n) as f64,
        hot_bytes_per_template: server.hot_bytes_per_template() as f64,
        response_bytes_per_template: resp.score_bytes_per_slot(),
        query_bytes,
        speedup_vs_hers: hers_at_baseline_s / ours_at_baseline_s,
        exact,
        slowdown_vs_plain: query_s / plain_s,
    })
}

impl BenchReport {
    /// A markdown table of the report.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| s.push_str(&format!("| {k} | {v} |\n"));
        row(
            "gallery",
            format!(
                "{} × {}-D, N = {}, log q = {:.0}, {} chunks, multiplication basis {} primes, {} kernel; times: median of {}",
                self.gallery_size,
                self.dim,
                self.degree,
                self.log_q,
                self.chunks,
                self.ext_primes,
                self.kernel,
                self.repeats
            ),
        );
        row("CPU", self.cpu.clone());
        row("enrol (client encrypt, all cores)", format!("{:.2} s", self.enroll_s));
        row("server hot-form preparation", format!("{:.2} s", self.prepare_s));
        row("query: encrypt", format!("{:.1} ms", self.encrypt_s * 1e3));
        row("query: score (server)", format!("{:.1} ms", self.score_s * 1e3));
        row("query: decrypt + top-k", format!("{:.1} ms", self.decrypt_topk_s * 1e3));
        row("query: total", format!("{:.1} ms", self.query_s * 1e3));
        row(
            "compact answer: score (server) / decrypt + top-k",
            format!(
                "{:.1} ms ({:+.0} %) / {:.1} ms",
                self.compact_score_s * 1e3,
                self.compact_extra * 100.0,
                self.compact_decrypt_topk_s * 1e3
            ),
        );
        if self.batch > 0 {
            row(
                &format!("score a batch of {} probes (server)", self.batch),
                format!(
                    "{:.1} ms = {:.1} ms per probe, {:.0} % of {} single scans",
                    self.batch_score_s * 1e3,
                    self.batch_score_s * 1e3 / self.batch as f64,
                    self.batch_ratio * 100.0,
                    self.batch
                ),
            );
        }
        row(
            &format!("ours, score {} templates", self.baseline_size),
            format!("{:.1} ms", self.ours_at_baseline_s * 1e3),
        );
        row(
            &format!("HERS algorithm, {} templates", self.baseline_size),
            format!("{:.1} ms", self.hers_at_baseline_s * 1e3),
        );
        row("speed-up vs HERS", format!("{:.1}×", self.speedup_vs_hers));
        row(&format!("plaintext f32 brute force {}-D", self.dim), format!("{:.2} ms", self.plain_s * 1e3));
        row(
            &format!("plaintext f32 brute force {}-D", self.plain_dim_high),
            format!("{:.2} ms", self.plain_high_s * 1e3),
        );
        row("encrypted query / plaintext (same D)", format!("{:.0}×", self.slowdown_vs_plain));
        row(
            "every decrypted score exact, top-k = plaintext top-k",
            (if self.exact { "yes" } else { "NO" }).to_string(),
        );
        row("bytes/template at rest (seeded)", format!("{:.1}", self.rest_bytes_per_template));
        row("bytes/template hot form (memory)", format!("{:.0}", self.hot_bytes_per_template));
        row(
            "bytes/template response: full / compact",
            format!("{:.1} / {:.1}", self.response_bytes_per_template, self.compact_bytes_per_template),
        );
        row("query size (+ compact-answer key)", format!("{} B (+ {} B)", self.query_bytes, self.compact_key_bytes));
        format!("| measure | value |\n|---|---|\n{s}")
    }
}
