//! End-to-end: encrypted scores equal integer inner products, top-k equals plaintext top-k.

use encsearch::{
    Client, ClientKeys, Preset, Query, Response, ScoreForm, ServerContext, Simd,
    hot::{HotChunk, HotGallery},
    int_dot,
    server::HersBaseline,
    wire::{ChunkScores, EncryptedProbe},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn setup(dim: usize, seed: u64) -> (Client, ServerContext, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
    let server = ServerContext::new(keys.public(), dim).expect("server");
    (Client::new(keys, dim).expect("client"), server, rng)
}

/// One probe scanned against hot chunks: a one-probe query over a gallery of those chunks.
fn score_probe(
    client: &Client,
    server: &ServerContext,
    probe: &EncryptedProbe,
    chunks: &[HotChunk],
) -> Vec<ChunkScores> {
    let q = client.quantizer();
    let gallery = HotGallery::in_memory(chunks.to_vec(), Vec::new(), q);
    let query = client.query_of(vec!["p".into()], vec![probe.clone()]).expect("query");
    server.score(&query, &gallery).expect("score").scores.remove(0)
}

#[test]
fn exact_scores_at_extremes_and_random() {
    let dim = 16;
    let (mut client, _, mut rng) = setup(dim, 7);
    let s = client.quantizer().scale as i64;
    let n = client.chunk_size();
    // Chunk 0: all ±s (largest magnitudes); chunk 1 (partial): uniform in [-s, s].
    let mut gallery: Vec<Vec<i64>> =
        (0..n).map(|_| (0..dim).map(|_| if rng.random::<bool>() { s } else { -s }).collect()).collect();
    gallery[0] = vec![s; dim];
    gallery[1] = vec![-s; dim];
    gallery.extend((0..1000).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect::<Vec<i64>>()));
    let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
    assert_eq!(chunks.len(), 2);
    // Every build of the kernels this CPU has: all it allows, AVX2 without AVX-512, portable.
    // Decryption takes the same builds (its NTTs and products).
    for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
        client = client.with_simd(simd);
        let server = ServerContext::with_simd(client.keys().public(), dim, simd).expect("server");
        eprintln!("{:?} kernel ({})", server.kernel(), simd.describe());
        // AVX2 without IFMA takes the narrow hot form and its kernel.
        let narrow = simd.avx2() && !simd.ifma();
        assert_eq!(server.is_narrow(), narrow, "{}", simd.describe());
        assert_eq!(server.kernel() == encsearch::Kernel::Avx2, narrow);
        check_exact(&client, &server, &chunks, &gallery, &mut rng);
    }
}

/// Scores the extreme and a random probe against `chunks` and checks every decrypted score.
fn check_exact(
    client: &Client,
    server: &ServerContext,
    chunks: &[encsearch::wire::EncryptedChunk],
    gallery: &[Vec<i64>],
    rng: &mut ChaCha20Rng,
) {
    let (dim, n) = (gallery[0].len(), client.chunk_size());
    let s = client.quantizer().scale as i64;
    let hot = server.prepare_chunks(chunks).expect("hot");
    // The extremes and four random probes: six, more than one pass takes on a gallery held hot
    // in the wide form (four), so the query's answer is put together from two passes.
    let mut probes: Vec<Vec<i64>> = vec![vec![s; dim], vec![-s; dim]];
    probes.extend((0..4).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect::<Vec<i64>>()));
    let encrypted: Vec<EncryptedProbe> = probes.iter().map(|p| client.encrypt_probe(p, rng).expect("probe")).collect();
    // Each probe alone, then all six in one query (batches per chunk).
    let alone: Vec<Vec<ChunkScores>> = encrypted.iter().map(|ep| score_probe(client, server, ep, &hot)).collect();
    let gallery_hot = HotGallery::in_memory(hot.clone(), Vec::new(), client.quantizer());
    let ids = (0..probes.len()).map(|i| format!("p{i}")).collect();
    let query = client.query_of(ids, encrypted).expect("query");
    let batched = server.score(&query, &gallery_hot).expect("score").scores;
    // The same query asking for compact answers (relinearised, two small primes).
    let mut compact_query = query.clone();
    compact_query.compact = Some(client.compact_key(rng).expect("compact key"));
    let compact = server.score(&compact_query, &gallery_hot).expect("compact score").scores;
    assert!(compact.iter().flatten().all(|c| matches!(c.form(), ScoreForm::Compact { .. })));
    // The noise left at the largest magnitudes (probe 0 = all +s against chunk 0's ±s).
    let (_, full_margin) = client.score_noise_margin_bits(&batched[0][0]).expect("noise");
    let (noise, margin) = client.score_noise_margin_bits(&compact[0][0]).expect("noise");
    eprintln!("noise margin: full {full_margin:.1} bits, compact {margin:.1} bits (noise 2^{noise} of q0)");
    assert!(margin >= 2.0 && margin >= full_margin, "compact answers keep only {margin:.1} bits of noise margin");
    for (probe, scores) in probes.iter().cycle().zip(alone.iter().chain(&batched).chain(&compact)) {
        for (c, cs) in scores.iter().enumerate() {
            let got = client.decrypt_chunk(cs).expect("decrypt");
            for (k, v) in got.iter().enumerate() {
                let expect = gallery.get(c * n + k).map_or(0, |g| int_dot(g, probe));
                assert_eq!(*v, expect, "chunk {c} slot {k}");
            }
        }
    }
}

#[test]
fn top_k_matches_plaintext_and_roundtrips_bytes() {
    let dim = 16;
    let (client, server, mut rng) = setup(dim, 11);
    let count = 5000;
    let rows: Vec<f32> = (0..count * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let q = client.quantizer().quantize_rows(&rows).expect("quantize");
    let chunks = client.encrypt_quantized(&q, &mut rng).expect("encrypt");
    let n = client.chunk_size();
    let mut slot_ids = vec![None; chunks.len() * n];
    for (i, s) in slot_ids.iter_mut().take(count).enumerate() {
        *s = Some(format!("g{i}"));
    }
    let gallery = HotGallery::in_memory(server.prepare_chunks(&chunks).expect("hot"), slot_ids, client.quantizer());
    let probes: Vec<f32> = rows[..3 * dim].to_vec();
    let query = client.encrypt_query(vec!["p0".into(), "p1".into(), "p2".into()], &probes, &mut rng).expect("query");
    let query = Query::from_bytes(&query.to_bytes(), server.bfv(), dim).expect("query bytes");
    let resp = server.score(&query, &gallery).expect("score");
    // Several probes are scored chunk by chunk; each equals its own one-probe scan.
    for (p, ep) in query.probes.iter().enumerate() {
        assert_eq!(score_probe(&client, &server, ep, gallery.chunks()), resp.scores[p], "probe {p}");
    }
    let bytes = resp.to_bytes();
    assert!(resp.score_bytes_per_slot() <= 16.0, "{}", resp.score_bytes_per_slot());
    let resp = Response::from_bytes(&bytes).expect("response bytes");
    let k = 10;
    let got = client.decrypt_top_k(&resp, k).expect("decrypt");
    // Compact answers: the key survives the query's bytes, the scores take ≤ 10 B per slot and
    // at most 55 % of the full ones (the ids, here in every response, are the same), and they
    // rank exactly alike.
    let mut compact = query.clone();
    compact.compact = Some(client.compact_key(&mut rng).expect("compact key"));
    let compact = Query::from_bytes(&compact.to_bytes(), server.bfv(), dim).expect("compact query bytes");
    assert!(compact.compact.is_some());
    let small = server.score(&compact, &gallery).expect("compact score");
    assert!(small.score_bytes_per_slot() <= 10.0, "{} B per slot", small.score_bytes_per_slot());
    assert!(small.score_bytes_per_slot() <= 0.55 * resp.score_bytes_per_slot());
    let small_bytes = small.to_bytes();
    let ids = bytes.len() as f64 - resp.score_bytes_per_slot() * (3 * gallery.slot_ids().len()) as f64;
    let scores = small_bytes.len() as f64 - ids;
    assert!(scores <= 0.55 * (bytes.len() as f64 - ids), "{} vs {} bytes", small_bytes.len(), bytes.len());
    let small = Response::from_bytes(&small_bytes).expect("compact response bytes");
    assert_eq!(client.decrypt_top_k(&small, k).expect("decrypt compact"), got);
    for p in 0..3 {
        let pq = &q[p];
        let mut plain: Vec<(i64, usize)> = q.iter().enumerate().map(|(i, g)| (int_dot(g, pq), i)).collect();
        plain.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mine: Vec<(i64, String)> =
            got.iter().filter(|m| m.probe_id == format!("p{p}")).map(|m| (m.score, m.gallery_id.clone())).collect();
        let want: Vec<(i64, String)> = plain[..k].iter().map(|(s, i)| (*s, format!("g{i}"))).collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn hers_baseline_agrees() {
    let dim = 4;
    let (client, server, mut rng) = setup(dim, 3);
    let s = client.quantizer().scale as i64;
    let gallery: Vec<Vec<i64>> = (0..50).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
    let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
    let probe: Vec<i64> = (0..dim).map(|_| rng.random_range(-s..=s)).collect();
    let ep = client.encrypt_probe(&probe, &mut rng).expect("probe");
    let rk = client.relinearization_key(&mut rng).expect("rk");
    let hers = HersBaseline::new(&server, &rk).expect("baseline");
    let ct = hers.score_chunk(&ep, &chunks[0]).expect("hers");
    let got = client.decrypt_slots(&ct).expect("decrypt");
    for (k, g) in gallery.iter().enumerate() {
        assert_eq!(got[k], int_dot(g, &probe));
    }
}

/// A gallery of many chunks scored on all cores: every chunk (including a partly used last one)
/// decrypts to its own exact scores, in gallery order.
#[test]
fn many_chunks_all_exact_and_in_order() {
    let dim = 3;
    let (client, server, mut rng) = setup(dim, 9);
    let s = client.quantizer().scale as i64;
    let n = client.chunk_size();
    let count = 37 * n + 11; // 38 chunks, the last with 11 templates
    let gallery: Vec<Vec<i64>> = (0..count).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
    let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
    let hot = server.prepare_chunks(&chunks).expect("hot");
    let probe: Vec<i64> = (0..dim).map(|_| rng.random_range(-s..=s)).collect();
    let scores = score_probe(&client, &server, &client.encrypt_probe(&probe, &mut rng).expect("probe"), &hot);
    assert_eq!(scores.len(), 38);
    for (c, cs) in scores.iter().enumerate() {
        let got = client.decrypt_chunk(cs).expect("decrypt");
        for (k, v) in got.iter().enumerate() {
            assert_eq!(*v, gallery.get(c * n + k).map_or(0, |g| int_dot(g, &probe)), "chunk {c} slot {k}");
        }
    }
}

/// A custom parameter set whose Q is four primes below 2^48: 48-bit extension primes would need
/// more than the down-scaling takes, so the context falls back to fewer 60-bit ones (and the
/// portable kernel) — and scores stay exact. A q0 too small for the switch is refused.
#[test]
fn custom_parameters_with_many_small_primes_stay_exact() {
    use fhe_math::zq::primes::generate_prime;
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let n = 8192u64;
    let mut moduli = vec![generate_prime(44, 2 * n, 1 << 44).expect("prime")];
    let mut upper = 1u64 << 47;
    while moduli.len() < 4 {
        upper = generate_prime(47, 2 * n, upper).expect("prime");
        moduli.push(upper);
    }
    let t = encsearch::params::DEFAULT_PLAINTEXT;
    let params = encsearch::SearchParams {
        degree: n as usize,
        plaintext: t,
        moduli,
        variance: encsearch::params::DEFAULT_VARIANCE,
    };
    params.validate().expect("valid: log q = 185 ≤ 218");
    // With t ≈ 2^30 a 44-bit q0 is too small: refused, not silently inexact.
    let big_t = generate_prime(30, 2 * n, 1 << 30).expect("plaintext prime");
    let e = encsearch::SearchParams { plaintext: big_t, ..params.clone() }.validate().expect_err("q0 too small");
    assert!(e.to_string().contains("q0"), "{e}");
    let keys = ClientKeys::generate(params, &mut rng).expect("keys");
    let dim = 16;
    let server = ServerContext::new(keys.public(), dim).expect("a context for a valid parameter set");
    assert!(server.extended_moduli().len() <= 8, "{} primes", server.extended_moduli().len());
    let client = Client::new(keys, dim).expect("client");
    let s = client.quantizer().scale as i64;
    let gallery: Vec<Vec<i64>> = (0..300).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
    let probe: Vec<i64> = (0..dim).map(|_| rng.random_range(-s..=s)).collect();
    let hot = server.prepare_chunks(&client.encrypt_quantized(&gallery, &mut rng).expect("encrypt")).expect("hot");
    let scores = score_probe(&client, &server, &client.encrypt_probe(&probe, &mut rng).expect("probe"), &hot);
    let got = client.decrypt_chunk(&scores[0]).expect("decrypt");
    for (k, g) in gallery.iter().enumerate() {
        assert_eq!(got[k], int_dot(g, &probe), "slot {k}");
    }
}

/// Compact answers where Q's primes lie on both sides of 2^48 (a 24-bit t at N = 4096 gives a
/// 43-bit q0 and a 60-bit q1): the vector builds of the down-scaling take only targets below
/// 2^48, so the digits of `c2` would be rounded by two builds that may disagree by one, and a
/// disagreement garbles a whole chunk; the server rounds them all with one build. Every score
/// stays exact on every build.
#[test]
fn compact_answers_stay_exact_when_q_straddles_2_48() {
    use fhe_math::zq::primes::generate_prime;
    let n = 4096usize;
    let t = generate_prime(24, 2 * n as u64, 1 << 24).expect("plaintext prime");
    let params = encsearch::SearchParams::for_degree(n, t).expect("params");
    let bits = params.moduli_bits();
    assert!(bits.iter().any(|&b| b <= 48) && bits.iter().any(|&b| b > 48), "{bits:?}");
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let keys = ClientKeys::generate(params, &mut rng).expect("keys");
    let dim = 16;
    let client = Client::new(keys, dim).expect("client");
    let s = client.quantizer().scale as i64;
    let gallery: Vec<Vec<i64>> =
        (0..2 * n).map(|_| (0..dim).map(|_| if rng.random::<bool>() { s } else { -s }).collect()).collect();
    let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
    for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
        let server = ServerContext::with_simd(client.keys().public(), dim, simd).expect("server");
        check_exact(&client, &server, &chunks, &gallery, &mut rng);
    }
}
