#![allow(missing_docs)] // reason: criterion_group! generates undocumented items
//! Criterion benches of the scoring kernels, named by parameters.

use criterion::{Criterion, criterion_group, criterion_main};
use encsearch::{Accumulator, Client, ClientKeys, Preset, ServerContext};
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
    let hot = server.prepare_chunks(&chunks).expect("hot");
    let probe = client.encrypt_probe(&gallery[0], &mut rng).expect("probe");
    let hp = server.prepare_probe(&probe).expect("probe");
    let rk = client.relinearization_key(&mut rng).expect("rk");
    let np = server.extended_moduli().len();
    let log_q = client.keys().public().params.log_q().round();
    let name = format!("n={n}/log(q)={log_q}/d={dim}/kernel={:?}", server.kernel());
    let mut g = c.benchmark_group("encsearch");
    let mut acc = Accumulator::default();
    g.bench_function(format!("score_chunk/{name}/primes={np}"), |b| {
        b.iter(|| server.score_chunk(&hp, &hot[0], &mut acc).expect("score"))
    });
    g.bench_function(format!("prepare_chunk/{name}"), |b| b.iter(|| server.prepare_chunk(&chunks[0]).expect("hot")));
    g.bench_function(format!("decrypt_chunk/{name}"), |b| {
        let cs = server.score_chunk(&hp, &hot[0], &mut acc).expect("score");
        b.iter(|| client.decrypt_chunk(&cs).expect("decrypt"))
    });
    let m = server.hers_multiplicator(&rk).expect("mult");
    g.bench_function(format!("hers_chunk/{name}"), |b| {
        b.iter(|| server.score_chunk_hers(&probe, &chunks[0], &m).expect("hers"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
