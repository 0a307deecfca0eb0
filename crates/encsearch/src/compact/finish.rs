//! The server's last step for a compact answer: from the tensor sum in the multiplication
//! basis (coefficient form, one row per prime and part) to `(c0, c1)` over two small primes.

use std::sync::Arc;

use fhe_math::rq::Context;
use fhe_math::zq::Modulus;
use num_bigint::BigUint;

use super::{CompactKey, Gadget, PreparedKey, ScoreForm, compact_moduli};
use crate::error::Result;
use crate::kernel::{Digits, Ntt, Rescaler, ShoupRow, Simd, Switch};
use crate::params::SearchParams;

/// Per-context constants of compact answers: the down-scalings and the gadget prime's NTT.
#[derive(Debug, Clone)]
pub(crate) struct Finisher {
    /// `round(t·P·c2/Q²) mod P` from the multiplication basis: `c2` at the gadget's prime.
    c2_to: Rescaler,
    /// `round(t·p·c/Q²) mod p` from the multiplication basis, for `c0` (p_a) and `c1` (p_b).
    part_to: [Rescaler; 2],
    /// `round(p·r/P) mod p`, for the relinearisation's additions to `c0` and `c1`.
    relin_to: [Switch; 2],
    gadget: Gadget,
    split: Digits,
    /// The gadget prime's context (the key's `a` rows), modulus and NTT.
    ctx: Arc<Context>,
    prime: Modulus,
    ntt: Ntt,
    degree: usize,
    simd: Simd,
    moduli: [u64; 2],
}

/// Per-thread scratch of [`Finisher::finish`].
#[derive(Debug, Default)]
pub(crate) struct FinishScratch {
    /// `c2` modulo the gadget's prime.
    c2: Vec<u64>,
    /// The digits, one row of N after the other, transformed.
    digits: Vec<u64>,
    /// The relinearisation's sums for `c0` and `c1`.
    relin: [Vec<u64>; 2],
}

impl Finisher {
    /// Constants for the multiplication basis `ext` whose residue `i` arrives divided by
    /// `factors[i]` (as for the full answer's [`Rescaler`]).
    pub(crate) fn new(params: &SearchParams, ext: &[u64], factors: &[u64], simd: Simd) -> Result<Self> {
        let moduli = compact_moduli(params)?;
        let gadget = Gadget::for_params(params)?;
        let t = BigUint::from(params.plaintext);
        let big_q: BigUint = params.moduli.iter().map(|&q| BigUint::from(q)).product();
        let q2 = &big_q * &big_q;
        let from_ext = |p: u64| Rescaler::new(ext, factors, &(&t * p), &q2, p, simd);
        let relin = |p: u64| Switch::new(gadget.prime, p, simd);
        let prime = Modulus::new(gadget.prime)?;
        Ok(Self {
            c2_to: from_ext(gadget.prime)?,
            part_to: [from_ext(moduli[0])?, from_ext(moduli[1])?],
            relin_to: [relin(moduli[0])?, relin(moduli[1])?],
            gadget,
            split: gadget.splitter(simd),
            ctx: Context::new_arc(&[gadget.prime], params.degree)?,
            ntt: Ntt::new(&prime, params.degree, simd)?,
            prime,
            degree: params.degree,
            simd,
            moduli,
        })
    }

    /// The form of the answers this makes.
    pub(crate) fn form(&self) -> ScoreForm {
        ScoreForm::Compact { moduli: self.moduli }
    }

    /// `key` in the server's form (once per query).
    pub(crate) fn prepare(&self, key: &CompactKey) -> Result<PreparedKey> {
        key.prepare(self.gadget, &self.ctx, self.degree, self.simd)
    }

    /// The compact scores of one (probe, chunk), `[c0 mod p_a, c1 mod p_b]`: `scale(rescaler,
    /// part, out)` applies a down-scaling from the multiplication basis to part `part` (0, 1, 2)
    /// of the tensor sum.
    ///
    /// `c2` is rounded to the gadget's prime `P`, split into its digits, and relinearised there:
    /// `Σ_k NTT(d_k) ⊙ (b_k, a_k)` in one pass over the digits, two inverse transforms, then
    /// both sums switched to the small primes and added to `c0` and `c1` switched there.
    pub(crate) fn finish(
        &self,
        key: &PreparedKey,
        n: usize,
        scratch: &mut FinishScratch,
        scale: impl Fn(&Rescaler, usize, &mut [u64]),
    ) -> Vec<Vec<u64>> {
        let FinishScratch { c2, digits, relin } = scratch;
        c2.resize(n, 0);
        scale(&self.c2_to, 2, &mut c2[..n]);
        digits.resize(self.gadget.digits * n, 0);
        self.split.split(&c2[..n], &mut digits[..self.gadget.digits * n]);
        for d in digits.chunks_exact_mut(n) {
            self.ntt.forward(d);
        }
        let [r0, r1] = relin;
        for (r, rows) in [(&mut *r0, &key.b), (&mut *r1, &key.a)] {
            r.resize(n, 0);
            ShoupRow::dot(&self.prime, rows, digits, &mut r[..n]);
        }
        self.ntt.backward(&mut r0[..n]);
        self.ntt.backward(&mut r1[..n]);
        [(0, &*r0), (1, &*r1)]
            .into_iter()
            .map(|(part, r)| {
                let mut out = vec![0u64; n];
                scale(&self.part_to[part], part, &mut out);
                self.relin_to[part].add_into(&r[..n], &mut out);
                out
            })
            .collect()
    }
}
