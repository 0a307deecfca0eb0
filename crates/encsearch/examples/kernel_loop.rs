//! Runs `score_chunk` ITERS times over DISTINCT copies of a chunk on one thread, then scores
//! one probe against DISTINCT chunks on all cores: `kernel_loop ITERS [DISTINCT]`.
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
    let g: Vec<Vec<i64>> =
        (0..client.chunk_size()).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
    let chunks = client.encrypt_quantized(&g, &mut rng)?;
    let hot = server.prepare_chunks(&chunks)?;
    let distinct: usize = std::env::args().nth(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let hot: Vec<_> = (0..distinct).map(|_| hot[0].clone()).collect();
    let probe = client.encrypt_probe(&g[0], &mut rng)?;
    let mut hp = server.prepare_probe(&probe)?;
    let t = std::time::Instant::now();
    for _ in 0..200 {
        hp = server.prepare_probe(&probe)?;
    }
    println!("{:?} kernel; probe preparation {:.3} ms", server.kernel(), t.elapsed().as_secs_f64() * 5.0);
    let mut acc = Accumulator::default();
    let t = std::time::Instant::now();
    for i in 0..iters {
        std::hint::black_box(server.score_chunk(&hp, &hot[i % distinct], &mut acc)?);
    }
    println!("one thread: {:.3} ms/chunk", t.elapsed().as_secs_f64() * 1e3 / iters as f64);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        std::hint::black_box(server.score_probe(&probe, &hot)?);
        println!("score_probe over {distinct} copies, all cores: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    // Distinct chunks, prepared on all cores as a server loads them.
    let rows: Vec<f32> = (0..distinct * client.chunk_size() * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let hot = server.prepare_chunks(&client.encrypt_templates(&rows, &mut rng)?)?;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        std::hint::black_box(server.score_probe(&probe, &hot)?);
        println!("score_probe over {distinct} distinct chunks, all cores: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}
