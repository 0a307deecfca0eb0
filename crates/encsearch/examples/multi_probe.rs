//! Times one query of P probes against a 1M-template hot gallery: `multi_probe [P] [auto|avx2|off]`
//! (the last: which vector builds the server may use).
use encsearch::{Client, ClientKeys, Preset, ServerContext, Simd, hot::HotGallery};
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let probes: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let (dim, size) = (16, 1_000_000);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let keys = ClientKeys::generate(Preset::N4096.params()?, &mut rng)?;
    let simd = match std::env::args().nth(2).as_deref() {
        Some("off") => Simd::portable(),
        Some("avx2") => Simd::without_avx512(),
        _ => Simd::detect(),
    };
    let server = ServerContext::with_simd(keys.public(), dim, simd)?;
    println!("kernel {:?}; {}", server.kernel(), simd.describe());
    let client = Client::new(keys, dim)?;
    let rows: Vec<f32> = (0..size * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut hot = Vec::new();
    for batch in rows.chunks(64 * client.chunk_size() * dim) {
        hot.extend(server.prepare_chunks(&client.encrypt_templates(batch, &mut rng)?)?);
    }
    let n = hot.len() * client.chunk_size();
    let gallery = HotGallery::in_memory(hot, vec![None; n], client.quantizer());
    let ids = (0..probes).map(|i| i.to_string()).collect();
    let query = client.encrypt_query(ids, &rows[..probes * dim], &mut rng)?;
    for _ in 0..std::env::args().nth(3).map(|s| s.parse()).transpose()?.unwrap_or(3) {
        let t = std::time::Instant::now();
        std::hint::black_box(server.score(&query, &gallery)?);
        println!(
            "{probes} probes × 1M: {:.1} ms ({:.1} ms per probe)",
            t.elapsed().as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3 / probes as f64
        );
    }
    Ok(())
}
