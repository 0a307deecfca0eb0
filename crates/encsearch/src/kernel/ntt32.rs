//! The negacyclic NTT of one prime of the narrow basis (primes below 2^29, values in u32):
//! tfhe-ntt's 32-bit plan, which has an AVX2 build (8 lanes) and a portable one, chosen by
//! tfhe-ntt itself from the running CPU.
//!
//! The narrow hot form is made by this transform and read back by it, so its evaluation order
//! (bit-reversed) never has to match fhe-math's. The inverse is left unnormalised: its output is
//! `N` times the polynomial, a factor the down-scaling takes back for free
//! ([`Ntt32::output_factor`], folded into its constants like the IFMA kernel's).

use tfhe_ntt::prime32::Plan;

use crate::error::{Error, Result};

/// One prime's NTT of size N on u32 values.
#[derive(Debug, Clone)]
pub(crate) struct Ntt32 {
    plan: Plan,
}

impl Ntt32 {
    /// The transform of size `n` (a power of two, at least 32) modulo the prime `q < 2^30`.
    pub(crate) fn new(q: u64, n: usize) -> Result<Self> {
        let p = u32::try_from(q).ok().filter(|&p| p < 1 << 30);
        let plan = p
            .and_then(|p| Plan::try_new(n, p))
            .ok_or_else(|| Error::params(format!("{q} has no 32-bit NTT of size {n}")))?;
        Ok(Self { plan })
    }

    /// Forward transform in place (natural order in, bit-reversed evaluation order out).
    pub(crate) fn forward(&self, a: &mut [u32]) {
        self.plan.fwd(a);
    }

    /// Inverse transform in place, times N (see [`Ntt32::output_factor`]).
    pub(crate) fn backward(&self, a: &mut [u32]) {
        self.plan.inv(a);
    }

    /// The factor the inverse leaves on its output, as the down-scaling's convention wants it:
    /// values arrive divided by `N⁻¹ mod q`.
    pub(crate) fn output_factor(&self) -> u64 {
        let (q, n) = (self.plan.modulus() as u64, self.plan.ntt_size() as u64);
        // N⁻¹ = N^(q−2) mod q.
        let (mut base, mut exp, mut acc) = (n % q, q - 2, 1u64);
        while exp > 0 {
            if exp & 1 == 1 {
                acc = acc * base % q;
            }
            base = base * base % q;
            exp >>= 1;
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::zq::primes::generate_prime;

    /// Forward then inverse gives N times the input; pointwise products are negacyclic
    /// products (the property the kernel relies on).
    #[test]
    fn round_trip_and_negacyclic_product() {
        let n = 64;
        let q = generate_prime(29, 2 * n as u64, 1 << 29).expect("prime");
        let ntt = Ntt32::new(q, n).expect("plan");
        let mut x = 0x2545_f491u32;
        let mut rand = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % q as u32
        };
        let a: Vec<u32> = (0..n).map(|_| rand()).collect();
        let b: Vec<u32> = (0..n).map(|_| rand()).collect();
        let mut want = vec![0u64; n];
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                let p = x as u64 * y as u64 % q;
                let k = (i + j) % n;
                want[k] = if i + j < n { (want[k] + p) % q } else { (want[k] + q - p) % q };
            }
        }
        let (mut fa, mut fb) = (a.clone(), b.clone());
        ntt.forward(&mut fa);
        ntt.forward(&mut fb);
        let mut prod: Vec<u32> = fa.iter().zip(&fb).map(|(&x, &y)| (x as u64 * y as u64 % q) as u32).collect();
        ntt.backward(&mut prod);
        let f = ntt.output_factor();
        let got: Vec<u64> = prod.iter().map(|&v| v as u64 * f % q).collect();
        assert_eq!(got, want);
        ntt.backward(&mut fa);
        assert!(fa.iter().zip(&a).all(|(&y, &x)| y as u64 * f % q == x as u64), "inverse of forward");
    }
}
