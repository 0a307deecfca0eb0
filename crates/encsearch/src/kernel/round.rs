//! The last step of decryption: `m = a + c mod q`, then `round(t·m/q) mod t`, for every
//! coefficient — four at a time in doubles with AVX2 where `q < 2^52`, one at a time otherwise,
//! the same integers either way.
//!
//! `t·m/q` is one double-precision product by `t/q`, within `2^-20` of the exact quotient for
//! any `q < 2^64` (`decrypt.rs` says why that is exact for a ciphertext inside its noise
//! bound); both builds round it to the nearest integer, ties to even, by adding `2^52`.

use super::Simd;

/// 2^52 as a double: adding it to a value in `[0, 2^52)` rounds it to an integer (ties to
/// even) held in the low mantissa bits.
const MAGIC: f64 = 4_503_599_627_370_496.0;

/// The scaling of one modulus pair: `q` the ciphertext modulus, `t` the plaintext modulus.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rounding {
    q: u64,
    t: u64,
    t_over_q: f64,
    avx2: bool,
}

impl Rounding {
    /// The rounding from `q` to `t` (`t < q`, `t < 2^52`) with the builds `simd` allows.
    pub(crate) fn new(q: u64, t: u64, simd: Simd) -> Self {
        let avx2 = simd.avx2() && super::cpu::avx2_fma_detected() && q < 1 << 52;
        Self { q, t, t_over_q: t as f64 / q as f64, avx2 }
    }

    /// `acc[i] ← round(t·(acc[i] + c[i] mod q)/q) mod t`, for `acc[i], c[i] < q`.
    pub(crate) fn apply(&self, acc: &mut [u64], c: &[u64]) {
        assert_eq!(acc.len(), c.len(), "one addend per coefficient");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            done = acc.len() / 4 * 4;
            // SAFETY: `avx2` is set only where AVX2 and FMA were detected on the running CPU;
            // every load and store is a bounds-checked 4-word slice.
            #[allow(unsafe_code, reason = "AVX2 intrinsics after detecting the feature")]
            unsafe {
                self.apply_avx2(&mut acc[..done], &c[..done])
            };
        }
        let (q, t) = (self.q, self.t);
        for (a, &c) in acc.iter_mut().zip(c).skip(done) {
            let s = a.wrapping_add(c);
            // No wrap for q < 2^63; beyond, a wrapped sum is below q and taken as it is.
            let m = if s >= q || s < c { s.wrapping_sub(q) } else { s };
            let v = (m as f64 * self.t_over_q + MAGIC).to_bits() - MAGIC.to_bits();
            *a = if v >= t { v - t } else { v };
        }
    }

    /// [`Rounding::apply`], four coefficients at a time (`acc.len()` a multiple of 4, `q <
    /// 2^52`: the sum `acc[i] + c[i]` is exact in a double).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn apply_avx2(&self, acc: &mut [u64], c: &[u64]) {
        use super::avx2::{load_u64, store_u64};
        use std::arch::x86_64::*;
        let q = _mm256_set1_pd(self.q as f64);
        let t = _mm256_set1_pd(self.t as f64);
        let t_over_q = _mm256_set1_pd(self.t_over_q);
        for i in (0..acc.len()).step_by(4) {
            let m = _mm256_add_pd(load_u64(acc, i), load_u64(c, i));
            let m = _mm256_sub_pd(m, _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(m, q), q));
            let v = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(m, t_over_q));
            let v = _mm256_sub_pd(v, _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(v, t), t));
            store_u64(acc, i, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both builds give the same integers, each the rounded quotient computed exactly, at the
    /// extremes of `m` and around `q`.
    #[test]
    fn rounding_matches_exact_quotient_on_every_build() {
        for (q, t) in [((1u64 << 40) - 87, 65_537u64), ((1 << 51) - 129, 786_433), ((1 << 62) - 57, 65_537)] {
            let mut a: Vec<u64> = (0..4093u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % q).collect();
            a.extend([0, 1, q - 1, q / 2, q / 2 + 1, q - 2, 2]);
            let c: Vec<u64> = a.iter().rev().map(|&v| (v ^ 0x5555_5555) % q).collect();
            let mut first: Option<Vec<u64>> = None;
            for simd in [Simd::detect(), Simd::portable()] {
                let mut out = a.clone();
                Rounding::new(q, t, simd).apply(&mut out, &c);
                for ((&x, &y), &v) in a.iter().zip(&c).zip(&out) {
                    let m = (u128::from(x) + u128::from(y)) % u128::from(q);
                    // round(t·m/q), exactly; the double product may differ only within 2^-20
                    // of a half, which these inputs do not reach.
                    let num = 2 * u128::from(t) * m + u128::from(q);
                    let exact = (num / (2 * u128::from(q))) % u128::from(t);
                    let frac = (num % (2 * u128::from(q))) as f64 / (2 * q) as f64;
                    if frac > 1e-5 && frac < 1.0 - 1e-5 {
                        assert_eq!(u128::from(v), exact, "m = {m}, q = {q}: {}", simd.describe());
                    }
                    assert!(v < t);
                }
                match &first {
                    None => first = Some(out),
                    Some(f) => assert_eq!(f, &out, "{} differs", simd.describe()),
                }
            }
        }
    }
}
