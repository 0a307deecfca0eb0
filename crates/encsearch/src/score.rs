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

/// Coefficients processed together: their accumulators (3 × 64 × 16 B) stay in L1 while all
/// dimensions stream past.
pub const BLOCK: usize = 64;

/// Scratch state of the kernel (kept for API stability; the accumulators live on the stack).
#[derive(Debug, Default)]
pub struct Accumulator {
    _private: (),
}

impl Accumulator {
    /// Accumulates `Σ_j probe_j ⊗ chunk_j` for one prime.
    ///
    /// Both inputs are in the blocked layout (see [`blocked_index`]): for each block of
    /// [`BLOCK`] coefficients, every dimension's rows follow each other, so the kernel reads
    /// both streams strictly sequentially. `probe` has [`PROBE_ROWS`] rows per dimension
    /// (`a0, a1, a0+a1`), `chunk` 2 (`b0, b1`), all reduced mod q; `n` must be a multiple of
    /// [`BLOCK`]. `out` receives `c0 | c1 | c2` (3n values mod q, natural order).
    pub fn tensor_sum(&mut self, q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
        debug_assert_eq!(probe.len(), PROBE_ROWS * dim * n);
        debug_assert_eq!(chunk.len(), 2 * dim * n);
        debug_assert_eq!(out.len(), 3 * n);
        let (o0, rest) = out.split_at_mut(n);
        let (o1, o2) = rest.split_at_mut(n);
        debug_assert_eq!(n % BLOCK, 0);
        let b = BLOCK;
        for (blk, (pb, gb)) in probe.chunks_exact(PROBE_ROWS * dim * b).zip(chunk.chunks_exact(2 * dim * b)).enumerate() {
            let start = blk * b;
            let mut acc0 = [0u128; BLOCK];
            let mut accm = [0u128; BLOCK];
            let mut acc2 = [0u128; BLOCK];
            for (j, (p, g)) in pb.chunks_exact(PROBE_ROWS * b).zip(gb.chunks_exact(2 * b)).enumerate() {
                let (a0, rest) = p.split_at(b);
                let (a1, am) = rest.split_at(b);
                let (b0, b1) = g.split_at(b);
                for k in 0..b {
                    let (y0, y1) = (b0[k], b1[k]);
                    acc0[k] += a0[k] as u128 * y0 as u128;
                    acc2[k] += a1[k] as u128 * y1 as u128;
                    accm[k] += am[k] as u128 * (y0 + y1) as u128;
                }
                if (j + 1) % REDUCE_EVERY == 0 && j + 1 < dim {
                    for v in acc0.iter_mut().chain(accm.iter_mut()).chain(acc2.iter_mut()) {
                        *v = q.reduce_u128(*v) as u128;
                    }
                }
            }
            for k in 0..b {
                let c0 = q.reduce_u128(acc0[k]);
                let c2 = q.reduce_u128(acc2[k]);
                let m = q.reduce_u128(accm[k]);
                o0[start + k] = c0;
                o2[start + k] = c2;
                o1[start + k] = q.sub(m, q.add(c0, c2));
            }
        }
    }
}

/// Position of coefficient `k` of row `row` (of `rows` per dimension) of dimension `j` in the
/// blocked layout of one prime: `[k / BLOCK][j][row][k % BLOCK]`.
pub fn blocked_index(dim: usize, rows: usize, j: usize, row: usize, k: usize) -> usize {
    ((k / BLOCK) * dim + j) * rows * BLOCK + row * BLOCK + k % BLOCK
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
        let (dim, n) = (130, 2 * BLOCK);
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
