#![allow(missing_docs)] // reason: criterion_group! generates undocumented items
//! Criterion benches of the scoring path, named by parameters: a one-probe query against one
//! chunk and against 16 chunks (their difference is the per-chunk cost), the same asking for a
//! compact answer (relinearised, two small primes), the hot-form
//! preparation (each for every kernel the CPU has: IFMA, the narrow AVX2 form, portable), the
//! client's decryption, and the HERS algorithm on one chunk.

use criterion::{Criterion, criterion_group, criterion_main};
use encsearch::{Client, ClientKeys, Preset, ServerContext, Simd, hot::HotGallery, server::HersBaseline};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn bench(c: &mut Criterion) {
    let dim = 16;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
    let server = ServerContext::new(keys.public(), dim).expect("server");
    let client = Client::new(keys, dim).expect("client");
    let n = client.chunk_size();
    let s = client.quantizer().scale as i64;
    let gallery: Vec<Vec<i64>> = (0..n).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
    let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
    let q = *client.quantizer();
    let probe = client.encrypt_probe(&gallery[0], &mut rng).expect("probe");
    let query = client.query_of(vec!["p".into()], vec![probe.clone()]).expect("query");
    let mut compact = query.clone();
    compact.compact = Some(client.compact_key(&mut rng).expect("compact key"));
    let rk = client.relinearization_key(&mut rng).expect("rk");
    let log_q = client.keys().public().params.log_q().round();
    let mut g = c.benchmark_group("encsearch");
    let mut done = Vec::new();
    for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
        let server = ServerContext::with_simd(client.keys().public(), dim, simd).expect("server");
        if done.contains(&server.kernel()) {
            continue;
        }
        done.push(server.kernel());
        let hot = server.prepare_chunks(&chunks).expect("hot");
        let one = HotGallery::in_memory(hot.clone(), Vec::new(), &q);
        let many = HotGallery::in_memory(vec![hot[0].clone(); 16], Vec::new(), &q);
        let np = server.extended_moduli().len();
        let name = format!("n={n}/log(q)={log_q}/d={dim}/kernel={:?}", server.kernel());
        g.bench_function(format!("query_1_chunk/{name}/primes={np}"), |b| {
            b.iter(|| server.score(&query, &one).expect("score"))
        });
        g.bench_function(format!("query_16_chunks/{name}/primes={np}"), |b| {
            b.iter(|| server.score(&query, &many).expect("score"))
        });
        g.bench_function(format!("query_1_chunk_compact/{name}/primes={np}"), |b| {
            b.iter(|| server.score(&compact, &one).expect("score"))
        });
        g.bench_function(format!("query_16_chunks_compact/{name}/primes={np}"), |b| {
            b.iter(|| server.score(&compact, &many).expect("score"))
        });
        g.bench_function(format!("prepare_chunk/{name}"), |b| {
            b.iter(|| server.prepare_chunk(&chunks[0]).expect("hot"))
        });
    }
    let hot = server.prepare_chunks(&chunks).expect("hot");
    let one = HotGallery::in_memory(hot, Vec::new(), &q);
    let name = format!("n={n}/log(q)={log_q}/d={dim}/kernel={:?}", server.kernel());
    g.bench_function(format!("decrypt_chunk/{name}"), |b| {
        let cs = server.score(&query, &one).expect("score").scores.remove(0).remove(0);
        b.iter(|| client.decrypt_chunk(&cs).expect("decrypt"))
    });
    g.bench_function(format!("decrypt_chunk_compact/{name}"), |b| {
        let cs = server.score(&compact, &one).expect("score").scores.remove(0).remove(0);
        b.iter(|| client.decrypt_chunk(&cs).expect("decrypt"))
    });
    g.bench_function(format!("decrypt_top_k_16_chunks/{name}"), |b| {
        let ids = (0..16 * n).map(|i| Some(i.to_string())).collect();
        let many = HotGallery::in_memory(vec![one.chunks()[0].clone(); 16], ids, &q);
        // A probe of norm `s` (one coordinate), so every score lies in the quantiser's range.
        let axis: Vec<i64> = (0..dim).map(|i| if i == 0 { s } else { 0 }).collect();
        let probe = client.encrypt_probe(&axis, &mut ChaCha20Rng::seed_from_u64(2)).expect("probe");
        let query = client.query_of(vec!["p".into()], vec![probe]).expect("query");
        let r = server.score(&query, &many).expect("score");
        b.iter(|| client.decrypt_top_k(&r, 10).expect("decrypt"))
    });
    let hers = HersBaseline::new(&server, &rk).expect("baseline");
    g.bench_function(format!("hers_chunk/{name}"), |b| b.iter(|| hers.score_chunk(&probe, &chunks[0]).expect("hers")));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
