//! The scoring kernel: lazy accumulation of degree-2 tensor products in the NTT domain.
//!
//! For one RNS prime q, with the probe `(a0, a1)_j` and the gallery `(b0, b1)_j` of every
//! dimension j in NTT form (so products are pointwise), it computes
//! `c0 = Σ a0·b0`, `c2 = Σ a1·b1` and (Karatsuba) `c1 = Σ (a0+a1)(b0+b1) − c0 − c2` with u128
//! accumulators, reducing mod q only every [`REDUCE_EVERY`] dimensions: 3 products per
//! coefficient and dimension instead of 4. The probe's hot form carries `a0 + a1` as a third
//! row. Primes must be below 2^60: sums are below 2^61, their products below 2^122, and
//! `REDUCE_EVERY` of them (plus a reduced remainder) stay below 2^128.

use fhe_math::zq::Modulus;

/// Dimensions accumulated between two reductions (`32 · 2^122 + 2^60 < 2^128`).
pub const REDUCE_EVERY: usize = 32;

/// Rows per dimension in the probe's hot form: `a0`, `a1`, `a0 + a1`.
pub const PROBE_ROWS: usize = 3;

/// Scratch state of the kernel (kept for API stability; the accumulators live on the stack).
#[derive(Debug, Default)]
pub struct Accumulator {
    _private: (),
}

impl Accumulator {
    /// Accumulates `Σ_j probe_j ⊗ chunk_j` for one prime.
    ///
    /// Both inputs are in the coefficient-major layout (see [`blocked_index`]): for each
    /// coefficient, every dimension's rows follow each other, so the kernel reads both streams
    /// strictly sequentially. `probe` has [`PROBE_ROWS`] rows per dimension (`a0, a1, a0+a1`),
    /// `chunk` 2 (`b0, b1`), all reduced mod q. `out` receives `c0 | c1 | c2` (3n values mod q,
    /// natural order). On x86-64 CPUs with BMI2 and ADX a build of the kernel using them runs.
    pub fn tensor_sum(&mut self, q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("bmi2") && std::is_x86_feature_detected!("adx") {
            // SAFETY: both target features were detected on the running CPU just above.
            #[allow(unsafe_code, reason = "calls the BMI2/ADX build of the kernel after detecting both features")]
            unsafe {
                tensor_sum_bmi2(q, probe, chunk, dim, n, out)
            };
            return;
        }
        tensor_sum_portable(q, probe, chunk, dim, n, out);
    }
}

/// The kernel compiled with BMI2 (`mulx`: 64×64→128 products into any registers) and ADX
/// (carry chains), which the baseline x86-64 target lacks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2,adx")]
fn tensor_sum_bmi2(q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
    tensor_sum_portable(q, probe, chunk, dim, n, out);
}

#[inline(always)]
fn tensor_sum_portable(q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
    debug_assert_eq!(probe.len(), PROBE_ROWS * dim * n);
    debug_assert_eq!(chunk.len(), 2 * dim * n);
    debug_assert_eq!(out.len(), 3 * n);
    let (o0, rest) = out.split_at_mut(n);
    let (o1, o2) = rest.split_at_mut(n);
    // One coefficient at a time, all dimensions innermost: the three u128 accumulators stay
    // in registers and both streams are read strictly sequentially.
    for (k, (p, g)) in probe.chunks_exact(PROBE_ROWS * dim).zip(chunk.chunks_exact(2 * dim)).enumerate() {
        let (mut c0, mut cm, mut c2) = (0u128, 0u128, 0u128);
        for (block, (pb, gb)) in p.chunks(PROBE_ROWS * REDUCE_EVERY).zip(g.chunks(2 * REDUCE_EVERY)).enumerate() {
            if block > 0 {
                c0 = q.reduce_u128(c0) as u128;
                cm = q.reduce_u128(cm) as u128;
                c2 = q.reduce_u128(c2) as u128;
            }
            for (a, b) in pb.chunks_exact(PROBE_ROWS).zip(gb.chunks_exact(2)) {
                let (y0, y1) = (b[0], b[1]);
                c0 += a[0] as u128 * y0 as u128;
                c2 += a[1] as u128 * y1 as u128;
                cm += a[2] as u128 * (y0 + y1) as u128;
            }
        }
        let c0 = q.reduce_u128(c0);
        let c2 = q.reduce_u128(c2);
        let m = q.reduce_u128(cm);
        o0[k] = c0;
        o2[k] = c2;
        o1[k] = q.sub(m, q.add(c0, c2));
    }
}

/// Position of coefficient `k` of row `row` (of `rows` per dimension) of dimension `j` in the
/// coefficient-major layout of one prime, `[k][j][row]`: the kernel keeps its accumulators in
/// registers while all dimensions of one coefficient stream past.
pub fn blocked_index(dim: usize, rows: usize, j: usize, row: usize, k: usize) -> usize {
    (k * dim + j) * rows + row
}

/// Writes the probe rows `a0, a1, a0 + a1` of dimension `j` for one prime into the blocked
/// layout `out` (one prime's part).
pub fn probe_rows(q: &Modulus, a0: &[u64], a1: &[u64], dim: usize, j: usize, out: &mut [u64]) {
    for (k, (x, y)) in a0.iter().zip(a1).enumerate() {
        out[blocked_index(dim, PROBE_ROWS, j, 0, k)] = *x;
        out[blocked_index(dim, PROBE_ROWS, j, 1, k)] = *y;
        out[blocked_index(dim, PROBE_ROWS, j, 2, k)] = q.add(*x, *y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_modular_sum() {
        let qv = (1u64 << 60) - 93; // any odd modulus below 2^60 works for the kernel
        let q = Modulus::new(qv).expect("modulus");
        let (dim, n) = (130, 5);
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % qv
        };
        let pairs: Vec<u64> = (0..2 * dim * n).map(|_| next()).collect();
        let chunk: Vec<u64> = (0..2 * dim * n).map(|_| next()).collect();
        let mut probe = vec![0u64; PROBE_ROWS * dim * n];
        let mut blocked = vec![0u64; 2 * dim * n];
        for j in 0..dim {
            let p = &pairs[2 * j * n..2 * (j + 1) * n];
            probe_rows(&q, &p[..n], &p[n..], dim, j, &mut probe);
            for k in 0..n {
                for row in 0..2 {
                    blocked[blocked_index(dim, 2, j, row, k)] = chunk[(2 * j + row) * n + k];
                }
            }
        }
        let mut out = vec![0; 3 * n];
        Accumulator::default().tensor_sum(&q, &probe, &blocked, dim, n, &mut out);
        // The portable build agrees with whichever build the CPU selected.
        let mut portable = vec![0; 3 * n];
        tensor_sum_portable(&q, &probe, &blocked, dim, n, &mut portable);
        assert_eq!(portable, out);
        let m = |a: u64, b: u64| ((a as u128 * b as u128) % qv as u128) as u64;
        let ad = |a: u64, b: u64| ((a as u128 + b as u128) % qv as u128) as u64;
        for k in 0..n {
            let (mut c0, mut c1, mut c2) = (0, 0, 0);
            for j in 0..dim {
                let (a0, a1) = (pairs[2 * j * n + k], pairs[(2 * j + 1) * n + k]);
                let (b0, b1) = (chunk[2 * j * n + k], chunk[(2 * j + 1) * n + k]);
                c0 = ad(c0, m(a0, b0));
                c1 = ad(ad(c1, m(a0, b1)), m(a1, b0));
                c2 = ad(c2, m(a1, b1));
            }
            assert_eq!((out[k], out[n + k], out[2 * n + k]), (c0, c1, c2));
        }
    }
}
