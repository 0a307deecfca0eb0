//! The negacyclic NTT of one prime: an AVX-512 IFMA build and an AVX2/FMA build (double
//! precision) for primes below 2^48, fhe-math's transform otherwise — the same transform
//! every way, so hot forms built by one are read by the others.
//!
//! fhe-math (through tfhe-ntt) leaves polynomials in NTT form with output `j` equal to the
//! evaluation at `ψ^(2·rev(j)+1)` (`rev`: bit reversal of log2 N bits, ψ a primitive 2N-th
//! root of unity), which is what the textbook Cooley–Tukey forward transform with twiddles
//! `ψ^rev(k)` produces from natural order, and the Gentleman–Sande one undoes. [`Ntt::new`]
//! reads ψ off fhe-math's transform of `x` and checks every evaluation point before it lets
//! the fast build run; a test compares both builds on random polynomials.
//!
//! The IFMA build uses Shoup's method with 52-bit factors (`x·w − ⌊x·w'/2^52⌋·p ∈ [0, 2p)` for
//! any `x < 2^52`) and Harvey's lazy butterflies: values between stages in `[0, 4p)` (forward)
//! or `[0, 2p)` (inverse), below 2^52 for p < 2^50, and reduced to `[0, p)` only on the way
//! out. The three stages whose butterflies pair lanes of one vector (strides 4, 2, 1) swap
//! partners with a lane permutation, in one pass for all three.
//!
//! The AVX2 build (for CPUs without IFMA, where fhe-math's 64-bit transform emulates 64-bit
//! products with 32-bit ones) holds values as exact integers in doubles, four per vector, with
//! centred twiddles (`|w| ≤ p/2`): products by [`super::avx2::mul_mod_small_quotient`] (the
//! exact product as `fl(x·w) + fma(x, w, −fl(x·w))`, minus the rounded quotient times p; the
//! result is below `p/2 + |x·w|·2^-51 + 1`), sums left to grow and re-centred only where a
//! bound tracked per stage could otherwise pass 6p (`LAZY_LIMIT`): every fifth stage or so of
//! the forward transform, every third of the inverse, and in the in-vector stages (strides 2
//! and 1, one pass for both). Every value kept is an integer below `6p < 2^51` in magnitude,
//! every product below 2^100 and every quotient below 2^50, so nothing is rounded. Words are
//! converted on the way into the first pass and out of the last; the inverse's last stage
//! carries the factor N⁻¹ in its twiddles.

use fhe_math::ntt::NttOperator;
use fhe_math::zq::Modulus;

use super::Simd;
use super::cpu::avx2_fma_detected;
use super::ifma::{self as simd, shoup52};
use crate::error::{Error, Result};

/// Primes below this many bits can take the vector builds (IFMA and AVX2).
pub(crate) const FAST_BITS: u32 = 48;

/// One prime's NTT of size N.
#[derive(Debug, Clone)]
pub struct Ntt {
    reference: NttOperator,
    fast: Option<Fast>,
}

/// The vector build a transform runs, with its tables.
#[derive(Debug, Clone)]
enum Fast {
    Ifma(Tables),
    Avx2(Doubles),
}

/// Twiddles of the AVX2 build as doubles (products need no per-twiddle factor: the quotient
/// comes from `1/p`).
#[derive(Debug, Clone)]
struct Doubles {
    p: f64,
    p_inv: f64,
    fwd: Vec<f64>,
    inv: Vec<f64>,
    /// Per-lane twiddles of the in-vector stages (strides 2, 1).
    fwd_lanes: [Vec<f64>; 2],
    inv_lanes: [Vec<f64>; 2],
    n_inv: f64,
    /// The last inverse stage's twiddle times N⁻¹.
    last_inv: f64,
}

impl Doubles {
    /// The tables of `t` with every twiddle centred (`|w| ≤ p/2`), which halves the error
    /// of the products' quotients.
    fn of(t: &Tables) -> Self {
        let centred = |w: u64| if w > t.p / 2 { w as f64 - t.p as f64 } else { w as f64 };
        let f = |v: &[u64]| v.iter().map(|&w| centred(w)).collect::<Vec<f64>>();
        let first = |v: &[(u64, u64)]| v.iter().map(|&(w, _)| centred(w)).collect::<Vec<f64>>();
        Self {
            p: t.p as f64,
            p_inv: 1.0 / t.p as f64,
            fwd: first(&t.fwd),
            inv: first(&t.inv),
            // `Tables` rows: [w4, s4, w2, s2, w1, s1].
            fwd_lanes: [f(&t.fwd_lanes[2]), f(&t.fwd_lanes[4])],
            inv_lanes: [f(&t.inv_lanes[2]), f(&t.inv_lanes[4])],
            n_inv: centred(t.n_inv.0),
            last_inv: centred(t.last_inv.0),
        }
    }

    /// Bound, in units of p, on a product `mul_mod(x, w)` of `|x| ≤ b·p` by a centred
    /// twiddle: `p/2 + |x·w|·2^-51 + 1` with `|x·w| ≤ b·p²/2`.
    fn product_bound(&self, b: f64) -> f64 {
        0.5 + b * self.p * 2f64.powi(-52) + 1.0 / self.p
    }

    /// Bound, in units of p, of a value just re-centred by [`lanes4::centre`].
    fn centred_bound(&self) -> f64 {
        0.5 + 1.0 / self.p
    }
}

/// The largest magnitude, in units of p, that the AVX2 build lets a value reach before it
/// re-centres it: [`lanes4::centre`] needs `|x| < 2^51` (8p for p < 2^48), and products of
/// such values by centred twiddles stay far inside `mul_mod`'s `|x·w| ≤ 2^100`.
const LAZY_LIMIT: f64 = 6.0;

/// Twiddles of the fast build, each with its 52-bit Shoup factor.
#[derive(Debug, Clone)]
struct Tables {
    p: u64,
    /// `ψ^rev(k)` and `ψ^−rev(k)` for k < N.
    fwd: Vec<(u64, u64)>,
    inv: Vec<(u64, u64)>,
    /// Per-lane twiddles of the in-vector stages (strides 4, 2, 1): `[stride index][k]`.
    fwd_lanes: [Vec<u64>; 6],
    inv_lanes: [Vec<u64>; 6],
    n_inv: (u64, u64),
    /// The last inverse stage's twiddle times N⁻¹.
    last_inv: (u64, u64),
}

fn reverse_bits(k: usize, bits: u32) -> usize {
    if bits == 0 { 0 } else { k.reverse_bits() >> (usize::BITS - bits) }
}

impl Ntt {
    /// The transform of size `n` (a power of two, at least 16) modulo the prime `q`.
    pub fn new(q: &Modulus, n: usize, simd: Simd) -> Result<Self> {
        let reference =
            NttOperator::new(q, n).ok_or_else(|| Error::params(format!("{} has no NTT of size {n}", **q)))?;
        let fits = **q < 1 << FAST_BITS && n >= 16 && n.is_power_of_two();
        let fast = match (simd.ifma(), simd.avx2() && avx2_fma_detected()) {
            (true, _) if fits => Tables::matching(&reference, q, n).map(Fast::Ifma),
            (false, true) if fits => Tables::matching(&reference, q, n).map(|t| Fast::Avx2(Doubles::of(&t))),
            _ => None,
        };
        Ok(Self { reference, fast })
    }

    /// The vector build that runs for this prime, if any.
    #[cfg(test)]
    fn build(&self) -> Option<&'static str> {
        self.fast.as_ref().map(|f| match f {
            Fast::Ifma(_) => "ifma",
            Fast::Avx2(_) => "avx2",
        })
    }

    /// Forward transform in place (natural order in, fhe-math's NTT order out).
    pub fn forward(&self, a: &mut [u64]) {
        self.transform(a, true);
    }

    /// Inverse transform in place (fhe-math's NTT order in, natural order out).
    pub fn backward(&self, a: &mut [u64]) {
        self.transform(a, false);
    }

    fn transform(&self, a: &mut [u64], forward: bool) {
        #[cfg(target_arch = "x86_64")]
        match &self.fast {
            Some(Fast::Ifma(t)) if a.len() == t.fwd.len() => {
                // SAFETY: `Fast::Ifma` is only made from a `Simd` with IFMA, which only
                // `Simd::detect` makes.
                #[allow(unsafe_code, reason = "AVX-512 IFMA build after detecting the features")]
                unsafe {
                    if forward { forward_ifma(t, a) } else { backward_ifma(t, a) }
                };
                return;
            }
            Some(Fast::Avx2(t)) if a.len() == t.fwd.len() => {
                // SAFETY: `Fast::Avx2` is only made after detecting AVX2 and FMA.
                #[allow(unsafe_code, reason = "AVX2/FMA build after detecting the features")]
                unsafe {
                    if forward { forward_avx2(t, a) } else { backward_avx2(t, a) }
                };
                return;
            }
            _ => {}
        }
        if forward { self.reference.forward(a) } else { self.reference.backward(a) }
    }
}

impl Tables {
    /// Tables for ψ read off `reference`, or `None` if its evaluation points are not the
    /// textbook order (then the reference transform is used).
    fn matching(reference: &NttOperator, q: &Modulus, n: usize) -> Option<Self> {
        let p = **q;
        let bits = n.trailing_zeros();
        let mut x = vec![0u64; n];
        x[1] = 1;
        reference.forward(&mut x);
        let psi = x[0];
        // Powers ψ^0 … ψ^(2N−1); the point of output j must be ψ^(2·rev(j)+1).
        let mut pow = Vec::with_capacity(2 * n);
        let mut acc = 1u64;
        for _ in 0..2 * n {
            pow.push(acc);
            acc = q.mul(acc, psi);
        }
        if acc != 1 || pow[n] != p - 1 || (0..n).any(|j| x[j] != pow[2 * reverse_bits(j, bits) + 1]) {
            return None;
        }
        let with_shoup = |w: u64| (w, shoup52(w, p));
        let fwd: Vec<(u64, u64)> = (0..n).map(|k| with_shoup(pow[reverse_bits(k, bits)])).collect();
        let inv: Vec<(u64, u64)> = (0..n).map(|k| with_shoup(pow[(2 * n - reverse_bits(k, bits)) % (2 * n)])).collect();
        // In-vector stages: stride t, twiddle index m + group where m = n / (2t) and the group
        // of element e is e / (2t); stored per lane as (twiddle, Shoup) rows.
        let lanes = |table: &[(u64, u64)], t: usize| {
            let m = n / (2 * t);
            let w: Vec<u64> = (0..n).map(|e| table[m + e / (2 * t)].0).collect();
            let s: Vec<u64> = (0..n).map(|e| table[m + e / (2 * t)].1).collect();
            (w, s)
        };
        let build = |table: &[(u64, u64)]| {
            let (w4, s4) = lanes(table, 4);
            let (w2, s2) = lanes(table, 2);
            let (w1, s1) = lanes(table, 1);
            [w4, s4, w2, s2, w1, s1]
        };
        let n_inv = q.inv(q.reduce(n as u64))?;
        let last_inv = with_shoup(q.mul(inv[1].0, n_inv));
        Some(Self { p, fwd_lanes: build(&fwd), inv_lanes: build(&inv), fwd, inv, n_inv: with_shoup(n_inv), last_inv })
    }
}

/// The stages whose butterflies pair lanes of one vector: (stride, mask of the pairs' high lanes).
#[cfg(target_arch = "x86_64")]
const IN_VECTOR_STAGES: [(usize, u8); 3] = [(4, 0xF0), (2, 0xCC), (1, 0xAA)];

/// Lane permutation `k ↦ k xor t`: each lane's butterfly partner at stride `t < 8`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn partner_lanes(t: usize) -> std::arch::x86_64::__m512i {
    let l = |k: usize| (k ^ t) as i64;
    std::arch::x86_64::_mm512_set_epi64(l(7), l(6), l(5), l(4), l(3), l(2), l(1), l(0))
}

/// Cooley–Tukey, natural order in, bit-reversed evaluation order out. Harvey's lazy
/// butterflies: values in `[0, 4p)` between stages, the first of a pair brought to `[0, 2p)`,
/// the product of the second left in `[0, 2p)`; reduced to `[0, p)` on the way out.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn forward_ifma(tb: &Tables, a: &mut [u64]) {
    use simd::{load, mul_lazy, reduce, store};
    use std::arch::x86_64::*;
    let n = a.len();
    let p = _mm512_set1_epi64(tb.p as i64);
    let p2 = _mm512_set1_epi64(2 * tb.p as i64);
    let (mut m, mut t) = (1, n / 2);
    while t >= 8 {
        for i in 0..m {
            let (w, ws) = tb.fwd[m + i];
            let (w, ws) = (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(ws as i64));
            let base = 2 * i * t;
            for j in (base..base + t).step_by(8) {
                let (u, v) = (reduce(load(a, j), p2), mul_lazy(load(a, j + t), w, ws, p));
                store(a, j, _mm512_add_epi64(u, v));
                store(a, j + t, _mm512_add_epi64(_mm512_sub_epi64(u, v), p2));
            }
        }
        m *= 2;
        t /= 2;
    }
    // Strides 4, 2, 1 inside each vector, one pass: the high lane of a pair holds the product.
    let idx = IN_VECTOR_STAGES.map(|(t, _)| partner_lanes(t));
    for j in (0..n).step_by(8) {
        let mut x = load(a, j);
        for (s, (_, high)) in IN_VECTOR_STAGES.into_iter().enumerate() {
            let (wl, sl) = (&tb.fwd_lanes[2 * s], &tb.fwd_lanes[2 * s + 1]);
            let u = reduce(x, p2);
            let y = mul_lazy(x, load(wl, j), load(sl, j), p);
            let low = _mm512_add_epi64(u, _mm512_permutexvar_epi64(idx[s], y));
            let hi = _mm512_add_epi64(_mm512_sub_epi64(_mm512_permutexvar_epi64(idx[s], u), y), p2);
            x = _mm512_mask_blend_epi64(high, low, hi);
        }
        store(a, j, reduce(reduce(x, p2), p));
    }
}

/// Gentleman–Sande, bit-reversed evaluation order in, natural order out, times N⁻¹. Lazy:
/// values in `[0, 2p)` between stages (sums brought back there, products left there); the
/// last stage carries N⁻¹ in its twiddles and reduces fully.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn backward_ifma(tb: &Tables, a: &mut [u64]) {
    use simd::{load, mul, mul_lazy, reduce, store};
    use std::arch::x86_64::*;
    let n = a.len();
    let p = _mm512_set1_epi64(tb.p as i64);
    let p2 = _mm512_set1_epi64(2 * tb.p as i64);
    // Strides 1, 2, 4 inside each vector, one pass.
    let idx = IN_VECTOR_STAGES.map(|(t, _)| partner_lanes(t));
    for j in (0..n).step_by(8) {
        let mut x = load(a, j);
        for (s, (_, high)) in IN_VECTOR_STAGES.into_iter().enumerate().rev() {
            let (wl, sl) = (&tb.inv_lanes[2 * s], &tb.inv_lanes[2 * s + 1]);
            let xp = _mm512_permutexvar_epi64(idx[s], x);
            let sum = reduce(_mm512_add_epi64(x, xp), p2);
            let diff = mul_lazy(_mm512_add_epi64(_mm512_sub_epi64(xp, x), p2), load(wl, j), load(sl, j), p);
            x = _mm512_mask_blend_epi64(high, sum, diff);
        }
        store(a, j, x);
    }
    let mut t = 8;
    while t < n / 2 {
        let m = n / (2 * t);
        for i in 0..m {
            let (w, ws) = tb.inv[m + i];
            let (w, ws) = (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(ws as i64));
            let base = 2 * i * t;
            for j in (base..base + t).step_by(8) {
                let (u, v) = (load(a, j), load(a, j + t));
                store(a, j, reduce(_mm512_add_epi64(u, v), p2));
                store(a, j + t, mul_lazy(_mm512_add_epi64(_mm512_sub_epi64(u, v), p2), w, ws, p));
            }
        }
        t *= 2;
    }
    let [(w0, s0), (w1, s1)] =
        [tb.n_inv, tb.last_inv].map(|(w, s)| (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(s as i64)));
    for j in (0..t).step_by(8) {
        let (u, v) = (load(a, j), load(a, j + t));
        store(a, j, mul(_mm512_add_epi64(u, v), w0, s0, p));
        store(a, j + t, mul(_mm512_add_epi64(_mm512_sub_epi64(u, v), p2), w1, s1, p));
    }
}

/// `a` as doubles in place: the AVX2 build converts each word to the double of the same
/// integer on entry and back on exit, and works on the same memory in between.
#[cfg(target_arch = "x86_64")]
fn as_doubles(a: &mut [u64]) -> &mut [f64] {
    // SAFETY: u64 and f64 have the same size and alignment and every bit pattern is a valid
    // f64; the borrow of `a` is carried over.
    #[allow(unsafe_code, reason = "reinterpreting u64 words as f64 storage in place")]
    unsafe {
        std::slice::from_raw_parts_mut(a.as_mut_ptr().cast::<f64>(), a.len())
    }
}

/// Loads, stores and the lane moves of the AVX2 build.
#[cfg(target_arch = "x86_64")]
mod lanes4 {
    pub(super) use super::super::avx2::centre;
    use std::arch::x86_64::*;

    /// 2^52 as a double: an integer in `[0, 2^52)` is the low mantissa bits of itself + 2^52.
    const MAGIC: f64 = 4_503_599_627_370_496.0;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn ld(x: &[f64], i: usize) -> __m256d {
        let s = &x[i..i + 4];
        // SAFETY: `s` is exactly 4 doubles; unaligned load.
        #[allow(unsafe_code, reason = "unaligned 256-bit load of a 4-double slice")]
        unsafe {
            _mm256_loadu_pd(s.as_ptr())
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn st(x: &mut [f64], i: usize, v: __m256d) {
        let s = &mut x[i..i + 4];
        // SAFETY: `s` is exactly 4 doubles; unaligned store.
        #[allow(unsafe_code, reason = "unaligned 256-bit store into a 4-double slice")]
        unsafe {
            _mm256_storeu_pd(s.as_mut_ptr(), v)
        }
    }

    /// Four words (integers below 2^52, in the memory of `x`) as doubles.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn ld_word(x: &[f64], i: usize) -> __m256d {
        let magic = _mm256_set1_pd(MAGIC);
        _mm256_sub_pd(_mm256_or_pd(ld(x, i), magic), magic)
    }

    /// Four integers `|v| < p` stored as words in `[0, p)` (in the memory of `x`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn st_word(x: &mut [f64], i: usize, v: __m256d, p: __m256d) {
        let magic = _mm256_set1_pd(MAGIC);
        let v = _mm256_add_pd(v, _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(v, _mm256_setzero_pd()), p));
        let bits = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(v, magic)), _mm256_castpd_si256(magic));
        st(x, i, _mm256_castsi256_pd(bits));
    }

    /// Each lane's butterfly partner at stride `t` (2 or 1): lane `k ↦ k xor t`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn partner(t: usize, x: __m256d) -> __m256d {
        if t == 2 { _mm256_permute2f128_pd::<0x01>(x, x) } else { _mm256_permute_pd::<0b0101>(x) }
    }

    /// `low` in the low lane of each pair at stride `t`, `high` in the high one.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn pairs(t: usize, low: __m256d, high: __m256d) -> __m256d {
        if t == 2 { _mm256_blend_pd::<0b1100>(low, high) } else { _mm256_blend_pd::<0b1010>(low, high) }
    }
}

/// [`forward_ifma`] on four double lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_avx2(tb: &Doubles, a: &mut [u64]) {
    use super::avx2::mul_mod_small_quotient as mul_mod;
    use lanes4::*;
    use std::arch::x86_64::*;
    let n = a.len();
    let (p, p_inv) = (_mm256_set1_pd(tb.p), _mm256_set1_pd(tb.p_inv));
    let x = as_doubles(a);
    // The first stage, from the words as they came in (below p): its sums stay below
    // `bound`, in units of p, far from needing a re-centring.
    let w = _mm256_set1_pd(tb.fwd[1]);
    for j in (0..n / 2).step_by(4) {
        let (u, v) = (ld_word(x, j), mul_mod(ld_word(x, j + n / 2), w, p, p_inv));
        st(x, j, _mm256_add_pd(u, v));
        st(x, j + n / 2, _mm256_sub_pd(u, v));
    }
    // `bound`: the largest |x| before each stage, in units of p. A stage adds a product to
    // each value; its sums are re-centred only where the next stage could otherwise pass
    // LAZY_LIMIT — every ~5 stages, and before the in-vector stages, whose sums are centred.
    let mut bound = 1.0 + tb.product_bound(1.0);
    debug_assert!(bound + tb.product_bound(bound) <= LAZY_LIMIT);
    let (mut m, mut t) = (2, n / 4);
    while t >= 4 {
        let out = bound + tb.product_bound(bound);
        let centred = out + tb.product_bound(out) > LAZY_LIMIT;
        for i in 0..m {
            let w = _mm256_set1_pd(tb.fwd[m + i]);
            let base = 2 * i * t;
            for j in (base..base + t).step_by(4) {
                let (u, v) = (ld(x, j), mul_mod(ld(x, j + t), w, p, p_inv));
                let (sum, diff) = (_mm256_add_pd(u, v), _mm256_sub_pd(u, v));
                if centred {
                    st(x, j, centre(sum, p, p_inv));
                    st(x, j + t, centre(diff, p, p_inv));
                } else {
                    st(x, j, sum);
                    st(x, j + t, diff);
                }
            }
        }
        bound = if centred { tb.centred_bound() } else { out };
        m *= 2;
        t /= 2;
    }
    debug_assert!(bound + tb.product_bound(bound) <= LAZY_LIMIT);
    // Strides 2 and 1 inside each vector, one pass: the high lane of a pair holds the
    // product; the result leaves as words.
    for j in (0..n).step_by(4) {
        let mut v = ld(x, j);
        for (wl, t) in [(&tb.fwd_lanes[0], 2), (&tb.fwd_lanes[1], 1)] {
            let y = mul_mod(v, ld(wl, j), p, p_inv);
            let low = centre(_mm256_add_pd(v, partner(t, y)), p, p_inv);
            let high = centre(_mm256_sub_pd(partner(t, v), y), p, p_inv);
            v = pairs(t, low, high);
        }
        st_word(x, j, v, p);
    }
}

/// [`backward_ifma`] on four double lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_avx2(tb: &Doubles, a: &mut [u64]) {
    use super::avx2::mul_mod_small_quotient as mul_mod;
    use lanes4::*;
    use std::arch::x86_64::*;
    let n = a.len();
    let (p, p_inv) = (_mm256_set1_pd(tb.p), _mm256_set1_pd(tb.p_inv));
    let x = as_doubles(a);
    // Strides 1 and 2 inside each vector, one pass, from the words as they came in.
    for j in (0..n).step_by(4) {
        let mut v = ld_word(x, j);
        for (wl, t) in [(&tb.inv_lanes[1], 1), (&tb.inv_lanes[0], 2)] {
            let vp = partner(t, v);
            let sum = centre(_mm256_add_pd(v, vp), p, p_inv);
            let diff = mul_mod(_mm256_sub_pd(vp, v), ld(wl, j), p, p_inv);
            v = pairs(t, sum, diff);
        }
        st(x, j, v);
    }
    // `bound`: the largest |x| before the stage, in units of p: the in-vector stages centre
    // their sums and multiply differences of inputs below p, then of values below `first`.
    // Each stage doubles the sums; they are re-centred only where the next stage's sums could
    // pass LAZY_LIMIT (every third stage), so no stage's sums pass it; the differences are
    // products, below `product_bound`.
    let first = tb.centred_bound().max(tb.product_bound(1.0));
    let mut bound = tb.centred_bound().max(tb.product_bound(2.0 * first));
    let mut t = 4;
    while t < n / 2 {
        let m = n / (2 * t);
        let centred = 4.0 * bound > LAZY_LIMIT;
        for i in 0..m {
            let w = _mm256_set1_pd(tb.inv[m + i]);
            let base = 2 * i * t;
            for j in (base..base + t).step_by(4) {
                let (u, v) = (ld(x, j), ld(x, j + t));
                let sum = _mm256_add_pd(u, v);
                st(x, j, if centred { centre(sum, p, p_inv) } else { sum });
                st(x, j + t, mul_mod(_mm256_sub_pd(u, v), w, p, p_inv));
            }
        }
        let sums = if centred { tb.centred_bound() } else { 2.0 * bound };
        bound = sums.max(tb.product_bound(2.0 * bound));
        t *= 2;
    }
    // The last stage with N⁻¹ folded into its twiddles: its products, of sums below
    // LAZY_LIMIT, are below p, and leave as words.
    debug_assert!(2.0 * bound <= LAZY_LIMIT && tb.product_bound(2.0 * bound) < 1.0);
    let (w_sum, w_diff) = (_mm256_set1_pd(tb.n_inv), _mm256_set1_pd(tb.last_inv));
    for j in (0..t).step_by(4) {
        let (u, v) = (ld(x, j), ld(x, j + t));
        st_word(x, j, mul_mod(_mm256_add_pd(u, v), w_sum, p, p_inv), p);
        st_word(x, j + t, mul_mod(_mm256_sub_pd(u, v), w_diff, p, p_inv), p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::zq::primes::generate_prime;

    /// Every build the CPU has (IFMA, AVX2, fhe-math's) gives the same transform, both ways,
    /// on the presets' prime sizes and at the extremes (all zeros, all p − 1); a build the CPU
    /// lacks is reported as skipped.
    #[test]
    fn fast_builds_match_fhe_math() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let builds = [(Simd::detect(), "ifma"), (Simd::without_avx512(), "avx2"), (Simd::portable(), "portable")];
        for (simd, name) in builds {
            let has = match name {
                "ifma" => simd.ifma(),
                "avx2" => simd.avx2() && avx2_fma_detected(),
                _ => true,
            };
            if !has {
                eprintln!("skipped: the {name} NTT build (this CPU lacks it)");
                continue;
            }
            for (bits, n) in [(48, 4096), (40, 4096), (37, 4096), (30, 4096), (48, 16), (47, 8192), (60, 4096)] {
                let p = generate_prime(bits, 2 * n as u64, 1 << bits).expect("prime");
                let q = Modulus::new(p).expect("modulus");
                let ntt = Ntt::new(&q, n, simd).expect("ntt");
                let expect = (name != "portable" && p < 1 << FAST_BITS).then_some(name);
                assert_eq!(ntt.build(), expect, "{bits}-bit prime, n = {n}");
                let reference = NttOperator::new(&q, n).expect("reference");
                let random: Vec<u64> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % p
                    })
                    .collect();
                for a in [random, vec![0; n], vec![p - 1; n]] {
                    let (mut ours, mut theirs) = (a.clone(), a.clone());
                    ntt.forward(&mut ours);
                    reference.forward(&mut theirs);
                    assert_eq!(ours, theirs, "{name} forward, {bits}-bit prime, n = {n}");
                    ntt.backward(&mut ours);
                    assert_eq!(ours, a, "{name} backward, {bits}-bit prime, n = {n}");
                }
            }
        }
    }
}
