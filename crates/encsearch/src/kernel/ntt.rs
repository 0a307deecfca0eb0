//! The negacyclic NTT of one prime: an AVX-512 IFMA build for primes below 2^48, fhe-math's
//! transform otherwise — the same transform either way, so hot forms built by one are read
//! by the other.
//!
//! fhe-math (through tfhe-ntt) leaves polynomials in NTT form with output `j` equal to the
//! evaluation at `ψ^(2·rev(j)+1)` (`rev`: bit reversal of log2 N bits, ψ a primitive 2N-th
//! root of unity), which is what the textbook Cooley–Tukey forward transform with twiddles
//! `ψ^rev(k)` produces from natural order, and the Gentleman–Sande one undoes. [`Ntt::new`]
//! reads ψ off fhe-math's transform of `x` and checks every evaluation point before it lets
//! the fast build run; a test compares both builds on random polynomials.
//!
//! The fast build keeps every value reduced in `[0, p)`; products use Shoup's method with
//! 52-bit factors (`x·w − ⌊x·w'/2^52⌋·p ∈ [0, 2p)`). The three stages whose butterflies pair
//! lanes of one vector (strides 4, 2, 1) swap partners with a lane permutation.

use fhe_math::ntt::NttOperator;
use fhe_math::zq::Modulus;

use super::Simd;
use super::ifma::{self as simd, shoup52};
use crate::error::{Error, Result};

/// Primes below this many bits can take the IFMA build.
const FAST_BITS: u32 = 48;

/// One prime's NTT of size N.
#[derive(Debug, Clone)]
pub struct Ntt {
    reference: NttOperator,
    fast: Option<Tables>,
}

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
}

fn reverse_bits(k: usize, bits: u32) -> usize {
    if bits == 0 { 0 } else { k.reverse_bits() >> (usize::BITS - bits) }
}

impl Ntt {
    /// The transform of size `n` (a power of two, at least 16) modulo the prime `q`.
    pub fn new(q: &Modulus, n: usize, simd: Simd) -> Result<Self> {
        let reference =
            NttOperator::new(q, n).ok_or_else(|| Error::params(format!("{} has no NTT of size {n}", **q)))?;
        let fast = (simd.ifma() && **q < 1 << FAST_BITS && n >= 16 && n.is_power_of_two())
            .then(|| Tables::matching(&reference, q, n))
            .flatten();
        Ok(Self { reference, fast })
    }

    /// Whether the fast build runs for this prime.
    #[cfg(test)]
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
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
        if let Some(t) = &self.fast
            && a.len() == t.fwd.len()
        {
            // SAFETY: `fast` is only set from a `Simd` with IFMA, which only `Simd::detect` makes.
            #[allow(unsafe_code, reason = "AVX-512 IFMA build after detecting the features")]
            unsafe {
                if forward { forward_ifma(t, a) } else { backward_ifma(t, a) }
            };
            return;
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
        Some(Self { p, fwd_lanes: build(&fwd), inv_lanes: build(&inv), fwd, inv, n_inv: with_shoup(n_inv) })
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

/// Cooley–Tukey, natural order in, bit-reversed evaluation order out.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn forward_ifma(tb: &Tables, a: &mut [u64]) {
    use simd::{load, store};
    use std::arch::x86_64::*;
    let n = a.len();
    let p = _mm512_set1_epi64(tb.p as i64);
    let (mut m, mut t) = (1, n / 2);
    while t >= 8 {
        for i in 0..m {
            let (w, ws) = tb.fwd[m + i];
            let (w, ws) = (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(ws as i64));
            let base = 2 * i * t;
            for j in (base..base + t).step_by(8) {
                let (u, v) = (load(a, j), simd::mul(load(a, j + t), w, ws, p));
                store(a, j, simd::add(u, v, p));
                store(a, j + t, simd::sub(u, v, p));
            }
        }
        m *= 2;
        t /= 2;
    }
    // Strides 4, 2, 1 inside each vector: the high lane of a pair holds the product.
    for (s, (t, high)) in IN_VECTOR_STAGES.into_iter().enumerate() {
        let idx = partner_lanes(t);
        let (wl, sl) = (&tb.fwd_lanes[2 * s], &tb.fwd_lanes[2 * s + 1]);
        for j in (0..n).step_by(8) {
            let x = load(a, j);
            let y = simd::mul(x, load(wl, j), load(sl, j), p);
            let low = simd::add(x, _mm512_permutexvar_epi64(idx, y), p);
            let hi = simd::sub(_mm512_permutexvar_epi64(idx, x), y, p);
            store(a, j, _mm512_mask_blend_epi64(high, low, hi));
        }
    }
}

/// Gentleman–Sande, bit-reversed evaluation order in, natural order out, times N⁻¹.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn backward_ifma(tb: &Tables, a: &mut [u64]) {
    use simd::{load, store};
    use std::arch::x86_64::*;
    let n = a.len();
    let p = _mm512_set1_epi64(tb.p as i64);
    for (s, (t, high)) in IN_VECTOR_STAGES.into_iter().enumerate().rev() {
        let idx = partner_lanes(t);
        let (wl, sl) = (&tb.inv_lanes[2 * s], &tb.inv_lanes[2 * s + 1]);
        for j in (0..n).step_by(8) {
            let x = load(a, j);
            let xp = _mm512_permutexvar_epi64(idx, x);
            let sum = simd::add(x, xp, p);
            let diff = simd::mul(simd::sub(xp, x, p), load(wl, j), load(sl, j), p);
            store(a, j, _mm512_mask_blend_epi64(high, sum, diff));
        }
    }
    let mut t = 8;
    while t < n {
        let m = n / (2 * t);
        for i in 0..m {
            let (w, ws) = tb.inv[m + i];
            let (w, ws) = (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(ws as i64));
            let base = 2 * i * t;
            for j in (base..base + t).step_by(8) {
                let (u, v) = (load(a, j), load(a, j + t));
                store(a, j, simd::add(u, v, p));
                store(a, j + t, simd::mul(simd::sub(u, v, p), w, ws, p));
            }
        }
        t *= 2;
    }
    let (w, ws) = (_mm512_set1_epi64(tb.n_inv.0 as i64), _mm512_set1_epi64(tb.n_inv.1 as i64));
    for j in (0..n).step_by(8) {
        store(a, j, simd::mul(load(a, j), w, ws, p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::zq::primes::generate_prime;

    /// Both builds give the same transform, both ways, on the presets' prime sizes.
    #[test]
    fn fast_build_matches_fhe_math() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for (bits, n) in [(48, 4096), (40, 4096), (37, 4096), (48, 16), (47, 8192), (60, 4096)] {
            let p = generate_prime(bits, 2 * n as u64, 1 << bits).expect("prime");
            let q = Modulus::new(p).expect("modulus");
            let ntt = Ntt::new(&q, n, Simd::detect()).expect("ntt");
            assert_eq!(ntt.is_fast(), Simd::detect().ifma() && p < 1 << FAST_BITS, "{bits}-bit prime, n = {n}");
            let reference = NttOperator::new(&q, n).expect("reference");
            let a: Vec<u64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % p
                })
                .collect();
            let (mut ours, mut theirs) = (a.clone(), a.clone());
            ntt.forward(&mut ours);
            reference.forward(&mut theirs);
            assert_eq!(ours, theirs, "forward, {bits}-bit prime, n = {n}");
            ntt.backward(&mut ours);
            assert_eq!(ours, a, "backward, {bits}-bit prime, n = {n}");
        }
    }
}
