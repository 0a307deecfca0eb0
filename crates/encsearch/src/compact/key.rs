//! The client's key for compact answers (public evaluation material) and its server-side
//! expansion.

use std::sync::Arc;

use fhe::bfv::BfvParameters;
use fhe_math::rns::RnsContext;
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Context, Poly, Representation};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kernel::{ShoupRow, Simd};
use crate::keys::ClientKeys;

/// A relinearisation key for compact answers, made by the key holder and sent with a query:
/// for each prime `q_i` of Q (one RNS digit each), `b_i = −a_i·s + e_i + g_i·s²` in the NTT
/// domain of every prime of Q, `a_i` expanded from a 32-byte seed. It reveals nothing the
/// public parameters do not (RLWE samples), and it only serves queries: nothing stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactKey {
    pub(crate) seed: [u8; 32],
    /// `b` rows, `[digit][prime]`, N values each `< q_prime`.
    pub(crate) b: Vec<Vec<u64>>,
    /// The primes of Q (the rows' packing widths; not sent, the parameters give them).
    pub(crate) moduli: Vec<u64>,
}

impl std::fmt::Debug for CompactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactKey").field("rows", &self.b.len()).finish_non_exhaustive()
    }
}

/// The ciphertext modulus' context (level 0), which must have at least two primes.
pub(crate) fn q_context(bfv: &Arc<BfvParameters>) -> Result<&Arc<Context>> {
    let ctx = bfv.context_at_level(0)?;
    if ctx.moduli().len() < 2 {
        return Err(Error::params("compact answers need a ciphertext modulus of at least two primes"));
    }
    Ok(ctx)
}

/// The `a_i` of every digit, in the NTT domain, from the key's seed.
fn expand_a(ctx: &Arc<Context>, seed: [u8; 32]) -> Vec<Poly> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    (0..ctx.moduli().len())
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            Poly::random_from_seed(ctx, Representation::Ntt, s)
        })
        .collect()
}

impl CompactKey {
    /// A fresh key under `keys`' secret.
    pub(crate) fn generate<R: RngCore + CryptoRng>(keys: &ClientKeys, rng: &mut R) -> Result<Self> {
        let bfv = keys.bfv();
        let ctx = q_context(bfv)?;
        let coeffs = keys.secret_coefficients()?;
        let mut s = Zeroizing::new(Poly::try_convert_from(coeffs, ctx, false, Representation::PowerBasis)?);
        s.change_representation(Representation::Ntt);
        let s2 = Zeroizing::new(s.as_ref() * s.as_ref());
        let rns = RnsContext::new(ctx.moduli())?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut b = Vec::new();
        for (i, a) in expand_a(ctx, seed).iter().enumerate() {
            let g = rns.get_garner(i).ok_or_else(|| Error::params("CRT basis element"))?;
            let mut bi = Poly::small(ctx, Representation::Ntt, keys.public().params.variance, rng)?;
            // Products with the secret in wiped buffers: `a·s` and `a` would give `s`.
            let mut a_s = Zeroizing::new(a.clone());
            *a_s.as_mut() *= s.as_ref();
            bi -= a_s.as_ref();
            bi += Zeroizing::new(g * s2.as_ref()).as_ref();
            b.extend(bi.coefficients().outer_iter().map(|row| row.to_vec()));
        }
        Ok(Self { seed, b, moduli: ctx.moduli().to_vec() })
    }

    /// The server's form for the builds `simd` allows: `a` expanded from the seed, every row
    /// with its Shoup factors (rows on all cores: this is on the query's critical path).
    pub(crate) fn prepare(&self, bfv: &Arc<BfvParameters>, simd: Simd) -> Result<PreparedKey> {
        let ctx = q_context(bfv)?;
        let l = ctx.moduli().len();
        if self.b.len() != l * l || self.moduli != ctx.moduli() || self.b.iter().any(|r| r.len() != bfv.degree()) {
            return Err(Error::InvalidArgument { reason: "compact key of another parameter set".into() });
        }
        let ops = ctx.moduli_operators();
        let a = expand_a(ctx, self.seed);
        let rows = (0..l * l)
            .into_par_iter()
            .map(|r| {
                let (i, j) = (r / l, r % l);
                let q = &ops[j];
                let b = ShoupRow::new(q, self.b[r].clone(), simd);
                let a = ShoupRow::new(q, a[i].coefficients().row(j).to_vec(), simd);
                KeyRow { b, a }
            })
            .collect();
        Ok(PreparedKey { digits: l, rows })
    }
}

/// One (digit, prime) of a [`PreparedKey`]: `b` and `a`, ready for pointwise products.
#[derive(Debug, Clone)]
pub(crate) struct KeyRow {
    pub(crate) b: ShoupRow,
    pub(crate) a: ShoupRow,
}

/// A [`CompactKey`] as the server uses it, once per query.
#[derive(Debug, Clone)]
pub(crate) struct PreparedKey {
    digits: usize,
    rows: Vec<KeyRow>,
}

impl PreparedKey {
    /// The rows of digit `i` modulo prime `j`.
    pub(crate) fn row(&self, i: usize, j: usize) -> &KeyRow {
        &self.rows[i * self.digits + j]
    }
}
