//! A measurement of candidate arithmetic for the tensor kernel on CPUs without
//! AVX-512, per prime and per chunk (dimension 16, N = 4096, Karatsuba: 3 products per
//! coefficient and dimension), data in cache: the portable u128 kernel on 48-bit residues (what
//! the current hot basis of 4 primes needs) against an AVX2 kernel on 30-bit residues stored as
//! u32 (a hot basis of 7 such primes), whose products (`vpmuludq`, < 2^60) sum in 64-bit lanes
//! with no reduction inside a chunk's 16 dimensions.
//!
//! ```text
//! cargo run --release -p encsearch --example kernel_candidates
//! ```
//! Timing only: the candidate is not wired into the server (its outputs are not checked here).

use std::time::Instant;

const DIM: usize = 16;
const N: usize = 4096;

fn values(seed: u64, len: usize, bound: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % bound
        })
        .collect()
}

/// The portable kernel's arithmetic (layout `[k/8][j][row][k%8]`, two rows per dimension).
fn scalar48(q: u64, p: &[u64], g: &[u64], out: &mut [u64]) {
    let block = 2 * DIM * 8;
    for blk in 0..N / 8 {
        let (pp, gg) = (&p[blk * block..][..block], &g[blk * block..][..block]);
        for lane in 0..8 {
            let (mut c0, mut cm, mut c2) = (0u128, 0u128, 0u128);
            for j in 0..DIM {
                let (x0, x1) = (pp[2 * j * 8 + lane], pp[(2 * j + 1) * 8 + lane]);
                let (y0, y1) = (gg[2 * j * 8 + lane], gg[(2 * j + 1) * 8 + lane]);
                c0 += x0 as u128 * y0 as u128;
                c2 += x1 as u128 * y1 as u128;
                cm += (x0 + x1) as u128 * (y0 + y1) as u128;
            }
            let k = blk * 8 + lane;
            out[k] = (c0 % q as u128) as u64;
            out[N + k] = (cm % q as u128) as u64;
            out[2 * N + k] = (c2 % q as u128) as u64;
        }
    }
}

/// 30-bit residues as u32, eight coefficients per 256-bit vector: even and odd lanes multiplied
/// separately (`vpmuludq` takes the low 32 bits of each 64-bit lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_30(q: u64, p: &[u32], g: &[u32], out: &mut [u64]) {
    use std::arch::x86_64::*;
    let block = 2 * DIM * 8;
    let qv = _mm256_set1_epi32(q as i32);
    let load = |s: &[u32], at: usize| -> __m256i {
        let v = &s[at..at + 8];
        // SAFETY: `v` holds eight u32 (bounds-checked slice); unaligned load.
        #[allow(unsafe_code, reason = "unaligned 256-bit load of a checked slice")]
        unsafe {
            _mm256_loadu_si256(v.as_ptr().cast())
        }
    };
    for blk in 0..N / 8 {
        let (pp, gg) = (&p[blk * block..][..block], &g[blk * block..][..block]);
        let mut acc = [_mm256_setzero_si256(); 6];
        for j in 0..DIM {
            let (x0, x1) = (load(pp, 2 * j * 8), load(pp, (2 * j + 1) * 8));
            let (y0, y1) = (load(gg, 2 * j * 8), load(gg, (2 * j + 1) * 8));
            // x0 + x1 < 2q, brought below q by an unsigned min with x0 + x1 − q.
            let xs = _mm256_add_epi32(x0, x1);
            let xs = _mm256_min_epu32(xs, _mm256_sub_epi32(xs, qv));
            let ys = _mm256_add_epi32(y0, y1);
            let ys = _mm256_min_epu32(ys, _mm256_sub_epi32(ys, qv));
            for (t, (a, b)) in [(x0, y0), (x1, y1), (xs, ys)].into_iter().enumerate() {
                let even = _mm256_mul_epu32(a, b);
                let odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32));
                acc[2 * t] = _mm256_add_epi64(acc[2 * t], even);
                acc[2 * t + 1] = _mm256_add_epi64(acc[2 * t + 1], odd);
            }
        }
        let mut lanes = [[0u64; 4]; 6];
        for (dst, v) in lanes.iter_mut().zip(acc) {
            // SAFETY: `dst` is four u64; unaligned store.
            #[allow(unsafe_code, reason = "unaligned 256-bit store into a local array")]
            unsafe {
                _mm256_storeu_si256(dst.as_mut_ptr().cast(), v)
            };
        }
        for t in 0..3 {
            for i in 0..4 {
                out[t * N + blk * 8 + 2 * i] = lanes[2 * t][i] % q;
                out[t * N + blk * 8 + 2 * i + 1] = lanes[2 * t + 1][i] % q;
            }
        }
    }
}

fn time(name: &str, primes: usize, mut f: impl FnMut()) {
    for _ in 0..20 {
        f();
    }
    let reps = 400;
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / reps as f64;
    let per = ns / (N * DIM) as f64;
    println!(
        "{name:32} {:7.1} µs per prime and chunk; {per:.3} ns per coefficient·dimension, {:.2} ns for a hot basis of {primes} primes",
        ns / 1e3,
        per * primes as f64
    );
}

fn main() {
    let q48 = (1u64 << 48) - 59;
    let q30 = (1u64 << 30) - 35;
    let (p, g) = (values(1, 2 * DIM * N, q48), values(2, 2 * DIM * N, q48));
    let mut out = vec![0u64; 3 * N];
    time("portable u128, 48-bit residues", 4, || scalar48(q48, &p, &g, &mut out));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        let narrow = |s: u64| values(s, 2 * DIM * N, q30).into_iter().map(|v| v as u32).collect::<Vec<u32>>();
        let (p30, g30) = (narrow(3), narrow(4));
        // SAFETY: AVX2 was detected on the running CPU just above.
        #[allow(unsafe_code, reason = "calls the AVX2 candidate after detecting the feature")]
        time("AVX2 u32, 30-bit residues", 7, || unsafe { avx2_30(q30, &p30, &g30, &mut out) });
    } else {
        println!("AVX2 candidate skipped: this CPU has no AVX2");
    }
    std::hint::black_box(&out);
}
