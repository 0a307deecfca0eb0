//! Runs `score_chunk` ITERS times over DISTINCT copies of a chunk: `kernel_loop ITERS [DISTINCT]`.
use encsearch::{Accumulator, Client, ClientKeys, Preset, ServerContext};
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iters: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let dim = 16;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let keys = ClientKeys::generate(Preset::N4096.params()?, &mut rng)?;
    let server = ServerContext::new(keys.public(), dim)?;
    let client = Client::new(keys, dim)?;
    let s = client.quantizer().scale as i64;
    let g: Vec<Vec<i64>> = (0..client.chunk_size()).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
    let chunks = client.encrypt_quantized(&g, &mut rng)?;
    let hot = server.prepare_chunks(&chunks)?;
    let distinct: usize = std::env::args().nth(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let hot: Vec<_> = (0..distinct).map(|_| hot[0].clone()).collect();
    let hp = server.prepare_probe(&client.encrypt_probe(&g[0], &mut rng)?)?;
    let mut acc = Accumulator::default();
    let t = std::time::Instant::now();
    for i in 0..iters {
        std::hint::black_box(server.score_chunk(&hp, &hot[i % distinct], &mut acc)?);
    }
    println!("{:.3} ms/chunk", t.elapsed().as_secs_f64() * 1e3 / iters as f64);
    Ok(())
}
