//! A modulus switch from `P` down to a smaller `p`, `r ↦ round(p·r/P) mod p`, of a row added
//! into another (`out[k] + round(p·r_k/P)`: compact answers' last step, for the
//! relinearisation's sums) or of the sum of two rows (`round(p·(a_k + c_k mod P)/P)`: the last
//! step of decryption, `P = q0`, `p = t`). Any representative of `r_k` mod P gives the same
//! result mod p (`p·P/P = p`), so `r_k ∈ [0, P)` is used as it is.
//!
//! In double precision, four coefficients at a time with AVX2 and one at a time otherwise, the
//! same arithmetic either way: `r·(p/P)` is within `p·2^-52` of the exact quotient (below
//! 2^-4 for every `p < 2^48`, 2^-22 for a 30-bit `t`; `r` is exact below 2^53, and converted
//! with a relative error of 2^-53 above), so the rounded value is the exact rounding or, where
//! the quotient is that close to a half, off by one: a rounding error below `1/2 + 2^-4`,
//! inside the second moment 1/3 the noise budget allows a rounding, and exact for a
//! decryption inside its noise bound (`decrypt.rs`).

use super::Simd;
use crate::error::{Error, Result};

/// Constants of one switch `P → p`.
#[derive(Debug, Clone)]
pub(crate) struct Switch {
    big_p: u64,
    p: u64,
    /// `p / P`.
    ratio: f64,
    /// Whether the AVX2 build runs (`P` below 2^52, AVX2 and FMA detected).
    avx2: bool,
}

impl Switch {
    /// The switch from `big_p` to `p` (`p < big_p < 2^62`, `p < 2^48`), with the builds `simd`
    /// allows.
    pub(crate) fn new(big_p: u64, p: u64, simd: Simd) -> Result<Self> {
        if p >= big_p || big_p >= 1 << 62 || p >= 1 << 48 {
            return Err(Error::params(format!(
                "a switch needs a target prime below 2^48 and below its source; not {p} from {big_p}"
            )));
        }
        let avx2 = big_p < 1 << 52 && simd.avx2() && super::cpu::avx2_fma_detected();
        Ok(Self { big_p, p, ratio: p as f64 / big_p as f64, avx2 })
    }

    /// `out[k] = out[k] + round(p·r[k]/P) mod p`, every `r[k] < P` and `out[k] < p`.
    pub(crate) fn add_into(&self, r: &[u64], out: &mut [u64]) {
        assert_eq!(r.len(), out.len(), "rows of another length");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            done = out.len() / 4 * 4;
            // SAFETY: `avx2` is set only where AVX2 and FMA were detected on the running CPU;
            // every load and store is a bounds-checked 4-word slice.
            #[allow(unsafe_code, reason = "AVX2/FMA intrinsics after detecting the features")]
            unsafe {
                add_into_avx2(self.p, self.ratio, &r[..done], &mut out[..done])
            };
        }
        for (o, &x) in out.iter_mut().zip(r).skip(done) {
            // In [0, p]: a quotient below p rounds to at most p.
            let y = (x as f64 * self.ratio).round_ties_even() as u64;
            let s = *o + y;
            *o = if s >= self.p { s - self.p } else { s };
        }
    }

    /// `a[k] = round(p·(a[k] + c[k] mod P)/P) mod p`, every `a[k], c[k] < P`.
    pub(crate) fn round_sum(&self, a: &mut [u64], c: &[u64]) {
        assert_eq!(a.len(), c.len(), "rows of another length");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            done = a.len() / 4 * 4;
            // SAFETY: `avx2` is set only where AVX2 and FMA were detected on the running CPU;
            // every load and store is a bounds-checked 4-word slice.
            #[allow(unsafe_code, reason = "AVX2/FMA intrinsics after detecting the features")]
            unsafe {
                round_sum_avx2(self, &mut a[..done], &c[..done])
            };
        }
        for (x, &y) in a.iter_mut().zip(c).skip(done) {
            // No wrap: both below P < 2^62.
            let m = *x + y;
            let m = if m >= self.big_p { m - self.big_p } else { m };
            let v = (m as f64 * self.ratio).round_ties_even() as u64;
            *x = if v >= self.p { v - self.p } else { v };
        }
    }
}

/// [`Switch::add_into`] four lanes at a time: `r < 2^52` and `out < p < 2^48` are exact as
/// doubles, the rounded quotient is an integer in `[0, p]`, and the sum below `2p` is reduced
/// by one conditional subtraction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn add_into_avx2(p: u64, ratio: f64, r: &[u64], out: &mut [u64]) {
    use super::avx2::{load_u64, store_u64};
    use std::arch::x86_64::*;
    let (vp, vratio) = (_mm256_set1_pd(p as f64), _mm256_set1_pd(ratio));
    for i in (0..r.len()).step_by(4) {
        let y =
            _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(load_u64(r, i), vratio));
        let s = _mm256_add_pd(load_u64(out, i), y);
        store_u64(out, i, _mm256_sub_pd(s, _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(s, vp), vp)));
    }
}

/// [`Switch::round_sum`] four lanes at a time: `a, c < P < 2^52` are exact as doubles and so
/// is their sum, the rounded quotient is an integer in `[0, p]`, `p` itself taken to 0.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn round_sum_avx2(s: &Switch, a: &mut [u64], c: &[u64]) {
    use super::avx2::{load_u64, store_u64};
    use std::arch::x86_64::*;
    let (vbig, vp, vratio) = (_mm256_set1_pd(s.big_p as f64), _mm256_set1_pd(s.p as f64), _mm256_set1_pd(s.ratio));
    for i in (0..a.len()).step_by(4) {
        let m = _mm256_add_pd(load_u64(a, i), load_u64(c, i));
        let m = _mm256_sub_pd(m, _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(m, vbig), vbig));
        let v = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(m, vratio));
        store_u64(a, i, _mm256_sub_pd(v, _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(v, vp), vp)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::zq::primes::generate_prime;

    /// Every build gives the exact rounding, or one off where the quotient is within 2^-4 of a
    /// half, for random values, the extremes, and values whose quotient is nearly a half.
    #[test]
    fn every_build_rounds_within_one_of_exact() {
        for (big_bits, bits) in [(48usize, 26usize), (48, 35), (59, 45)] {
            let big_p = generate_prime(big_bits, 8192, 1 << big_bits).expect("prime");
            let p = generate_prime(bits, 8192, 1 << bits).expect("prime");
            let mut r: Vec<u64> = (0..4093u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % big_p).collect();
            r.extend([0, 1, big_p - 1, big_p / 2, big_p / 2 + 1]);
            // r ≈ (j + 1/2)·P/p: quotients within 1/p of a half.
            r.extend((1..64u64).map(|j| ((2 * j + 1) as u128 * big_p as u128 / (2 * p as u128)) as u64));
            let out0: Vec<u64> = (0..r.len() as u64).map(|i| (i * 7919) % p).collect();
            for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
                let s = Switch::new(big_p, p, simd).expect("switch");
                let mut out = out0.clone();
                s.add_into(&r, &mut out);
                for ((&x, &o0), &o) in r.iter().zip(&out0).zip(&out) {
                    // The exact quotient p·x/P as a fraction, and the rounding of it.
                    let num = p as u128 * x as u128;
                    let (q, rem) = (num / big_p as u128, num % big_p as u128);
                    let exact = (q + u128::from(2 * rem >= big_p as u128)) as u64 % p;
                    let got = (o + p - o0) % p;
                    let near_half =
                        (2 * rem as i128 - big_p as i128).unsigned_abs() as f64 / (big_p as f64) < 1.0 / 8.0;
                    let off_by_one = (got + 1) % p == exact || got == (exact + 1) % p;
                    let ok = got == exact || (near_half && off_by_one);
                    assert!(ok, "P {big_p}, p {p}, x {x}: {got} for {exact} ({})", simd.describe());
                }
            }
        }
    }

    /// Both builds give the same integers, each the rounded quotient computed exactly, at the
    /// extremes of `m` and around `q`.
    #[test]
    fn sums_round_to_the_exact_quotient_on_every_build() {
        for (q, t) in [((1u64 << 40) - 87, 65_537u64), ((1 << 51) - 129, 786_433), ((1 << 61) - 1, 65_537)] {
            let mut a: Vec<u64> = (0..4093u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % q).collect();
            a.extend([0, 1, q - 1, q / 2, q / 2 + 1, q - 2, 2]);
            let c: Vec<u64> = a.iter().rev().map(|&v| (v ^ 0x5555_5555) % q).collect();
            let mut first: Option<Vec<u64>> = None;
            for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
                let mut out = a.clone();
                Switch::new(q, t, simd).expect("switch").round_sum(&mut out, &c);
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
