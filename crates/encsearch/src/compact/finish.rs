//! The server's last step for a compact answer: from the tensor sum in the multiplication
//! basis (coefficient form, one row per prime and part) to `(c0, c1)` over two small primes.

use fhe_math::zq::Modulus;
use num_bigint::BigUint;

use super::{PreparedKey, ScoreForm, compact_moduli};
use crate::error::Result;
use crate::kernel::{Ntt, Rescaler, Simd, Switch2};
use crate::params::SearchParams;

/// Per-context constants of compact answers: the down-scalings and Q's NTTs.
#[derive(Debug, Clone)]
pub(crate) struct Finisher {
    /// `round(t·c2/Q) mod q_j` from the multiplication basis, one per prime of Q (the digits).
    c2_to: Vec<Rescaler>,
    /// `round(t·p·c/Q²) mod p` from the multiplication basis, for `c0` (p_a) and `c1` (p_b).
    part_to: [Rescaler; 2],
    /// `round(p·r/Q) mod p` from Q, for the relinearisation's additions to `c0` and `c1`.
    relin_to: RelinSwitch,
    q: Vec<Modulus>,
    ntt: Vec<Ntt>,
    moduli: [u64; 2],
    /// The two small primes as moduli.
    small: [Modulus; 2],
}

/// The switch of the relinearisation's additions from Q to the two small primes: Garner in
/// double precision for a two-prime Q on CPUs without IFMA (vectorised with AVX2; measured at
/// 1M × 16-D: compact answers +134 % → +76–95 % over full ones with `--simd avx2`), the general
/// down-scaling otherwise.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "one per server context, never moved in a hot path")]
enum RelinSwitch {
    Two([Switch2; 2]),
    General([Rescaler; 2]),
}

/// Per-thread scratch of [`Finisher::finish`].
#[derive(Debug, Default)]
pub(crate) struct FinishScratch {
    digits: Vec<Vec<u64>>,
    ntt: Vec<u64>,
    relin: Vec<Vec<u64>>,
    add: Vec<u64>,
}

impl Finisher {
    /// Constants for the multiplication basis `ext` whose residue `i` arrives divided by
    /// `factors[i]` (as for the full answer's [`Rescaler`]).
    pub(crate) fn new(params: &SearchParams, ext: &[u64], factors: &[u64], simd: Simd) -> Result<Self> {
        let moduli = compact_moduli(params)?;
        let t = BigUint::from(params.plaintext);
        let big_q: BigUint = params.moduli.iter().map(|&q| BigUint::from(q)).product();
        let q2 = &big_q * &big_q;
        // The digits' down-scalings must all take one build (see `finish`). Which build runs
        // depends on the target too (the vector builds need it below 2^48), so a Q with primes
        // on both sides of 2^48 gets the portable build for all of them.
        let small = params.moduli.iter().filter(|&&q| q < 1 << 48).count();
        let digit_simd = if small == 0 || small == params.moduli.len() { simd } else { Simd::portable() };
        let c2_to = params
            .moduli
            .iter()
            .map(|&q| Rescaler::new(ext, factors, &t, &big_q, q, digit_simd))
            .collect::<Result<Vec<_>>>()?;
        let part = |p: u64| Rescaler::new(ext, factors, &(&t * p), &q2, p, simd);
        let ones = vec![1; params.moduli.len()];
        let relin = |p: u64| Rescaler::new(&params.moduli, &ones, &BigUint::from(p), &big_q, p, simd);
        // Where the general down-scaling has its IFMA build, it is as fast; elsewhere Garner.
        let two = |p: u64| match params.moduli[..] {
            [q0, q1] if !simd.ifma() => Switch2::new(q0, q1, p, simd),
            _ => None,
        };
        let relin_to = match (two(moduli[0]), two(moduli[1])) {
            (Some(a), Some(b)) => RelinSwitch::Two([a, b]),
            _ => RelinSwitch::General([relin(moduli[0])?, relin(moduli[1])?]),
        };
        let q = params.moduli.iter().map(|&q| Modulus::new(q)).collect::<std::result::Result<Vec<_>, _>>()?;
        let ntt = q.iter().map(|m| Ntt::new(m, params.degree, simd)).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            c2_to,
            part_to: [part(moduli[0])?, part(moduli[1])?],
            relin_to,
            q,
            ntt,
            moduli,
            small: [Modulus::new(moduli[0])?, Modulus::new(moduli[1])?],
        })
    }

    /// The form of the answers this makes.
    pub(crate) fn form(&self) -> ScoreForm {
        ScoreForm::Compact { moduli: self.moduli }
    }

    /// The compact scores of one (probe, chunk), `[c0 mod p_a, c1 mod p_b]`: `scale(rescaler,
    /// part, out)` applies a down-scaling from the multiplication basis to part `part` (0, 1, 2)
    /// of the tensor sum.
    ///
    /// The digits of `c2` must be one integer in every prime of Q — were one rounded up and
    /// another down, their CRT combination would be off by a multiple of a whole CRT basis
    /// element and the chunk's scores garbage. Each digit is its own [`Rescaler`]; the rounding
    /// (the carry out of the fractions) depends only on the fractions, which are the same for
    /// every target, computed by the same build (forced in [`Finisher::new`]), so they agree.
    pub(crate) fn finish(
        &self,
        key: &PreparedKey,
        n: usize,
        scratch: &mut FinishScratch,
        scale: impl Fn(&Rescaler, usize, &mut [u64]),
    ) -> Vec<Vec<u64>> {
        let l = self.q.len();
        scratch.digits.resize_with(l, Vec::new);
        scratch.relin.resize_with(2 * l, Vec::new);
        for (d, r) in scratch.digits.iter_mut().zip(&self.c2_to) {
            d.resize(n, 0);
            scale(r, 2, d);
        }
        // Relinearisation, one prime of Q at a time: Σ_i NTT(digit_i mod q_j) ⊙ (b_ij, a_ij).
        scratch.ntt.resize(n, 0);
        for (j, (q, ntt)) in self.q.iter().zip(&self.ntt).enumerate() {
            let (r0, r1) = scratch.relin.split_at_mut(l);
            let (r0, r1) = (&mut r0[j], &mut r1[j]);
            r0.clear();
            r0.resize(n, 0);
            r1.clear();
            r1.resize(n, 0);
            for (i, digit) in scratch.digits.iter().enumerate() {
                // Digit i is below q_i: already reduced modulo a prime at least as large.
                if *self.q[i] <= **q {
                    scratch.ntt.copy_from_slice(&digit[..n]);
                } else {
                    for (x, &d) in scratch.ntt.iter_mut().zip(digit) {
                        *x = q.reduce(d);
                    }
                }
                ntt.forward(&mut scratch.ntt);
                let row = key.row(i, j);
                row.b.mul_acc(q, &scratch.ntt, r0);
                row.a.mul_acc(q, &scratch.ntt, r1);
            }
            ntt.backward(r0);
            ntt.backward(r1);
        }
        (0..2)
            .map(|part| {
                let p = &self.small[part];
                let mut out = vec![0u64; n];
                scale(&self.part_to[part], part, &mut out);
                let rows: Vec<&[u64]> = scratch.relin[part * l..(part + 1) * l].iter().map(|r| &r[..n]).collect();
                match &self.relin_to {
                    RelinSwitch::Two(s) => s[part].add_into(rows[0], rows[1], &mut out),
                    RelinSwitch::General(r) => {
                        scratch.add.resize(n, 0);
                        r[part].scale_poly(&rows, &mut scratch.add);
                        out.iter_mut().zip(&scratch.add).for_each(|(o, &a)| *o = p.add(*o, a));
                    }
                }
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::zq::primes::generate_prime;
    use num_bigint::{BigInt, Sign};
    use num_traits::{One, Signed, ToPrimitive, Zero};

    /// The digits of `c2` are residues of one integer, also where the rounding is a near tie and
    /// Q's primes straddle 2^48 (a 43-bit and a 60-bit prime at t ≈ 2^24, N = 4096), which the
    /// vector builds of the down-scaling take only below 2^48: `t·c/Q` within a few `1/Q` of
    /// `k + 1/2`, from a basis of 29-bit primes (the narrow form's, whose AVX2 build rounds in
    /// double precision).
    #[test]
    fn digits_of_one_integer_even_at_near_ties() {
        let n = 4096usize;
        let t = generate_prime(24, 2 * n as u64, 1 << 24).expect("plaintext prime");
        let params = SearchParams::for_degree(n, t).expect("params");
        let big_q: BigInt = params.moduli.iter().map(|&q| BigInt::from(q)).product();
        // A basis of 29-bit primes with M ≥ 8·Q (values up to Q/2 stay below M/8).
        let mut ext = Vec::new();
        let mut upper = 1u64 << 29;
        while ext.iter().map(|&m| (m as f64).log2()).sum::<f64>() < big_q.bits() as f64 + 4.0 {
            upper = generate_prime(29, 2 * n as u64, upper).expect("prime");
            ext.push(upper);
        }
        let ones = vec![1; ext.len()];
        let f = Finisher::new(&params, &ext, &ones, Simd::detect()).expect("finisher");
        let big_t = BigInt::from(t);
        let t_inv = big_t.modinv(&big_q).expect("t invertible mod Q");
        // c with t·c ≡ (Q ± 1)/2 + δ (mod Q), centred: t·c/Q = k + 1/2 + (δ ± 1/2)/Q.
        let cases: Vec<BigInt> = (-64i64..64)
            .flat_map(|d| {
                let target = (&big_q >> 1u32) + BigInt::from(d);
                let c = (target * &t_inv) % &big_q;
                let half = &big_q >> 1u32;
                let c = if c > half { c - &big_q } else { c };
                [c.clone(), -c]
            })
            .collect();
        let rows: Vec<Vec<u32>> = ext
            .iter()
            .map(|&m| {
                let m = BigInt::from(m);
                cases.iter().map(|c| (((c % &m) + &m) % &m).to_u32().expect("residue")).collect()
            })
            .collect();
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let digits: Vec<Vec<u64>> = f
            .c2_to
            .iter()
            .map(|r| {
                let mut out = vec![0u64; cases.len()];
                r.scale_poly_narrow(&refs, &mut out);
                out
            })
            .collect();
        for (k, c) in cases.iter().enumerate() {
            // The exact quotient's floor; the digits must be the residues of it or of it + 1,
            // the same one in every prime.
            let num = c * &big_t;
            let floor = {
                let (q, r) = (&num / &big_q, &num % &big_q);
                if r.sign() == Sign::Minus && !r.is_zero() { q - BigInt::one() } else { q }
            };
            let residues = |y: &BigInt| -> Vec<u64> {
                params
                    .moduli
                    .iter()
                    .map(|&q| {
                        let q = BigInt::from(q);
                        (((y % &q) + &q) % &q).to_u64().expect("residue")
                    })
                    .collect()
            };
            let got: Vec<u64> = digits.iter().map(|d| d[k]).collect();
            let (lo, hi) = (residues(&floor), residues(&(&floor + BigInt::one())));
            assert!(got == lo || got == hi, "case {k} (|c| = {}): digits {got:?} are not one integer", c.abs());
        }
    }
}
