//! The relinearisation's gadget: one prime `P` and `K` signed digits of `b` bits, the
//! decomposition `y = Σ_k d_k·B^k (mod P)`, `B = 2^b`, `|d_k| ≤ B/2 + 1`, of `c2` rounded to `P`.
//!
//! One prime instead of Q's RNS digits: the key products and both inverse transforms happen
//! modulo `P` alone (two inverse NTTs instead of one pair per prime of Q), and `c2` is rounded
//! once (to `P`) instead of once per prime. `P` stays below 2^48 where it can, so the vector
//! NTTs and pointwise products run; it is at least 2^8 above the response modulus `q0`, so
//! rounding `c2` to it costs 2^-8 of what the full answer's rounding of `c2` to `q0` costs.
//! `K` is the fewest digits whose noise `Σ_k d_k·e_k` stays below that full answer's rounding
//! noise (see [`Gadget::noise_variance`]): 3 digits of 16 bits at N = 4096, 4 of 15 at 8192,
//! with the key's errors of variance 1 ([`KEY_ERROR_VARIANCE`]).
//! The decomposition itself is `kernel/digits.rs`.

use fhe_math::zq::primes::generate_prime;

use crate::error::{Error, Result};
use crate::kernel::{Digits, NTT_FAST_BITS, Simd};
use crate::params::{ROUNDING_SECOND_MOMENT, SearchParams};

/// The variance of the compact key's errors `e_k` (a centred binomial of variance 1, values
/// in [−2, 2], as Kyber's η = 2): RLWE samples modulo a prime of at most 60 bits at N ≥ 4096,
/// far inside the 128-bit bounds of the homomorphic-encryption standard (which allow 109 bits
/// at N = 4096 with σ = 3.2; a σ of 1 costs under 2 bits of that). The smaller error lets three
/// digits do at N = 4096 what four did with the ciphertexts' variance.
pub(crate) const KEY_ERROR_VARIANCE: usize = 1;
/// How far above `q0` the gadget's prime is, in bits.
const ABOVE_Q0_BITS: usize = 8;
/// The most digits tried.
pub(crate) const MAX_DIGITS: usize = 8;

/// The gadget of compact answers for one parameter set (both sides derive it from the
/// public parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gadget {
    /// The prime `P` (≡ 1 mod 2N).
    pub(crate) prime: u64,
    /// Bits `b` of each digit.
    pub(crate) bits: u32,
    /// Number of digits `K`.
    pub(crate) digits: usize,
}

impl Gadget {
    /// The gadget for ring degree `degree`, response modulus `q0` and secret-key variance
    /// `variance`: [`Gadget::prime_for`]'s prime, and the fewest digits whose noise variance
    /// is at most the full answer's rounding one.
    pub(crate) fn new(degree: usize, q0: u64, variance: usize) -> Result<Self> {
        let prime = Self::prime_for(degree, q0)?;
        let (n, var) = (degree as f64, variance as f64);
        // The full answer's rounding of c2 to q0, times s² (E‖s²‖² ≤ 2·N²·σ⁴), in units of
        // q0, as `SearchParams::noise_budget` bounds it.
        let full = ROUNDING_SECOND_MOMENT * 2.0 * n * n * var * var;
        let scale = q0 as f64 / prime as f64;
        (2..=MAX_DIGITS)
            .map(|digits| Self::with_digits(prime, digits))
            .find(|g| g.noise_variance(degree) * scale * scale <= full)
            .ok_or_else(|| Error::params("no gadget of at most 8 digits for compact answers"))
    }

    /// The gadget of `params`.
    pub(crate) fn for_params(params: &SearchParams) -> Result<Self> {
        Self::new(params.degree, params.response_modulus(), params.variance)
    }

    /// The gadget's prime for ring degree `degree` and response modulus `q0`: the largest
    /// prime ≡ 1 mod 2N below `2^max(48, bits(q0) + 8)`.
    pub(crate) fn prime_for(degree: usize, q0: u64) -> Result<u64> {
        let q0_bits = 64 - q0.leading_zeros() as usize;
        let p_bits = (NTT_FAST_BITS as usize).max(q0_bits + ABOVE_Q0_BITS);
        if p_bits > 60 {
            return Err(Error::params(format!("no gadget prime for compact answers above a {q0_bits}-bit q0")));
        }
        let two_n = 2 * degree as u64;
        generate_prime(p_bits, two_n, 1 << p_bits)
            .ok_or_else(|| Error::params(format!("no {p_bits}-bit prime ≡ 1 mod {two_n} for compact answers")))
    }

    /// `digits` (at least 1) digits of equal width for `prime`.
    pub(crate) fn with_digits(prime: u64, digits: usize) -> Self {
        let bits = (64 - prime.leading_zeros()).div_ceil(digits.max(1) as u32);
        Self { prime, bits, digits: digits.max(1) }
    }

    /// The largest magnitude of a digit, `B/2 + 1`.
    pub(crate) fn max_digit(&self) -> f64 {
        (1u64 << (self.bits - 1)) as f64 + 1.0
    }

    /// Bound on the variance of the relinearisation's noise `Σ_k d_k·e_k` per coefficient, in
    /// units of `P`: `K·N·(B/2 + 1)²·σ²` (every digit at its largest magnitude, the key's
    /// errors of variance σ² = [`KEY_ERROR_VARIANCE`]).
    pub(crate) fn noise_variance(&self, degree: usize) -> f64 {
        self.digits as f64 * degree as f64 * self.max_digit().powi(2) * KEY_ERROR_VARIANCE as f64
    }

    /// `B^k mod P`.
    pub(crate) fn base_power(&self, k: usize) -> u64 {
        ((1u128 << (self.bits as usize * k)) % self.prime as u128) as u64
    }

    /// The decomposition into this gadget's digits, with the builds `simd` allows.
    pub(crate) fn splitter(&self, simd: Simd) -> Digits {
        Digits::new(self.prime, self.bits, self.digits, simd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presets' gadgets are the ones the module names, and their digits recombine with
    /// the powers the key uses.
    #[test]
    fn presets_gadgets_recombine() {
        for (degree, q0_bits, bits, digits) in [(4096usize, 40usize, 16u32, 3usize), (8192, 51, 15, 4)] {
            let q0 = generate_prime(q0_bits, 2 * degree as u64, 1 << q0_bits).expect("q0");
            let g = Gadget::new(degree, q0, 10).expect("gadget");
            assert_eq!((g.bits, g.digits), (bits, digits), "N = {degree}");
            let p = g.prime;
            let y: Vec<u64> =
                (0..64u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % p).chain([p - 1, p / 2]).collect();
            let mut d = vec![0u64; g.digits * y.len()];
            g.splitter(Simd::detect()).split(&y, &mut d);
            for (i, &v) in y.iter().enumerate() {
                let sum = (0..g.digits)
                    .map(|k| d[k * y.len() + i] as u128 * g.base_power(k) as u128 % p as u128)
                    .sum::<u128>();
                assert_eq!((sum % p as u128) as u64, v);
            }
        }
    }
}
