//! The client's key for compact answers (public evaluation material) and its server-side
//! expansion.

use std::sync::Arc;

use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Context, Poly, Representation};
use fhe_math::zq::Modulus;
use num_bigint::BigUint;
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::Gadget;
use super::gadget::KEY_ERROR_VARIANCE;
use crate::error::{Error, Result};
use crate::kernel::{ShoupRow, Simd};
use crate::keys::ClientKeys;

/// A relinearisation key for compact answers, made by the key holder and sent with a query:
/// for each digit `k` of the relinearisation gadget, `b_k = −a_k·s + e_k + B^k·s²` modulo its
/// prime `P`, in the NTT domain, `a_k` expanded from a 32-byte seed. It reveals nothing the
/// public parameters do not (RLWE samples), and it only serves queries: nothing stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactKey {
    pub(crate) seed: [u8; 32],
    /// `b` rows, one per digit, N values each `< P`.
    pub(crate) b: Vec<Vec<u64>>,
    /// The gadget's prime `P` (the rows' packing width; not sent, the parameters give it).
    pub(crate) prime: u64,
}

impl std::fmt::Debug for CompactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactKey").field("digits", &self.b.len()).finish_non_exhaustive()
    }
}

/// The `a_k` of every digit, in the NTT domain modulo `P` (`ctx`), from the key's seed.
fn expand_a(ctx: &Arc<Context>, seed: [u8; 32], digits: usize) -> Vec<Poly> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    (0..digits)
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
        let params = &keys.public().params;
        let gadget = Gadget::for_params(params)?;
        let ctx = Context::new_arc(&[gadget.prime], params.degree)?;
        let coeffs = keys.secret_coefficients()?;
        let mut s = Zeroizing::new(Poly::try_convert_from(coeffs, &ctx, false, Representation::PowerBasis)?);
        s.change_representation(Representation::Ntt);
        let s2 = Zeroizing::new(s.as_ref() * s.as_ref());
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut b = Vec::with_capacity(gadget.digits);
        for (k, a) in expand_a(&ctx, seed, gadget.digits).iter().enumerate() {
            let mut bk = Poly::small(&ctx, Representation::Ntt, KEY_ERROR_VARIANCE, rng)?;
            // Products with the secret in wiped buffers: `a·s` and `a` would give `s`.
            let mut a_s = Zeroizing::new(a.clone());
            *a_s.as_mut() *= s.as_ref();
            bk -= a_s.as_ref();
            bk += Zeroizing::new(&BigUint::from(gadget.base_power(k)) * s2.as_ref()).as_ref();
            b.push(bk.coefficients().row(0).to_vec());
        }
        Ok(Self { seed, b, prime: gadget.prime })
    }

    /// The server's form for `gadget` (`ctx`: its prime at ring degree `n`) and the builds
    /// `simd` allows: `a` expanded from the seed, every row with its Shoup factors (rows on
    /// all cores: this is on the query's critical path).
    pub(crate) fn prepare(&self, gadget: Gadget, ctx: &Arc<Context>, n: usize, simd: Simd) -> Result<PreparedKey> {
        if self.prime != gadget.prime || self.b.len() != gadget.digits || self.b.iter().any(|r| r.len() != n) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "compact-answer key of another parameter set ({} digits, {} wanted)",
                    self.b.len(),
                    gadget.digits
                ),
            });
        }
        let q = Modulus::new(gadget.prime)?;
        let a = expand_a(ctx, self.seed, gadget.digits);
        let mut b: Vec<ShoupRow> = (0..2 * gadget.digits)
            .into_par_iter()
            .map(|r| match r < gadget.digits {
                true => ShoupRow::new(&q, self.b[r].clone(), simd),
                false => ShoupRow::new(&q, a[r - gadget.digits].coefficients().row(0).to_vec(), simd),
            })
            .collect();
        let a = b.split_off(gadget.digits);
        Ok(PreparedKey { b, a })
    }
}

/// A [`CompactKey`] as the server uses it, once per query: the `b` and `a` rows of every
/// digit, ready for pointwise products.
#[derive(Debug, Clone)]
pub(crate) struct PreparedKey {
    pub(crate) b: Vec<ShoupRow>,
    pub(crate) a: Vec<ShoupRow>,
}
