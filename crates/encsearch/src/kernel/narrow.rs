//! The scoring kernel of the narrow hot form: residues mod primes below 2^29, stored as u32,
//! for CPUs with AVX2 and no AVX-512 IFMA.
//!
//! AVX2 multiplies only 32×32 → 64 bits (`vpmuludq`, four products per instruction). With
//! 29-bit residues a product is below 2^58, so the four products of a coefficient and dimension
//! (`a0·b0`, `a0·b1 + a1·b0`, `a1·b1`) add up in 64-bit lanes for [`NARROW_BLOCK`] dimensions
//! without any reduction (`2·16·2^58 = 2^63`); one Montgomery step (R = 2^32) per block brings
//! each sum below 2^32, and a second one, by `2^64 mod q`, takes the factor back and lands in
//! `[0, 2q)`. Compared with the 48-bit hot form this takes more primes (6 instead of 4 for 16-D)
//! but each is 4 bytes instead of 8 (768 instead of 1024 B per template) and costs about 3
//! vector operations per coefficient, dimension and prime instead of the 9 a 48-bit product
//! split into 24-bit limbs needed.
//!
//! Layout (per prime): `[k / LANES][dim][row][k % LANES]` of u32, as in `tensor.rs`: eight
//! coefficients of one row side by side (one 256-bit vector), all dimensions of those eight in
//! one contiguous block.
//!
//! A batch of probes is scored against a group of chunks block by block: each block of a
//! chunk (1 KB for 16-D) is loaded once and multiplied into every probe of the batch while it
//! is in L1, and each block of a probe serves every chunk of the group. The probe's hot form is
//! as large as a chunk's, so without the group every chunk would read every probe's whole form
//! again: per (probe, chunk) pair the kernel reads `1/B` of a chunk and `1/G` of a probe.

use super::LANES;

/// Bits every prime of the narrow basis stays below.
pub(crate) const NARROW_BITS: u32 = 29;

/// Dimensions summed in 64-bit lanes between two reductions (`2·NARROW_BLOCK·2^58 ≤ 2^63`,
/// so a Montgomery step's `x + m·q` stays below 2^64).
const NARROW_BLOCK: usize = 16;

/// Accumulates `Σ_j probe_j ⊗ chunk_j` for one prime `q < 2^29`, for every probe of a batch
/// and every chunk of a group.
///
/// `probes[b]` has rows `a0, a1` per dimension, `chunks[c]` rows `b0, b1`, every value below
/// q, in the layout above. `outs[b · chunks.len() + c]` receives `[c0, c1, c2]` of probe b and
/// chunk c (n values each in `[0, q)`, natural lane order; separate rows, so that callers can
/// space them to keep the output streams off each other's cache sets). The AVX2 build runs when `avx2` (which
/// callers take from a detected [`super::Simd`]) and the CPU has it; the portable one
/// otherwise, with the same result.
pub(crate) fn tensor_sum_narrow(
    q: u32,
    probes: &[&[u32]],
    chunks: &[&[u32]],
    dim: usize,
    n: usize,
    outs: &mut [[&mut [u32]; 3]],
    avx2: bool,
) {
    assert!(q < 1 << NARROW_BITS && q % 2 == 1, "narrow prime {q} is not odd and below 2^{NARROW_BITS}");
    assert!(n.is_multiple_of(LANES) && dim > 0, "ring degree {n} or dimension {dim}");
    assert!(chunks.iter().all(|c| c.len() == 2 * dim * n), "chunk of another shape");
    assert_eq!(probes.len() * chunks.len(), outs.len(), "one output per probe and chunk");
    assert!(probes.iter().all(|p| p.len() == 2 * dim * n), "probe of another shape");
    assert!(outs.iter().flatten().all(|o| o.len() == n), "output of another shape");
    #[cfg(target_arch = "x86_64")]
    if avx2 && super::cpu::avx2_detected() {
        // SAFETY: AVX2 was detected on the running CPU just above; every slice length the
        // kernel indexes was asserted at the top (and its loads and stores are bounds-checked).
        #[allow(unsafe_code, reason = "AVX2 intrinsics after detecting the feature")]
        unsafe {
            narrow_avx2(q, probes, chunks, dim, n, outs)
        };
        return;
    }
    let _ = avx2;
    narrow_portable(q as u64, probes, chunks, dim, n, outs);
}

/// The portable build: one coefficient at a time, u64 sums reduced every [`NARROW_BLOCK`]
/// dimensions.
fn narrow_portable(q: u64, probes: &[&[u32]], chunks: &[&[u32]], dim: usize, n: usize, outs: &mut [[&mut [u32]; 3]]) {
    let gb = 2 * dim * LANES;
    for blk in 0..n / LANES {
        for (pair, out) in outs.iter_mut().enumerate() {
            let p = &probes[pair / chunks.len()][blk * gb..][..gb];
            let g = &chunks[pair % chunks.len()][blk * gb..][..gb];
            for lane in 0..LANES {
                let (mut c0, mut c1, mut c2) = (0u64, 0u64, 0u64);
                for j in 0..dim {
                    if j > 0 && j % NARROW_BLOCK == 0 {
                        (c0, c1, c2) = (c0 % q, c1 % q, c2 % q);
                    }
                    let at = |row: usize| 2 * j * LANES + row * LANES + lane;
                    let (x0, x1) = (p[at(0)] as u64, p[at(1)] as u64);
                    let (y0, y1) = (g[at(0)] as u64, g[at(1)] as u64);
                    c0 += x0 * y0;
                    c1 += x0 * y1 + x1 * y0;
                    c2 += x1 * y1;
                }
                let k = blk * LANES + lane;
                out[0][k] = (c0 % q) as u32;
                out[1][k] = (c1 % q) as u32;
                out[2][k] = (c2 % q) as u32;
            }
        }
    }
}

/// `−q⁻¹ mod 2^32` for odd q (Newton's iteration doubles the correct low bits each step).
fn neg_inv_32(q: u32) -> u32 {
    let mut inv = q; // correct to 3 bits for odd q
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(q.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// The AVX2 build. Preconditions as in [`tensor_sum_narrow`] (asserted there).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn narrow_avx2(q: u32, probes: &[&[u32]], chunks: &[&[u32]], dim: usize, n: usize, outs: &mut [[&mut [u32]; 3]]) {
    use std::arch::x86_64::*;
    let load = |s: &[u32], at: usize| -> __m256i {
        let v = &s[at..at + LANES];
        // SAFETY: `v` is 8 u32 (bounds-checked slice); unaligned load.
        #[allow(unsafe_code, reason = "unaligned 256-bit load of a checked slice")]
        unsafe {
            _mm256_loadu_si256(v.as_ptr().cast())
        }
    };
    let vq = _mm256_set1_epi64x(q as i64);
    let vqi = _mm256_set1_epi64x(neg_inv_32(q) as i64);
    // 2^64 mod q: a Montgomery product with it undoes the 2^-32 of the first step.
    let r2 = _mm256_set1_epi64x(((1u128 << 64) % q as u128) as i64);
    // x·2^-32 mod q, below x/2^32 + q, for x < 2^64 − 2^61 (in each 64-bit lane).
    let montgomery = |x: __m256i| {
        let m = _mm256_mul_epu32(x, vqi);
        _mm256_srli_epi64::<32>(_mm256_add_epi64(x, _mm256_mul_epu32(m, vq)))
    };
    // A block's lane sums (< 2^63) to their value mod q in [0, q): two Montgomery steps leave
    // x·2^-32·2^64·2^-32 = x; the first lands below 2^31 + 2^29 < 2^32, so the second's input
    // is below 2^32·q and it lands below 2q; then one conditional subtraction.
    let reduce = |x: __m256i| {
        let y = montgomery(_mm256_mul_epu32(montgomery(x), r2));
        // Every value is below 2^32, so the 32-bit unsigned min picks y − q unless it wrapped.
        _mm256_min_epu32(y, _mm256_sub_epi64(y, vq))
    };
    // a + b mod q for a, b < q (below 2^32, same min trick).
    let add = |a: __m256i, b: __m256i| {
        let s = _mm256_add_epi64(a, b);
        _mm256_min_epu32(s, _mm256_sub_epi64(s, vq))
    };
    let zero = _mm256_setzero_si256();
    let gb = 2 * dim * LANES;
    for blk in 0..n / LANES {
        for (pair, out) in outs.iter_mut().enumerate() {
            // Probe-major over the pairs: one probe block, then every chunk's block (all in L1).
            let p = &probes[pair / chunks.len()][blk * gb..][..gb];
            let g = &chunks[pair % chunks.len()][blk * gb..][..gb];
            // [c0, c1, c2] × [even lanes, odd lanes], each reduced into [0, q).
            let mut total = [zero; 6];
            for start in (0..dim).step_by(NARROW_BLOCK) {
                let mut acc = [zero; 6];
                for j in start..(start + NARROW_BLOCK).min(dim) {
                    let (x0, x1) = (load(p, 2 * j * LANES), load(p, (2 * j + 1) * LANES));
                    let (y0, y1) = (load(g, 2 * j * LANES), load(g, (2 * j + 1) * LANES));
                    // vpmuludq reads the low 32 bits of each 64-bit lane: the even lanes as
                    // they are, the odd ones after a shift.
                    let (x0o, x1o) = (_mm256_srli_epi64::<32>(x0), _mm256_srli_epi64::<32>(x1));
                    let (y0o, y1o) = (_mm256_srli_epi64::<32>(y0), _mm256_srli_epi64::<32>(y1));
                    acc[0] = _mm256_add_epi64(acc[0], _mm256_mul_epu32(x0, y0));
                    acc[1] = _mm256_add_epi64(acc[1], _mm256_mul_epu32(x0o, y0o));
                    acc[2] = _mm256_add_epi64(acc[2], _mm256_mul_epu32(x0, y1));
                    acc[3] = _mm256_add_epi64(acc[3], _mm256_mul_epu32(x0o, y1o));
                    acc[2] = _mm256_add_epi64(acc[2], _mm256_mul_epu32(x1, y0));
                    acc[3] = _mm256_add_epi64(acc[3], _mm256_mul_epu32(x1o, y0o));
                    acc[4] = _mm256_add_epi64(acc[4], _mm256_mul_epu32(x1, y1));
                    acc[5] = _mm256_add_epi64(acc[5], _mm256_mul_epu32(x1o, y1o));
                }
                for (t, a) in total.iter_mut().zip(acc) {
                    *t = if start == 0 { reduce(a) } else { add(*t, reduce(a)) };
                }
            }
            for (part, row) in out.iter_mut().enumerate() {
                // Even lanes in the low halves, odd lanes moved to the high halves: natural order.
                let v = _mm256_or_si256(total[2 * part], _mm256_slli_epi64::<32>(total[2 * part + 1]));
                let dst = &mut row[blk * LANES..][..LANES];
                // SAFETY: `dst` is 8 u32 (bounds-checked slice); unaligned store.
                #[allow(unsafe_code, reason = "unaligned 256-bit store into a checked slice")]
                unsafe {
                    _mm256_storeu_si256(dst.as_mut_ptr().cast(), v)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::tensor::{probe_rows, scatter_row};
    use fhe_math::zq::primes::generate_prime;

    /// Both builds against the naive modular sum, one probe and a batch of three against one
    /// chunk and a group of two, at random values and at the extreme q − 1, across the
    /// reduction blocks.
    #[test]
    fn matches_naive_modular_sum() {
        let n = 16;
        let avx2 = crate::kernel::cpu::avx2_detected();
        if !avx2 {
            eprintln!("AVX2 build skipped: this CPU lacks it (the portable build is tested)");
        }
        let mut x = 0x1234_5678_9abc_def1u64;
        for q in [generate_prime(29, 64, 1 << 29).expect("prime"), 65_537, 3] {
            for dim in [1, 15, 16, 17, 33, 64] {
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % q) as u32
                };
                let mut rows = |extreme: bool| -> Vec<Vec<u32>> {
                    (0..2 * dim)
                        .map(|_| (0..n).map(|_| if extreme { q as u32 - 1 } else { next() }).collect())
                        .collect()
                };
                let (galleries, probes) = ([rows(false), rows(true)], [rows(true), rows(false), rows(false)]);
                let laid_chunks: Vec<Vec<u32>> = galleries
                    .iter()
                    .map(|gallery| {
                        let mut chunk = vec![0u32; 2 * dim * n];
                        for j in 0..dim {
                            for row in 0..2 {
                                scatter_row(dim, 2, j, row, &gallery[2 * j + row], &mut chunk);
                            }
                        }
                        chunk
                    })
                    .collect();
                let laid: Vec<Vec<u32>> = probes
                    .iter()
                    .map(|p| {
                        let mut out = vec![0u32; 2 * dim * n];
                        (0..dim).for_each(|j| probe_rows(&p[2 * j], &p[2 * j + 1], dim, j, &mut out));
                        out
                    })
                    .collect();
                for build in [false, true] {
                    for (batch, group) in [(1, 1), (3, 1), (1, 2), (3, 2)] {
                        let refs: Vec<&[u32]> = laid[..batch].iter().map(|v| &v[..]).collect();
                        let chunk_refs: Vec<&[u32]> = laid_chunks[..group].iter().map(|v| &v[..]).collect();
                        let mut outs = vec![vec![0u32; 3 * n]; batch * group];
                        let mut out_refs: Vec<[&mut [u32]; 3]> = outs
                            .iter_mut()
                            .map(|v| {
                                let (c0, rest) = v.split_at_mut(n);
                                let (c1, c2) = rest.split_at_mut(n);
                                [c0, c1, c2]
                            })
                            .collect();
                        tensor_sum_narrow(q as u32, &refs, &chunk_refs, dim, n, &mut out_refs, build);
                        for (pair, out) in outs.iter().enumerate() {
                            let (b, gallery) = (pair / group, &galleries[pair % group]);
                            for k in 0..n {
                                let (mut c0, mut c1, mut c2) = (0u128, 0u128, 0u128);
                                for j in 0..dim {
                                    let (a0, a1) = (probes[b][2 * j][k] as u128, probes[b][2 * j + 1][k] as u128);
                                    let (b0, b1) = (gallery[2 * j][k] as u128, gallery[2 * j + 1][k] as u128);
                                    c0 += a0 * b0;
                                    c1 += a0 * b1 + a1 * b0;
                                    c2 += a1 * b1;
                                }
                                let q = q as u128;
                                let want = ((c0 % q) as u32, (c1 % q) as u32, (c2 % q) as u32);
                                assert_eq!(
                                    (out[k], out[n + k], out[2 * n + k]),
                                    want,
                                    "avx2 {build} q={q} dim={dim} pair {pair} of {batch}×{group}, k={k}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
