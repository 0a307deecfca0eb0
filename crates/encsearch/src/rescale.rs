//! The single down-scaling of a score ciphertext: from the multiplication basis `Q ∪ P`
//! straight to the response modulus `q0`, `y = round(c · t·q0 / Q²) mod q0`.
//!
//! fhe-math's general RNS scaler does this with 256-bit arithmetic per coefficient; here the
//! structure of our sums makes a cheaper exact-up-to-one method safe. Write
//! `c = Σ u_i·M_i − v·M` with `M = Q·P`, `M_i = M/m_i`, `u_i = r_i·(M_i⁻¹ mod m_i) mod m_i`.
//! Our sums satisfy `|c| ≤ M/8` (the extension primes are chosen for that, see
//! [`crate::ServerContext::new`]), so `Σ u_i/m_i` lies within 1/8 of the integer `v`, and a
//! double-precision sum finds `v` without error. Then
//! `c·f = Σ u_i·w_i − v·w` with `w_i = M_i·f` and `w = M·f` rational constants, each split
//! into an integer part (used mod q0) and a 64-bit fraction: the fractions' truncation costs
//! at most `k·2^60·2^-64 < 1/2` in total, so `y` is the exact rounding or off by one — one
//! unit of noise, far below the `q0 / 2t` decryption margin.

use fhe_math::zq::Modulus;
use num_bigint::BigUint;
use num_traits::ToPrimitive;

use crate::error::{Error, Result};

/// Precomputed constants of the down-scaling for one (basis, q0, t).
#[derive(Debug, Clone)]
pub struct Rescaler {
    moduli: Vec<Modulus>,
    /// `M_i⁻¹ mod m_i`, with its Shoup precomputation.
    inv: Vec<(u64, u64)>,
    /// `1 / m_i` for the overflow count.
    recip: Vec<f64>,
    /// Integer part of `w_i` mod q0, and its 64-bit fraction.
    w_int: Vec<u64>,
    w_frac: Vec<u64>,
    /// Integer part of `w` mod q0, and its 64-bit fraction.
    big_int: u64,
    big_frac: u64,
    q0: Modulus,
}

/// `num / den` as (integer part mod q0, 64-bit fraction).
fn split(num: &BigUint, den: &BigUint, q0: u64) -> Result<(u64, u64)> {
    let scaled = (num << 64u32) / den;
    let frac = (&scaled & BigUint::from(u64::MAX)).to_u64().ok_or_else(|| Error::params("rescale fraction"))?;
    let int = ((scaled >> 64u32) % q0).to_u64().ok_or_else(|| Error::params("rescale integer"))?;
    Ok((int, frac))
}

impl Rescaler {
    /// Constants for the basis `moduli` (all below 2^60), the factor `num / den` and the
    /// output modulus `q0`.
    pub fn new(moduli: &[u64], num: &BigUint, den: &BigUint, q0: u64) -> Result<Self> {
        if moduli.is_empty() || moduli.len() > 8 {
            return Err(Error::params(format!("rescaling supports 1..=8 moduli, not {}", moduli.len())));
        }
        let big_m: BigUint = moduli.iter().map(|&m| BigUint::from(m)).product();
        let q0m = Modulus::new(q0)?;
        let mut inv = Vec::with_capacity(moduli.len());
        let (mut w_int, mut w_frac) = (Vec::new(), Vec::new());
        let mut ops = Vec::with_capacity(moduli.len());
        for &m in moduli {
            if m >= 1 << 60 {
                return Err(Error::params("rescale moduli must be below 2^60"));
            }
            let op = Modulus::new(m)?;
            let mi = &big_m / m;
            let r = (&mi % m).to_u64().ok_or_else(|| Error::params("rescale residue"))?;
            let i = op.inv(r).ok_or_else(|| Error::params("basis moduli are not coprime"))?;
            inv.push((i, op.shoup(i)));
            let (a, b) = split(&(&mi * num), den, q0)?;
            w_int.push(a);
            w_frac.push(b);
            ops.push(op);
        }
        let (big_int, big_frac) = split(&(&big_m * num), den, q0)?;
        Ok(Self {
            recip: moduli.iter().map(|&m| 1.0 / m as f64).collect(),
            moduli: ops,
            inv,
            w_int,
            w_frac,
            big_int,
            big_frac,
            q0: q0m,
        })
    }

    /// Scales every coefficient of a polynomial given as its residue rows (`rows[i][k] < m_i`).
    pub fn scale_poly(&self, rows: &[&[u64]], out: &mut [u64]) {
        for (k, o) in out.iter_mut().enumerate() {
            let (mut est, mut int, mut frac) = (0f64, 0u128, 0u128);
            for (i, row) in rows.iter().enumerate() {
                let (inv, inv_shoup) = self.inv[i];
                let u = self.moduli[i].mul_shoup(row[k], inv, inv_shoup);
                est += u as f64 * self.recip[i];
                // u < 2^60, w_int < q0 < 2^60, w_frac < 2^64: at most 8 terms (checked in
                // `new`) keep both sums below 2^127, so they fit unreduced (and `frac` in i128).
                int += u as u128 * self.w_int[i] as u128;
                frac += u as u128 * self.w_frac[i] as u128;
            }
            *o = self.finish(est, int, frac);
        }
    }

    #[inline]
    fn finish(&self, est: f64, int: u128, frac: u128) -> u64 {
        let q0 = &self.q0;
        // |c| ≤ M/8 and est ≥ 0, so est is within 1/8 of v ≥ 0 (truncation rounds here).
        let v = (est + 0.5) as u64;
        let frac = frac as i128 - i128::from(v) * self.big_frac as i128 + (1 << 63); // round half up
        let carry = frac >> 64; // floor division by 2^64 (arithmetic shift)
        let int = q0.sub(q0.reduce_u128(int), q0.mul(q0.reduce(v), self.big_int));
        if carry >= 0 {
            q0.add(int, q0.reduce(carry as u64))
        } else {
            q0.sub(int, q0.reduce(carry.unsigned_abs() as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks against exact big-integer arithmetic on centred values |c| ≤ M/8.
    #[test]
    fn matches_exact_rounding_up_to_one() {
        use fhe_math::zq::primes::generate_prime;
        let m0 = generate_prime(60, 8192, 1 << 60).expect("prime");
        let m1 = generate_prime(60, 8192, m0).expect("prime");
        let m2 = generate_prime(50, 8192, 1 << 50).expect("prime");
        let q0 = generate_prime(40, 8192, 1 << 40).expect("prime");
        let moduli = [m2, m1, m0];
        let big_m: BigUint = moduli.iter().map(|&m| BigUint::from(m)).product();
        let (num, den) = (BigUint::from(786_433u64) * q0, BigUint::from(m2) * m2);
        let rs = Rescaler::new(&moduli, &num, &den, q0).expect("rescaler");
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let eighth = &big_m >> 3u32;
        for case in 0..2000 {
            // A random magnitude below M/8, either sign, plus the extremes.
            let mag = match case {
                0 => BigUint::ZERO,
                1 | 2 => eighth.clone(),
                _ => (BigUint::from(next()) << 128u32 | BigUint::from(next()) << 64u32 | BigUint::from(next())) % &eighth,
            };
            let negative = case % 2 == 0;
            let c = if negative { &big_m - &mag } else { mag.clone() } % &big_m;
            let residues: Vec<u64> = moduli.iter().map(|&m| (&c % m).to_u64().expect("u64")).collect();
            let rows: Vec<[u64; 1]> = residues.iter().map(|&r| [r]).collect();
            let rows: Vec<&[u64]> = rows.iter().map(|r| &r[..]).collect();
            let mut out = [0u64];
            rs.scale_poly(&rows, &mut out);
            let got = out[0];
            // round(±mag · num / den) mod q0, exactly.
            let t = (&mag * &num * 2u32 + &den) / (&den * 2u32);
            let t = (t % q0).to_u64().expect("u64");
            let want = if negative { (q0 - t) % q0 } else { t };
            let diff = (got + q0 - want) % q0;
            assert!(diff <= 1 || diff == q0 - 1, "case {case}: got {got}, want {want}");
        }
    }
}
