//! Encrypted search inside one process, for sweeps and the demo: the client enrols the gallery
//! and encrypts the probes, the server scores, the client decrypts. The roles still only talk
//! through encsearch's message types; running them in one process just skips the files.

use std::time::Instant;

use encsearch::{
    Client, ClientKeys, Preset, ServerContext, Session, hot::HotGallery, int_dot, server::HersBaseline,
    session::Timings,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::Result;

/// Decrypted scores and where the time went.
#[derive(Debug, Clone, Serialize)]
pub struct EncryptedRun {
    /// `scores[p][g]`: decrypted integer score of probe `p` against template `g`.
    #[serde(skip)]
    pub scores: Vec<Vec<i64>>,
    /// Quantisation scale `s` (scores are `s²` × cosine).
    pub scale: u32,
    /// Ring degree (templates per chunk).
    pub degree: usize,
    /// Chunks in the gallery.
    pub chunks: usize,
    /// Client: quantise + encrypt the whole gallery, seconds.
    pub enroll_s: f64,
    /// Per probe: encryption, ms.
    pub encrypt_ms: f64,
    /// Per probe: server scoring of every chunk, ms.
    pub score_ms: f64,
    /// Per probe: decryption of every chunk's scores, ms.
    pub decrypt_ms: f64,
    /// Per probe: the HERS algorithm (multiply, relinearise, add per dimension) on the same
    /// chunks, ms — measured on `hers_chunks` chunks, scaled to all chunks and divided by the
    /// cores they would be spread over (as ours are); 0 when not measured.
    pub hers_score_ms: f64,
    /// Every decrypted score equals the integer inner product of the quantised vectors.
    pub exact: bool,
    /// Gallery ciphertext bytes per template, in the server's hot (scoring) form.
    pub hot_bytes_per_template: f64,
}

/// Probes encrypted and searched in one query. An encrypted 16-D probe is 16 ciphertexts (2 MB
/// at N = 4096): the 2000 probes of the shipped set at once held 4.2 GB; queries of 64 hold
/// about 130 MB, with the same scores.
pub(crate) const PROBES_PER_QUERY: usize = 64;

/// Enrols `gallery` (row-major, `dim`) encrypted, searches every probe, decrypts all scores.
/// Probes and templates are L2-normalised by the quantiser (cosine similarity).
pub fn encrypted_scores(
    gallery: &[f32],
    probes: &[f32],
    dim: usize,
    hers_chunks: usize,
    seed: u64,
) -> Result<EncryptedRun> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let params = Preset::for_dim(dim)?.params()?;
    let keys = ClientKeys::generate(params, &mut rng)?;
    let public = keys.public().clone();
    let client = Client::new(keys, dim)?;
    let server = ServerContext::new(&public, dim)?;
    let n_gallery = gallery.len() / dim;
    let n_probes = probes.len() / dim;

    let t = Instant::now();
    let chunks = client.encrypt_templates(gallery, &mut rng)?;
    let enroll_s = t.elapsed().as_secs_f64();
    let q = *client.quantizer();
    let hot = HotGallery::in_memory(server.prepare_chunks(&chunks)?, Vec::new(), &q);

    // Encrypt → score → decrypt as a client runs it, in queries of PROBES_PER_QUERY probes.
    let session = Session::new(&client);
    let mut scores: Vec<Vec<i64>> = Vec::with_capacity(n_probes);
    let mut timings = Timings::default();
    for (b, rows) in probes.chunks(PROBES_PER_QUERY * dim).enumerate() {
        let ids = (0..rows.len() / dim).map(|i| (b * PROBES_PER_QUERY + i).to_string()).collect();
        let run = session.score_all(ids, rows, &mut rng, |query| server.score(query, &hot))?;
        timings += run.timings;
        scores.extend(run.scores.into_iter().map(|mut row| {
            row.truncate(n_gallery);
            row
        }));
    }

    let hers_score_ms = if hers_chunks > 0 && n_probes > 0 {
        let query = client.encrypt_query(vec!["0".into()], &probes[..dim], &mut rng)?;
        let hers = HersBaseline::new(&server, &client.relinearization_key(&mut rng)?)?;
        let k = hers_chunks.min(chunks.len());
        // Measured on `k` chunks on all cores, scaled to the whole gallery on the same cores
        // (chunks are independent, so the HERS algorithm gets the cores ours get).
        let t = Instant::now();
        hers.scan(&query.probes[0], &chunks[..k])?;
        let threads = rayon::current_num_threads().max(1);
        t.elapsed().as_secs_f64() * 1e3 * chunks.len().div_ceil(threads) as f64 / k.div_ceil(threads) as f64
    } else {
        0.0
    };

    let qg = q.template_rows(gallery)?;
    let qp = q.probe_rows(probes)?;
    let exact =
        scores.iter().zip(&qp).all(|(row, p)| row.iter().zip(&qg).all(|(s, g)| *s == int_dot(&p[..dim], &g[..dim])));

    let per = n_probes.max(1) as f64;
    Ok(EncryptedRun {
        scale: q.scale,
        degree: client.chunk_size(),
        chunks: chunks.len(),
        enroll_s,
        encrypt_ms: timings.encrypt * 1e3 / per,
        score_ms: timings.score * 1e3 / per,
        decrypt_ms: timings.decrypt * 1e3 / per,
        hers_score_ms,
        exact,
        hot_bytes_per_template: hot.bytes() as f64 / n_gallery.max(1) as f64,
        scores,
    })
}
