//! The scoring kernel: lazy accumulation of degree-2 tensor products in the NTT domain.
//!
//! For one RNS prime q, with the probe `(a0, a1)_j` and the gallery `(b0, b1)_j` of every
//! dimension j in NTT form (so products are pointwise), it computes
//! `c0 = Σ a0·b0`, `c2 = Σ a1·b1` and (Karatsuba) `c1 = Σ (a0+a1)(b0+b1) − c0 − c2`:
//! 3 products per coefficient and dimension instead of 4. Both sums `a0+a1` and `b0+b1` are
//! formed in the kernel: storing a third probe row was measured slower (the scan is limited by
//! the bytes it reads, and the probe is read once per chunk).
//!
//! Three builds, chosen once per [`crate::ServerContext`] from its [`Simd`] and hot form
//! ([`Kernel::select`]):
//! * [`Kernel::Ifma`], on CPUs with AVX-512 IFMA and when every prime is below 2^48: eight
//!   coefficients per instruction with 52-bit multiply-accumulates. Sums of up to
//!   [`IFMA_BLOCK`] products (< 16·q² < q·2^52) are reduced by one Montgomery step, which
//!   divides by 2^52: the kernel returns the sums times `2^-52 mod q`, and the down-scaling
//!   after the inverse NTT (linear, so the factor passes through) multiplies it back for free
//!   ([`Kernel::output_factor`], folded into the constants of the down-scaling, `rescale.rs`).
//! * [`Kernel::Avx2`], on CPUs with AVX2 and no IFMA (or IFMA turned off): the narrow hot form,
//!   29-bit primes in u32 words, scored by its own kernel (`narrow.rs`).
//! * [`Kernel::Scalar`], anywhere and for primes up to 2^60: u128 accumulators reduced every
//!   [`REDUCE_EVERY`] dimensions (sums below 2^61, products below 2^122, `32 · 2^122 + 2^60 <
//!   2^128`), in a BMI2/ADX build where the CPU has them.
//!
//! All read the same layout, `[k / LANES][dim][row][k % LANES]` per prime (see
//! [`blocked_index`]; u64 words for the wide form, u32 for the narrow one): eight coefficients
//! of one row side by side, all dimensions of those eight coefficients in one contiguous block,
//! so both streams are read strictly sequentially.

use fhe_math::zq::Modulus;

use super::Simd;

/// Dimensions accumulated between two reductions by the scalar kernel.
pub(crate) const REDUCE_EVERY: usize = 32;

/// Products summed before a Montgomery reduction in the IFMA kernel (needs `q < 2^52 / 16`).
pub(crate) const IFMA_BLOCK: usize = 16;

/// Bits every prime must stay below for the IFMA kernel.
pub(crate) const IFMA_MAX_BITS: u32 = 48;

/// Rows per dimension in the probe's hot form: `a0`, `a1`.
pub(crate) const PROBE_ROWS: usize = 2;

/// Coefficients side by side in the hot layout (one 512-bit vector of u64).
pub(crate) const LANES: usize = 8;

/// Which build of the kernel scores a context's chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Portable u128 kernel (BMI2/ADX build where available).
    Scalar,
    /// AVX-512 IFMA kernel; its sums come out times `2^-52 mod q`.
    Ifma,
    /// AVX2 kernel of the narrow hot form (29-bit primes in u32 words, `narrow.rs`).
    Avx2,
}

impl Kernel {
    /// The fastest kernel `simd` allows for a hot form of these primes; `narrow`: the hot form
    /// is the narrow one (u32 words), which only [`Kernel::Avx2`] reads.
    pub fn select(moduli: &[u64], narrow: bool, simd: Simd) -> Kernel {
        if narrow {
            Kernel::Avx2
        } else if simd.ifma() && moduli.iter().all(|&q| q < 1 << IFMA_MAX_BITS) {
            Kernel::Ifma
        } else {
            Kernel::Scalar
        }
    }

    /// The factor that turns the kernel's output for prime q into the plain sums: `2^52 mod q`
    /// for the Montgomery reduction of the IFMA kernel, 1 otherwise.
    pub(crate) fn output_factor(self, q: &Modulus) -> u64 {
        match self {
            Kernel::Scalar | Kernel::Avx2 => 1,
            Kernel::Ifma => ((1u128 << 52) % **q as u128) as u64,
        }
    }

    /// Accumulates `Σ_j probe_j ⊗ chunk_j` for one prime of the wide (u64) hot form; the narrow
    /// form has its own entry point (`narrow.rs`), and [`Kernel::Avx2`] here runs the scalar
    /// build.
    ///
    /// `probe` has [`PROBE_ROWS`] rows per dimension (`a0, a1`), `chunk` 2 (`b0, b1`), all
    /// reduced mod q and in the layout of [`blocked_index`]. `out` receives `c0 | c1 | c2`
    /// (3n values mod q, natural order), times `1 / `[`Kernel::output_factor`].
    pub(crate) fn tensor_sum(self, q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
        assert!(n.is_multiple_of(LANES), "ring degree {n} is not a multiple of {LANES}");
        assert!(dim > 0, "no dimension to sum");
        assert_eq!(probe.len(), PROBE_ROWS * dim * n, "probe of another shape");
        assert_eq!(chunk.len(), 2 * dim * n, "chunk of another shape");
        assert_eq!(out.len(), 3 * n, "output of another shape");
        #[cfg(target_arch = "x86_64")]
        if self == Kernel::Ifma && super::ifma::detected() && **q < 1 << IFMA_MAX_BITS {
            // SAFETY: AVX-512F and IFMA were detected on the running CPU just above, and the
            // slice lengths the kernel reads and writes were asserted at the top.
            #[allow(unsafe_code, reason = "AVX-512 IFMA intrinsics after detecting the features")]
            unsafe {
                tensor_sum_ifma::<1>(**q, &[probe], chunk, dim, n, &mut [out])
            };
            return;
        }
        tensor_sum_scalar(q, probe, chunk, dim, n, out);
        if self == Kernel::Ifma {
            // Asked for the IFMA kernel where it cannot run: keep its output convention.
            let r_inv = q.inv(self.output_factor(q)).unwrap_or(1);
            out.iter_mut().for_each(|v| *v = q.mul(*v, r_inv));
        }
    }

    /// [`Kernel::tensor_sum`] of several probes against one chunk: `outs[b]` receives probe b's
    /// `c0 | c1 | c2`. The IFMA build takes the probes four at a time, each chunk word loaded
    /// once for all four while their 24 accumulators stay in registers; the others loop.
    pub(crate) fn tensor_sum_batch(
        self,
        q: &Modulus,
        probes: &[&[u64]],
        chunk: &[u64],
        dim: usize,
        n: usize,
        outs: &mut [&mut [u64]],
    ) {
        assert_eq!(probes.len(), outs.len(), "one output per probe");
        #[cfg(target_arch = "x86_64")]
        if self == Kernel::Ifma && super::ifma::detected() && **q < 1 << IFMA_MAX_BITS {
            assert!(n.is_multiple_of(LANES) && dim > 0, "ring degree {n} or dimension {dim}");
            assert_eq!(chunk.len(), 2 * dim * n, "chunk of another shape");
            assert!(probes.iter().all(|p| p.len() == PROBE_ROWS * dim * n), "probe of another shape");
            assert!(outs.iter().all(|o| o.len() == 3 * n), "output of another shape");
            let mut at = 0;
            while at < probes.len() {
                let (p, o) = (&probes[at..], &mut outs[at..]);
                // SAFETY: AVX-512F and IFMA were detected just above; every slice length the
                // kernel reads and writes was asserted above (its loads and stores are checked).
                #[allow(unsafe_code, reason = "AVX-512 IFMA intrinsics after detecting the features")]
                unsafe {
                    match p.len() {
                        1 => tensor_sum_ifma::<1>(**q, p, chunk, dim, n, o),
                        2 => tensor_sum_ifma::<2>(**q, p, chunk, dim, n, o),
                        3 => tensor_sum_ifma::<3>(**q, p, chunk, dim, n, o),
                        _ => tensor_sum_ifma::<4>(**q, p, chunk, dim, n, o),
                    }
                };
                at += 4;
            }
            return;
        }
        for (p, o) in probes.iter().zip(outs.iter_mut()) {
            self.tensor_sum(q, p, chunk, dim, n, o);
        }
    }
}

/// The IFMA kernel for `B ≤ 4` probes at once (the first B of `probes` and `outs`; the
/// caller checks every slice length, `q < 2^48` and the CPU's features). Each block of the
/// chunk is loaded once for all B probes, their `6·B` accumulators in registers. Sums of up to
/// [`IFMA_BLOCK`] products (< 16·q² < q·2^52) are reduced by one Montgomery step into `[0, 2q)`
/// and added to running sums kept below 2q. Returns the sums times `2^-52 mod q`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn tensor_sum_ifma<const B: usize>(
    q: u64,
    probes: &[&[u64]],
    chunk: &[u64],
    dim: usize,
    n: usize,
    outs: &mut [&mut [u64]],
) {
    use super::ifma::{add, load, montgomery, reduce, store, sub};
    use std::arch::x86_64::*;
    let vq = _mm512_set1_epi64(q as i64);
    let v2q = _mm512_set1_epi64(2 * q as i64);
    let vqi = _mm512_set1_epi64(super::ifma::neg_inv_52(q) as i64);
    let zero = _mm512_setzero_si512();
    let (pb, gb) = (PROBE_ROWS * dim * LANES, 2 * dim * LANES);
    for blk in 0..n / LANES {
        let g = &chunk[blk * gb..(blk + 1) * gb];
        let ps: [&[u64]; B] = std::array::from_fn(|b| &probes[b][blk * pb..(blk + 1) * pb]);
        // Per probe: running c0, Karatsuba middle and c2 sums, below 2q.
        let mut sums = [[zero; 3]; B];
        for start in (0..dim).step_by(IFMA_BLOCK) {
            // Per probe: low and high 52-bit halves of the three product sums.
            let mut acc = [[zero; 6]; B];
            for j in start..(start + IFMA_BLOCK).min(dim) {
                let (b0, b1) = (load(g, 2 * j * LANES), load(g, (2 * j + 1) * LANES));
                let s = reduce(_mm512_add_epi64(b0, b1), vq);
                for (a, p) in acc.iter_mut().zip(ps) {
                    let (a0, a1) = (load(p, 2 * j * LANES), load(p, (2 * j + 1) * LANES));
                    let a2 = reduce(_mm512_add_epi64(a0, a1), vq);
                    a[0] = _mm512_madd52lo_epu64(a[0], a0, b0);
                    a[1] = _mm512_madd52hi_epu64(a[1], a0, b0);
                    a[2] = _mm512_madd52lo_epu64(a[2], a2, s);
                    a[3] = _mm512_madd52hi_epu64(a[3], a2, s);
                    a[4] = _mm512_madd52lo_epu64(a[4], a1, b1);
                    a[5] = _mm512_madd52hi_epu64(a[5], a1, b1);
                }
            }
            for (sum, a) in sums.iter_mut().zip(&acc) {
                for (k, v) in sum.iter_mut().enumerate() {
                    let m = montgomery(a[2 * k], a[2 * k + 1], vq, vqi);
                    *v = reduce(_mm512_add_epi64(*v, m), v2q);
                }
            }
        }
        for (b, sum) in sums.iter().enumerate() {
            let (c0, m, c2) = (reduce(sum[0], vq), reduce(sum[1], vq), reduce(sum[2], vq));
            let c1 = sub(m, add(c0, c2, vq), vq);
            for (part, v) in [c0, c1, c2].into_iter().enumerate() {
                store(outs[b], part * n + blk * LANES, v);
            }
        }
    }
}

/// The scalar kernel, in its BMI2/ADX build where the CPU has them.
fn tensor_sum_scalar(q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
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

/// The kernel compiled with BMI2 (`mulx`: 64×64→128 products into any registers) and ADX
/// (carry chains), which the baseline x86-64 target lacks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2,adx")]
fn tensor_sum_bmi2(q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
    tensor_sum_portable(q, probe, chunk, dim, n, out);
}

#[inline(always)]
fn tensor_sum_portable(q: &Modulus, probe: &[u64], chunk: &[u64], dim: usize, n: usize, out: &mut [u64]) {
    let (o0, rest) = out.split_at_mut(n);
    let (o1, o2) = rest.split_at_mut(n);
    let (pb, gb) = (PROBE_ROWS * dim * LANES, 2 * dim * LANES);
    // One coefficient at a time, all dimensions innermost: the three u128 accumulators stay in
    // registers; the strided reads stay within one block of a few KB (in L1).
    for (blk, (p, g)) in probe.chunks_exact(pb).zip(chunk.chunks_exact(gb)).enumerate() {
        for lane in 0..LANES {
            let (mut c0, mut cm, mut c2) = (0u128, 0u128, 0u128);
            for j in 0..dim {
                if j > 0 && j % REDUCE_EVERY == 0 {
                    c0 = q.reduce_u128(c0) as u128;
                    cm = q.reduce_u128(cm) as u128;
                    c2 = q.reduce_u128(c2) as u128;
                }
                let (x0, x1) = (p[2 * j * LANES + lane], p[(2 * j + 1) * LANES + lane]);
                let (y0, y1) = (g[2 * j * LANES + lane], g[(2 * j + 1) * LANES + lane]);
                c0 += x0 as u128 * y0 as u128;
                c2 += x1 as u128 * y1 as u128;
                cm += (x0 + x1) as u128 * (y0 + y1) as u128;
            }
            let k = blk * LANES + lane;
            let (c0, c2, m) = (q.reduce_u128(c0), q.reduce_u128(c2), q.reduce_u128(cm));
            o0[k] = c0;
            o2[k] = c2;
            o1[k] = q.sub(m, q.add(c0, c2));
        }
    }
}

/// Position of coefficient `k` of row `row` (of `rows` per dimension) of dimension `j` in the
/// layout of one prime, `[k / LANES][j][row][k % LANES]`.
pub(crate) fn blocked_index(dim: usize, rows: usize, j: usize, row: usize, k: usize) -> usize {
    ((k / LANES * dim + j) * rows + row) * LANES + k % LANES
}

/// Copies row `row` (of `rows` per dimension) of dimension `j`, `n` values in natural order,
/// into the blocked layout `out` of one prime: runs of [`LANES`] values stay contiguous.
pub(crate) fn scatter_row<T: Copy>(dim: usize, rows: usize, j: usize, row: usize, src: &[T], out: &mut [T]) {
    assert!(src.len().is_multiple_of(LANES), "row of {} values is not whole lanes", src.len());
    for (b, s) in src.chunks_exact(LANES).enumerate() {
        let at = blocked_index(dim, rows, j, row, b * LANES);
        out[at..at + LANES].copy_from_slice(s);
    }
}

/// Writes the probe rows `a0, a1` of dimension `j` for one prime into the blocked layout
/// `out` (one prime's part).
pub(crate) fn probe_rows<T: Copy>(a0: &[T], a1: &[T], dim: usize, j: usize, out: &mut [T]) {
    scatter_row(dim, PROBE_ROWS, j, 0, a0, out);
    scatter_row(dim, PROBE_ROWS, j, 1, a1, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(qv: u64, dim: usize, n: usize) {
        let q = Modulus::new(qv).expect("modulus");
        let mut x = 0x1234_5678_9abc_def1u64 ^ qv;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % qv
        };
        let mut pairs: Vec<u64> = (0..2 * dim * n).map(|_| next()).collect();
        let mut chunk: Vec<u64> = (0..2 * dim * n).map(|_| next()).collect();
        // The extremes: q − 1 everywhere in the first coefficient.
        for j in 0..2 * dim {
            pairs[j * n] = qv - 1;
            chunk[j * n] = qv - 1;
        }
        let mut blocked = vec![0u64; 2 * dim * n];
        let mut probe = vec![0u64; PROBE_ROWS * dim * n];
        for j in 0..dim {
            for row in 0..2 {
                scatter_row(dim, 2, j, row, &chunk[(2 * j + row) * n..(2 * j + row + 1) * n], &mut blocked);
            }
            let p = &pairs[2 * j * n..2 * (j + 1) * n];
            probe_rows(&p[..n], &p[n..], dim, j, &mut probe);
        }
        let m = |a: u64, b: u64| ((a as u128 * b as u128) % qv as u128) as u64;
        let ad = |a: u64, b: u64| ((a as u128 + b as u128) % qv as u128) as u64;
        // Ifma also where it cannot run (other CPUs, primes ≥ 2^48): same output convention.
        for kernel in [Kernel::Scalar, Kernel::Ifma] {
            let runs = kernel == Kernel::Scalar || super::super::ifma::detected();
            if !runs && qv == 65_537 && dim == 1 {
                eprintln!("{kernel:?} build skipped: this CPU lacks it (its portable fallback is tested instead)");
            }
            let mut out = vec![0; 3 * n];
            kernel.tensor_sum(&q, &probe, &blocked, dim, n, &mut out);
            let f = kernel.output_factor(&q);
            out.iter_mut().for_each(|v| *v = q.mul(*v, f));
            if kernel == Kernel::Scalar {
                // The portable build agrees with whichever scalar build the CPU selected.
                let mut portable = vec![0; 3 * n];
                tensor_sum_portable(&q, &probe, &blocked, dim, n, &mut portable);
                assert_eq!(portable, out);
            }
            for k in 0..n {
                let (mut c0, mut c1, mut c2) = (0, 0, 0);
                for j in 0..dim {
                    let (a0, a1) = (pairs[2 * j * n + k], pairs[(2 * j + 1) * n + k]);
                    let (b0, b1) = (chunk[2 * j * n + k], chunk[(2 * j + 1) * n + k]);
                    c0 = ad(c0, m(a0, b0));
                    c1 = ad(ad(c1, m(a0, b1)), m(a1, b0));
                    c2 = ad(c2, m(a1, b1));
                }
                assert_eq!((out[k], out[n + k], out[2 * n + k]), (c0, c1, c2), "{kernel:?} q={qv} dim={dim} k={k}");
            }
        }
    }

    #[test]
    fn select_follows_the_hot_form_and_the_cpu() {
        let small = [(1u64 << 48) - 59, 65_537];
        let big = [(1u64 << 60) - 93];
        assert_eq!(Kernel::select(&small, false, Simd::portable()), Kernel::Scalar);
        assert_eq!(Kernel::select(&big, false, Simd::detect()), Kernel::Scalar, "primes ≥ 2^48: scalar only");
        let ifma = if super::super::ifma::detected() { Kernel::Ifma } else { Kernel::Scalar };
        assert_eq!(Kernel::select(&small, false, Simd::detect()), ifma);
        assert_eq!(Kernel::select(&small, true, Simd::detect()), Kernel::Avx2, "the narrow form has one kernel");
    }

    /// Several probes against one chunk (the IFMA build four at a time, then the rest) give
    /// each probe's single-probe result, for 1 to 6 probes and dimensions across reduction blocks.
    #[test]
    fn batches_match_single_probes() {
        let (qv, n) = ((1u64 << 48) - 59, 16);
        let q = Modulus::new(qv).expect("modulus");
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % qv
        };
        if !super::super::ifma::detected() {
            eprintln!("Ifma batch build skipped: this CPU lacks it (its loop over single probes is tested instead)");
        }
        for dim in [1, 7, 16, 17, 33] {
            let chunk: Vec<u64> = (0..2 * dim * n).map(|_| next()).collect();
            let probes: Vec<Vec<u64>> = (0..6).map(|_| (0..PROBE_ROWS * dim * n).map(|_| next()).collect()).collect();
            for kernel in [Kernel::Scalar, Kernel::Ifma] {
                for count in 1..=6 {
                    let refs: Vec<&[u64]> = probes[..count].iter().map(Vec::as_slice).collect();
                    let mut outs = vec![vec![0u64; 3 * n]; count];
                    let mut out_refs: Vec<&mut [u64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
                    kernel.tensor_sum_batch(&q, &refs, &chunk, dim, n, &mut out_refs);
                    for (p, got) in refs.iter().zip(&outs) {
                        let mut want = vec![0u64; 3 * n];
                        kernel.tensor_sum(&q, p, &chunk, dim, n, &mut want);
                        assert_eq!(got, &want, "{kernel:?}, {count} probes, dim {dim}");
                    }
                }
            }
        }
    }

    #[test]
    fn matches_naive_modular_sum() {
        // Below 2^60 (scalar only), just below 2^48 (both kernels) and small; dimensions
        // across the reduction blocks of both kernels.
        for qv in [(1u64 << 60) - 93, (1u64 << 48) - 59, 65_537] {
            for dim in [1, 15, 16, 17, 33, 130] {
                check(qv, dim, 16);
            }
        }
    }
}
