//! Decryption noise at the extreme magnitudes, measured with the secret key, against the bound
//! the response modulus is sized with (`SearchParams::noise_budget`; `docs/security.md`,
//! “Decryption failure”): both presets, the first stage's dimension-wise layout (full and
//! compact answers, every kernel build the CPU has) and the second stage's coefficient layout
//! at the full template dimension.
//!
//! The extremes: templates and probes at `±s` in every dimension (the largest scores,
//! `±d·s²`), and plaintext polynomials whose every coefficient is `t − 1`, the largest
//! magnitude fhe's encoding gives a coefficient (dimension-wise: the slot values of the
//! polynomial `−1 − x − … − x^(N−1)`; coefficient layout: templates at `−s`, and the probe at
//! `+s`, which `p(x⁻¹)` turns to `−s`). The derivation says the noise does not grow with the
//! plaintexts; these check it.

use std::collections::HashMap;

use encsearch::{
    Client, ClientKeys, Preset, ScoreForm, ServerContext, Simd, compact_moduli,
    hot::HotGallery,
    int_dot,
    server::FineChunks,
    wire::{ChunkScores, FineProbe, FineQuery},
};
use fhe::bfv::{Encoding, Plaintext, SecretKey};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The workload the response modulus is sized for: 64 probes against 100M templates.
const TEMPLATES: u64 = 100_000_000;
const PROBES: u64 = 64;
const TARGET_LOG2: f64 = -40.0;

/// `v mod t`, centred as decryption returns it.
fn centred(v: i64, t: u64) -> i64 {
    let t = t as i64;
    let r = v.rem_euclid(t);
    if r > t / 2 { r - t } else { r }
}

/// Root mean square and largest magnitude of the noise of every coefficient of `scores`.
fn measure(client: &Client, scores: &[&ChunkScores]) -> (usize, f64, f64) {
    let noise: Vec<f64> = scores.iter().flat_map(|s| client.score_noise(s).expect("noise")).collect();
    let rms = (noise.iter().map(|e| e * e).sum::<f64>() / noise.len() as f64).sqrt();
    (noise.len(), rms, noise.iter().fold(0f64, |m, e| m.max(e.abs())))
}

/// Checks the noise measured on `scores` against the derived budget of scores summing `rows`
/// products, in queries of 64 probes against 100M templates in chunks of `per_chunk`.
fn check(case: &str, client: &Client, scores: &[&ChunkScores], rows: usize, per_chunk: usize) {
    let params = &client.keys().public().params;
    let budget = params.noise_budget(rows, scores[0].form()).expect("budget");
    let coefficients = params.query_coefficients(TEMPLATES, per_chunk, PROBES);
    let (count, rms, max) = measure(client, scores);
    let derived = budget.query_failure_log2(coefficients);
    let measured = budget.failure_log2_at(rms) + coefficients.log2();
    // The margin a 2^-40 query needs: the bound must sit z_query standard deviations out
    // (union bound over the query's coefficients, Gaussian tail), where the largest of
    // `count` samples sits about z_count out.
    let z_query = (2.0 * (2.0 * coefficients).ln() - 2.0 * TARGET_LOG2 * std::f64::consts::LN_2).sqrt();
    let z_count = (2.0 * (2.0 * count as f64).ln()).sqrt();
    let needed = (z_query / z_count).log2();
    let margin = ((budget.bound - budget.fixed) / max).log2();
    eprintln!(
        "{case}: {count} coefficients, noise rms {rms:.0} (derived σ {:.0}, fixed part ≤ {:.0}), max {max:.0}, \
         bound 2^{:.2}: margin {margin:.2} bits ({needed:.2} needed); per query ≤ 2^{derived:.1} derived, \
         2^{measured:.1} at the measured rms",
        budget.sigma,
        budget.fixed,
        budget.bound.log2(),
    );
    // The derivation's second moment (σ² plus the fixed part's square) bounds the measured one.
    let second_moment = (budget.sigma.powi(2) + budget.fixed.powi(2)).sqrt();
    assert!(rms <= second_moment, "{case}: measured rms {rms:.0} above the derived {second_moment:.0}");
    // No coefficient beyond where the derivation's Gaussian tail puts all of them with
    // probability 1 − 10^-9.
    let z = (2.0 * (2.0 * count as f64 / 1e-9).ln()).sqrt();
    assert!(max <= budget.fixed + z * budget.sigma, "{case}: noise {max:.0} beyond {z:.1} derived σ");
    // The failure bound holds, and holds with the measured noise in place of the derived one;
    // the measured largest noise leaves the margin a 2^-40 query needs.
    assert!(derived <= TARGET_LOG2, "{case}: derived bound 2^{derived:.1} per query");
    assert!(measured <= TARGET_LOG2, "{case}: 2^{measured:.1} per query at the measured noise");
    assert!(margin >= needed, "{case}: {margin:.2} bits of margin, {needed:.2} needed");
}

/// Gallery chunk of `n` templates whose every row is the slot vector of the polynomial with
/// every coefficient `t − 1` (read off a decryption under a throwaway key: fhe decodes a
/// plaintext made with the polynomial encoding only as such).
fn worst_polynomial_rows(client: &Client, dim: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<i64>> {
    let n = client.chunk_size();
    let bfv = client.keys().bfv();
    let pt = Plaintext::try_encode(&vec![-1i64; n][..], Encoding::poly(), bfv).expect("encode");
    let sk = SecretKey::random(bfv, rng);
    let pt = sk.try_decrypt(&sk.try_encrypt(&pt, rng).expect("encrypt")).expect("decrypt");
    let slots = Vec::<i64>::try_decode(&pt, Encoding::simd()).expect("decode");
    slots.iter().map(|&v| vec![v; dim]).collect()
}

/// The first stage at `preset`, 16-D: full and compact answers on every kernel build the CPU
/// has, extremes of both kinds, probes all `+s` and all `−s`.
fn dimension_wise(preset: Preset, seed: u64) {
    let dim = 16;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = ClientKeys::generate(preset.params().expect("preset"), &mut rng).expect("keys");
    let mut client = Client::new(keys, dim).expect("client");
    let (n, s, t) = (client.chunk_size(), client.quantizer().scale as i64, client.keys().public().params.plaintext);
    let mut signs: Vec<Vec<i64>> =
        (0..n).map(|_| (0..dim).map(|_| if rng.random::<bool>() { s } else { -s }).collect()).collect();
    signs[0] = vec![s; dim];
    signs[1] = vec![-s; dim];
    let gallery: Vec<Vec<i64>> = signs.into_iter().chain(worst_polynomial_rows(&client, dim, &mut rng)).collect();
    let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
    assert_eq!(chunks.len(), 2);
    let probes = [vec![s; dim], vec![-s; dim]];
    let encrypted: Vec<_> = probes.iter().map(|p| client.encrypt_probe(p, &mut rng).expect("probe")).collect();
    let full = client.query_of(vec!["plus".into(), "minus".into()], encrypted).expect("query");
    let mut compact = full.clone();
    compact.compact = Some(client.compact_key(&mut rng).expect("compact key"));
    let compact_form = ScoreForm::Compact { moduli: compact_moduli(&client.keys().public().params).expect("moduli") };
    let mut kernels = Vec::new();
    for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
        client = client.with_simd(simd);
        let server = ServerContext::with_simd(client.keys().public(), dim, simd).expect("server");
        // Each build once (at N = 8192 the 60-bit primes leave only the portable one).
        if kernels.contains(&server.kernel()) {
            continue;
        }
        kernels.push(server.kernel());
        let q = client.quantizer();
        let hot = HotGallery::in_memory(server.prepare_chunks(&chunks).expect("hot"), Vec::new(), q);
        for (query, form) in [(&full, ScoreForm::Full), (&compact, compact_form)] {
            let scores = server.score(query, &hot).expect("score").scores;
            for (probe, per_chunk) in probes.iter().zip(&scores) {
                for (c, cs) in per_chunk.iter().enumerate() {
                    assert_eq!(cs.form(), form);
                    let got = client.decrypt_chunk(cs).expect("decrypt");
                    for (k, v) in got.iter().enumerate() {
                        assert_eq!(*v, centred(int_dot(&gallery[c * n + k], probe), t), "chunk {c}, slot {k}");
                    }
                }
            }
            let all: Vec<&ChunkScores> = scores.iter().flatten().collect();
            let case = format!("{preset:?} {dim}-D dimension-wise, {form:?}, {:?} kernel", server.kernel());
            check(&case, &client, &all, dim, n);
        }
    }
}

/// The second stage at `preset`, `dim`-D coefficient layout (one product per score, the probe
/// a `dim`-term polynomial): full answers, templates at `−s` (one chunk) and at random `±s`
/// (another), probes at `+s` and at random `±s`, every candidate scored.
fn coefficient_layout(preset: Preset, dim: usize, seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = ClientKeys::generate(preset.params().expect("preset"), &mut rng).expect("keys");
    let client = Client::new(keys, dim).expect("client");
    let q = *client.quantizer();
    let (n, s) = (client.chunk_size(), q.scale as i64);
    let per = n / dim;
    let mut gallery: Vec<Vec<i64>> = vec![vec![-s; dim]; per];
    gallery.extend((0..per).map(|_| (0..dim).map(|_| if rng.random::<bool>() { s } else { -s }).collect()));
    let chunks = client.encrypt_coefficient_chunks(&gallery, &mut rng).expect("encrypt");
    assert_eq!(chunks.len(), 2);
    let ids: Vec<String> = (0..gallery.len()).map(|i| format!("t{i}")).collect();
    let index: HashMap<String, usize> = ids.iter().cloned().enumerate().map(|(i, id)| (id, i)).collect();
    let probes = [vec![s; dim], (0..dim).map(|_| if rng.random::<bool>() { s } else { -s }).collect()];
    let query = FineQuery {
        key_id: client.keys().key_id().clone(),
        scale: q.scale,
        metric: q.metric,
        probes: probes
            .iter()
            .enumerate()
            .map(|(i, p)| FineProbe {
                probe_id: format!("p{i}"),
                probe: client.encrypt_fine_probe(p, &mut rng).expect("probe"),
                candidates: ids.clone(),
            })
            .collect(),
    };
    let server = ServerContext::new(client.keys().public(), 1).expect("server");
    let source = FineChunks { quantizer: &q, chunks: &chunks, index: &index };
    let response = server.score_candidates(&query, &source).expect("score");
    for m in client.decrypt_fine(&response, gallery.len()).expect("decrypt") {
        let p: usize = m.probe_id[1..].parse().expect("probe index");
        let g = index[&m.gallery_id];
        assert_eq!(m.score, int_dot(&gallery[g], &probes[p]), "probe {p}, template {g}");
    }
    let all: Vec<&ChunkScores> = response.probes.iter().flat_map(|(_, c)| c.iter().map(|g| &g.scores)).collect();
    assert_eq!(all.len(), 4);
    check(&format!("{preset:?} {dim}-D coefficient layout, {:?} kernel", server.kernel()), &client, &all, 1, per);
}

#[test]
fn noise_at_extremes_n4096_dimension_wise() {
    dimension_wise(Preset::N4096, 41);
}

#[test]
fn noise_at_extremes_n8192_dimension_wise() {
    dimension_wise(Preset::N8192, 42);
}

#[test]
fn noise_at_extremes_second_stage_full_dimension() {
    coefficient_layout(Preset::N8192, 512, 43);
    coefficient_layout(Preset::N4096, 96, 44);
}
