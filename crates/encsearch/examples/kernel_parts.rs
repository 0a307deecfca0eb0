//! Times the parts of scoring one chunk on synthetic data: `kernel_parts [DISTINCT]`.
use encsearch::{Kernel, LANES, PROBE_ROWS};
use fhe_math::ntt::NttOperator;
use fhe_math::zq::{Modulus, primes::generate_prime};
use std::time::Instant;

fn main() {
    let distinct: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let (n, dim, iters) = (4096usize, 16usize, 200usize);
    let mut moduli = vec![];
    let mut upper = 1u64 << 48;
    while moduli.len() < 4 {
        upper = generate_prime(48, 2 * n as u64, upper).expect("prime");
        moduli.push(Modulus::new(upper).expect("modulus"));
    }
    let kernel = Kernel::select(&moduli.iter().map(|q| **q).collect::<Vec<_>>());
    let probe: Vec<Vec<u64>> =
        moduli.iter().map(|q| (0..PROBE_ROWS * dim * n).map(|i| (i as u64 * 7919) % **q).collect()).collect();
    let chunks: Vec<Vec<Vec<u64>>> = (0..distinct)
        .map(|c| moduli.iter().map(|q| (0..2 * dim * n).map(|i| ((i + c) as u64 * 104_729) % **q).collect()).collect())
        .collect();
    let mut out = vec![0u64; 3 * n];
    let t = Instant::now();
    for it in 0..iters {
        for (i, q) in moduli.iter().enumerate() {
            kernel.tensor_sum(q, &probe[i], &chunks[it % distinct][i], dim, n, &mut out);
        }
    }
    println!(
        "{kernel:?} kernel, {} primes: {:.3} ms/chunk (LANES {LANES})",
        moduli.len(),
        t.elapsed().as_secs_f64() * 1e3 / iters as f64
    );
    let ops: Vec<NttOperator> = moduli.iter().map(|q| NttOperator::new(q, n).expect("ntt")).collect();
    let t = Instant::now();
    for _ in 0..iters {
        for op in &ops {
            for part in 0..3 {
                op.backward(&mut out[part * n..(part + 1) * n]);
            }
        }
    }
    println!("12 inverse NTTs (fhe-math): {:.3} ms/chunk", t.elapsed().as_secs_f64() * 1e3 / iters as f64);
    let fast: Vec<encsearch::Ntt> = moduli.iter().map(|q| encsearch::Ntt::new(q, n).expect("ntt")).collect();
    let t = Instant::now();
    for _ in 0..iters {
        for op in &fast {
            for part in 0..3 {
                op.backward(&mut out[part * n..(part + 1) * n]);
            }
        }
    }
    println!(
        "12 inverse NTTs (ours, fast = {}): {:.3} ms/chunk",
        fast[0].is_fast(),
        t.elapsed().as_secs_f64() * 1e3 / iters as f64
    );
}
