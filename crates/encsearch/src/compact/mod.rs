//! Compact answers: a score ciphertext relinearised once per (probe, chunk) and sent as two
//! parts over two small primes, 7.6 B per slot instead of the full answer's 15 (N = 4096).
//!
//! The full answer is the degree-2 sum `(c0, c1, c2)` switched down to the response modulus
//! q0 (3 × 40 bits at N = 4096): the client decrypts with `s²`, and `c2`'s rounding, scaled by
//! `s²`, is what makes q0 that large. A compact answer instead
//! 1. rounds the tensor sum's `c2` to the prime `P` of the relinearisation's [`Gadget`]
//!    (`t·P/Q²` scaling; 48 bits at N = 4096, 2^8 above q0) and relinearises it there with the
//!    client's [`CompactKey`]: `c2 = Σ_k d_k·B^k` in `K` signed digits (`|d_k| ≤ B/2 + 1`), the
//!    key holds `b_k = −a_k·s + e_k + B^k·s²`, so `Σ_k d_k·(b_k, a_k)` decrypts like `c2·s²`
//!    up to `Σ_k d_k·e_k`;
//! 2. switches `c0` and `c1` to two small primes `p_a < p_b` (one rounding each, straight from
//!    the multiplication basis), and the relinearised additions likewise from `P` (their sum
//!    is then off by at most one more unit).
//!
//! Noise, as fractions of the plaintext step `1/t` that decryption may lose (it needs the sum
//! below `1/2t`): the relinearisation adds `Σ_k d_k·e_k`, of variance at most
//! `K·N·(B/2 + 1)²·σ_e²` — at N = 4096 (`K = 3`, `B = 2^16`, `σ_e² = 1`) a standard deviation
//! of at most `2^21.8` in units of `P`, about 13,600 in units of q0: 0.4 of the full answer's
//! rounding noise (33,444), which [`Gadget::new`] keeps it below. `c2`'s rounding to `P` costs `2^-8` of
//! the full answer's; rounding `c0` to `p_a` costs `≤ 2/p_a`; rounding `c1` to `p_b` costs
//! `≤ 2·|e·s|`, `e` uniform in `±1/2`, `|e·s| ≲ 7.5·√(N/12)·σ_s ≈ 2^8.8`. With `p_a ≈ 2^(b+6)` and
//! `p_b ≈ 2^(b+15)` (`b` = bits of t) each rounding term stays near `2^-5/t` and their sum
//! about 6× below the `1/2t` decryption bound: more margin than the full answer keeps (measured
//! with the secret key at the magnitude extremes on every kernel build, `tests/core.rs`; the
//! bound is [`crate::SearchParams::noise_budget`]). The client lifts both parts to q0 and
//! decrypts as usual ([`crate::Client::decrypt_chunk`]).
//!
//! What it costs: the client sends the key once per query (`K` rows of N words modulo `P`,
//! ≈ 74 KB at N = 4096, beside 632 KB per probe), and the server spends, per (probe, chunk),
//! beyond the three down-scalings a full answer has too (`c2`'s to `P` instead of q0): the
//! split into digits, `K` forward and two inverse NTTs modulo `P`, the key products and the two
//! switches from `P`.

mod finish;
mod gadget;
mod key;

pub(crate) use finish::{FinishScratch, Finisher};
pub(crate) use gadget::{Gadget, MAX_DIGITS};
pub use key::CompactKey;
pub(crate) use key::PreparedKey;

use fhe_math::zq::primes::generate_prime;

use crate::error::{Error, Result};
use crate::params::SearchParams;

/// How a chunk's scores travel back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreForm {
    /// The degree-2 ciphertext `(c0, c1, c2)` modulo the response modulus q0.
    Full,
    /// The relinearised ciphertext `(c0, c1)`, `c0` modulo `moduli[0]`, `c1` modulo `moduli[1]`.
    Compact {
        /// The two small primes (see [`compact_moduli`]).
        moduli: [u64; 2],
    },
}

impl ScoreForm {
    /// The modulus of each part (`q0` is the response modulus).
    pub fn part_moduli(self, q0: u64) -> Vec<u64> {
        match self {
            ScoreForm::Full => vec![q0; 3],
            ScoreForm::Compact { moduli } => moduli.to_vec(),
        }
    }

    /// Bits of each part's bit-packed coefficients.
    pub fn part_bits(self, q0: u64) -> Vec<u32> {
        self.part_moduli(q0).into_iter().map(|m| 64 - m.leading_zeros()).collect()
    }

    /// Bytes of encrypted score per slot on the wire.
    pub fn bytes_per_slot(self, q0: u64) -> f64 {
        self.part_bits(q0).iter().map(|&b| f64::from(b)).sum::<f64>() / 8.0
    }
}

/// The two primes of compact answers for these parameters: the largest primes ≡ 1 mod 2N below
/// `2^(b+6)` and `2^(b+15)`, `b` the bits of the plaintext modulus (see the module's noise
/// budget). Both sides derive them; the answer names them and the client checks.
pub fn compact_moduli(params: &SearchParams) -> Result<[u64; 2]> {
    let b = 64 - params.plaintext.leading_zeros() as usize;
    let two_n = 2 * params.degree as u64;
    let prime = |bits: usize| {
        generate_prime(bits, two_n, 1 << bits)
            .ok_or_else(|| Error::params(format!("no {bits}-bit prime ≡ 1 mod {two_n} for compact answers")))
    };
    let moduli = [prime(b + 6)?, prime(b + 15)?];
    if moduli[1] >= params.response_modulus() {
        return Err(Error::params("compact answers need primes below the response modulus"));
    }
    Ok(moduli)
}
