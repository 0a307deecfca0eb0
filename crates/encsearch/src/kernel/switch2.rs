//! A modulus switch from a two-prime modulus `Q = q0·q1` down to a small prime p, added into a
//! row: `out[k] += round(p·x_k / Q) mod p`, `x_k` given by its residues mod q0 and q1 (any
//! value mod Q: the result is the same for `x` and `x + Q`). Compact answers use it for the
//! relinearisation's additions where the general down-scaling has no vector build (CPUs
//! without AVX-512 IFMA).
//!
//! Garner: `x = x0 + q0·h`, `h = (x1 − x0)·q0⁻¹ mod q1`, so `p·x/Q = (h + x0/q0)·p/q1`. With
//! every prime below 2^50 that is below `2^50` and carries a relative error near 2^-52 in
//! double precision, so the rounding is exact or off by one at a near tie: one unit of p,
//! as the general down-scaling allows.

use fhe_math::zq::Modulus;

use super::Simd;

/// Constants of one switch `Q = q0·q1 → p`.
#[derive(Debug, Clone)]
pub(crate) struct Switch2 {
    q0: u64,
    q1: Modulus,
    /// `q0⁻¹ mod q1` and its Shoup factor.
    q0_inv: (u64, u64),
    p: Modulus,
    /// `p / q1` and `1 / q0` in double precision.
    scale: f64,
    inv_q0: f64,
    simd: Simd,
}

impl Switch2 {
    /// The switch from `q0·q1` to `p`, or `None` unless all three are below 2^50 and
    /// `q0` is invertible mod `q1`.
    pub(crate) fn new(q0: u64, q1: u64, p: u64, simd: Simd) -> Option<Self> {
        if [q0, q1, p].iter().any(|&m| m >= 1 << 50) {
            return None;
        }
        let q1m = Modulus::new(q1).ok()?;
        let inv = q1m.inv(q1m.reduce(q0))?;
        Some(Self {
            q0,
            q0_inv: (inv, q1m.shoup(inv)),
            q1: q1m,
            p: Modulus::new(p).ok()?,
            scale: p as f64 / q1 as f64,
            inv_q0: 1.0 / q0 as f64,
            simd,
        })
    }

    /// `out[k] = out[k] + round(p·x_k/Q) mod p` for `x_k ≡ r0[k] (mod q0)`, `≡ r1[k] (mod q1)`,
    /// every residue reduced, every `out[k] < p`.
    pub(crate) fn add_into(&self, r0: &[u64], r1: &[u64], out: &mut [u64]) {
        assert!(r0.len() == out.len() && r1.len() == out.len(), "rows of another length");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.simd.avx2() && super::cpu::avx2_fma_detected() {
            done = out.len() / 4 * 4;
            // SAFETY: AVX2 and FMA were detected on the running CPU just above; every load and
            // store is a bounds-checked 4-word slice.
            #[allow(unsafe_code, reason = "AVX2/FMA intrinsics after detecting the features")]
            unsafe {
                self.add_into_avx2(&r0[..done], &r1[..done], &mut out[..done])
            };
        }
        let (q1, p) = (&self.q1, &self.p);
        for k in done..out.len() {
            let d = q1.sub(r1[k], q1.reduce(r0[k]));
            let h = q1.mul_shoup(d, self.q0_inv.0, self.q0_inv.1);
            let y = ((h as f64 + r0[k] as f64 * self.inv_q0) * self.scale).round() as u64;
            out[k] = p.add(out[k], p.reduce(y));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_into_avx2(&self, r0: &[u64], r1: &[u64], out: &mut [u64]) {
        use super::avx2::{load_u64, mul_mod, reduce, store_u64};
        use std::arch::x86_64::*;
        const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let (q1, q1_inv) = (_mm256_set1_pd(*self.q1 as f64), _mm256_set1_pd(1.0 / *self.q1 as f64));
        let (p, p_inv) = (_mm256_set1_pd(*self.p as f64), _mm256_set1_pd(1.0 / *self.p as f64));
        let q0_inv = _mm256_set1_pd(self.q0_inv.0 as f64);
        let (inv_q0, scale) = (_mm256_set1_pd(self.inv_q0), _mm256_set1_pd(self.scale));
        debug_assert!(self.q0 < 1 << 50);
        for i in (0..out.len()).step_by(4) {
            let x0 = load_u64(r0, i);
            // x1 − x0 ∈ (−2^50, 2^50): exact, reduced into [0, q1).
            let d = reduce(_mm256_sub_pd(load_u64(r1, i), x0), q1, q1_inv);
            let h = reduce(mul_mod(d, q0_inv, q1, q1_inv), q1, q1_inv);
            let y = _mm256_round_pd::<NEAREST>(_mm256_mul_pd(_mm256_fmadd_pd(x0, inv_q0, h), scale));
            let sum = _mm256_add_pd(load_u64(out, i), y);
            store_u64(out, i, reduce(sum, p, p_inv));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use num_traits::ToPrimitive;

    #[test]
    fn both_builds_round_like_big_integers() {
        let (q0, q1, p) = ((1u64 << 40) - 87, (1u64 << 37) - 25, (1u64 << 35) - 31);
        let big_q = BigUint::from(q0) * q1;
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 4099; // a tail for the portable path
        let values: Vec<BigUint> = (0..n).map(|_| (BigUint::from(next()) << 20u32) % &big_q).collect();
        let r0: Vec<u64> = values.iter().map(|v| (v % q0).to_u64().expect("u64")).collect();
        let r1: Vec<u64> = values.iter().map(|v| (v % q1).to_u64().expect("u64")).collect();
        let start: Vec<u64> = (0..n as u64).map(|k| (k * 977) % p).collect();
        for simd in [Simd::detect(), Simd::portable()] {
            let s = Switch2::new(q0, q1, p, simd).expect("switch");
            let mut out = start.clone();
            s.add_into(&r0, &r1, &mut out);
            for (k, v) in values.iter().enumerate() {
                // round(p·v/Q), exact, then the allowed one unit either way.
                let exact = ((v * p * 2u32 + &big_q) / (&big_q * 2u32) % p).to_u64().expect("u64");
                let want = (start[k] + exact) % p;
                let off = (out[k] + p - want) % p;
                assert!(off == 0 || off == 1 || off == p - 1, "{}: coefficient {k} off by {off}", simd.describe());
            }
        }
    }
}
