//! Parameter presets for one ciphertext–ciphertext multiplication at 128-bit security.
//!
//! The ciphertext modulus `Q = q0 · q1 · …` is chosen so that
//! * `log2 Q` stays under the HomomorphicEncryption.org bound for the ring degree
//!   (classical 128-bit security, ternary/small secret);
//! * `q0`, the modulus the response is switched down to, is large enough that the
//!   rounding noise of the switch (dominated by `e2 · s²`) stays far below `q0 / 2t`;
//! * the plaintext modulus `t` is an NTT-friendly prime (`t ≡ 1 mod 2N`, so SIMD slots
//!   exist) and holds `d · s²` with its sign.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use fhe::bfv::{BfvParameters, BfvParametersBuilder};
use fhe_math::zq::primes::generate_prime;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernel::IFMA_MAX_BITS;

/// HomomorphicEncryption.org standard, classical 128-bit security: `(N, max log2 q)`.
pub const HE_STANDARD_128: [(usize, u32); 6] =
    [(1024, 27), (2048, 54), (4096, 109), (8192, 218), (16384, 438), (32768, 881)];

/// Error variance used for the secret and the encryption noise (σ ≈ 3.2, as the standard assumes).
pub const DEFAULT_VARIANCE: usize = 10;

/// The plaintext modulus of the original HERS code (prime, `≡ 1 mod 2N` up to N = 32768·8).
pub const DEFAULT_PLAINTEXT: u64 = 786_433;

/// Largest log2 q allowed at 128-bit security for ring degree `degree`, if tabulated.
pub fn max_log_q(degree: usize) -> Option<u32> {
    HE_STANDARD_128.iter().find(|(n, _)| *n == degree).map(|(_, b)| *b)
}

/// Bits the response modulus `q0` needs: `log2 t + 1 + log2(8σ) + 2`, where σ ≈ N·variance/√12 is
/// the standard deviation of the modulus-switching rounding term `e2·s²` (8σ of it stays below
/// `q0 / 2t` with a factor 2 to spare).
fn min_q0_bits(degree: usize, plaintext: u64, variance: usize) -> usize {
    let sigma = degree as f64 * variance as f64 / 12f64.sqrt();
    let t_bits = 64 - plaintext.leading_zeros() as usize;
    t_bits + 1 + (8.0 * sigma).log2().ceil() as usize + 2
}

/// Named parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// N = 4096 slots, t = 786433 (scale 156 at d = 16), log q = 77 (every prime below 2^48,
    /// so the IFMA kernel runs).
    N4096,
    /// N = 8192 slots, t ≈ 2^30 (large scales or dimensions), log q = 111.
    N8192,
}

impl Preset {
    /// All presets.
    pub const ALL: [Preset; 2] = [Preset::N4096, Preset::N8192];

    /// The preset's name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::N4096 => "n4096",
            Preset::N8192 => "n8192",
        }
    }

    /// Parses a preset name (`n4096`, `n8192`).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::params(format!("unknown preset {name:?} (n4096, n8192)")))
    }

    /// Builds the preset's parameters.
    pub fn params(self) -> Result<SearchParams> {
        match self {
            Preset::N4096 => SearchParams::for_degree(4096, DEFAULT_PLAINTEXT),
            Preset::N8192 => {
                let t = generate_prime(30, 2 * 8192, 1 << 30)
                    .ok_or_else(|| Error::params("no 30-bit NTT-friendly plaintext prime"))?;
                SearchParams::for_degree(8192, t)
            }
        }
    }
}

/// BFV parameters of an encrypted gallery (the public part of a key set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchParams {
    /// Ring degree N = number of SIMD slots = templates per chunk.
    pub degree: usize,
    /// Plaintext modulus t (prime, `≡ 1 mod 2N`).
    pub plaintext: u64,
    /// Ciphertext moduli; `moduli[0]` is the modulus the response is switched down to.
    pub moduli: Vec<u64>,
    /// Error variance of the centred binomial distribution (secret and noise).
    pub variance: usize,
}

impl SearchParams {
    /// Chooses the moduli for ring degree `degree` and plaintext modulus `plaintext`.
    ///
    /// `q0` gets `log2 t + 1 + log2(8σ) + 2` bits where σ ≈ N·variance/√12 is the standard
    /// deviation of the modulus-switching rounding term `e2·s²`. One more prime `q1` follows.
    /// Where `q0` is below 2^48, `q1` is as large as lets 16-D scoring extend `Q` by just two
    /// 48-bit primes (`log2 Q ≤ 95 − log2(16·N) − 2`, see [`crate::ServerContext::new`]), which
    /// keeps the IFMA kernel and 4 primes in the hot form: 37 bits at N = 4096, where the
    /// multiplication noise at the largest magnitudes still stays 2^17 below its bound (test
    /// `noise_margin_at_extremes`). Otherwise `q1` is a 60-bit prime.
    pub fn for_degree(degree: usize, plaintext: u64) -> Result<Self> {
        let variance = DEFAULT_VARIANCE;
        let t_bits = 64 - plaintext.leading_zeros() as usize;
        let q0_bits = min_q0_bits(degree, plaintext, variance);
        let two_n = 2 * degree as u64;
        if q0_bits > 60 {
            return Err(Error::params(format!("plaintext modulus {plaintext} too large for N={degree}")));
        }
        let q0 = generate_prime(q0_bits, two_n, 1 << q0_bits)
            .ok_or_else(|| Error::params(format!("no {q0_bits}-bit prime ≡ 1 mod {two_n}")))?;
        let log_n = degree.trailing_zeros() as usize;
        let fast_q1 = 95usize.saturating_sub(4 + log_n + 2 + q0_bits);
        // At least 16 bits above `t` for the multiplication noise (2^38 at N = 4096, d = 16).
        let q1_bits = if q0_bits < IFMA_MAX_BITS as usize && fast_q1 >= t_bits + 16 { fast_q1 } else { 60 };
        let q1 = generate_prime(q1_bits, two_n, 1 << q1_bits)
            .ok_or_else(|| Error::params(format!("no {q1_bits}-bit prime ≡ 1 mod {two_n}")))?;
        let p = Self { degree, plaintext, moduli: vec![q0, q1], variance };
        p.validate()?;
        Ok(p)
    }

    /// log2 of the ciphertext modulus Q.
    pub fn log_q(&self) -> f64 {
        self.moduli.iter().map(|&q| (q as f64).log2()).sum()
    }

    /// Number of bits of each ciphertext modulus.
    pub fn moduli_bits(&self) -> Vec<u32> {
        self.moduli.iter().map(|q| 64 - q.leading_zeros()).collect()
    }

    /// The modulus the response is switched down to.
    pub fn response_modulus(&self) -> u64 {
        self.moduli[0]
    }

    /// Largest |score| that decrypts exactly: `(t - 1) / 2`.
    pub fn max_abs_score(&self) -> u64 {
        (self.plaintext - 1) / 2
    }

    /// Default quantisation scale for dimension `dim`: the largest `s` with `dim · s² ≤ (t-1)/2`.
    pub fn default_scale(&self, dim: usize) -> Result<u32> {
        if dim == 0 {
            return Err(Error::InvalidArgument { reason: "dimension 0".into() });
        }
        let bound = self.max_abs_score() / dim as u64;
        let mut s = (bound as f64).sqrt() as u64;
        while s * s > bound {
            s -= 1;
        }
        while (s + 1) * (s + 1) <= bound {
            s += 1;
        }
        if s == 0 {
            return Err(Error::params(format!("t={} too small for d={dim}", self.plaintext)));
        }
        u32::try_from(s).map_err(|_| Error::params("scale overflows u32"))
    }

    /// Checks that `dim` templates quantised at `scale` cannot overflow the plaintext modulus.
    pub fn check_capacity(&self, dim: usize, scale: u32) -> Result<()> {
        let need = dim as u128 * (scale as u128) * (scale as u128);
        if need > self.max_abs_score() as u128 {
            return Err(Error::params(format!(
                "d·s² = {need} exceeds (t-1)/2 = {} (t = {})",
                self.max_abs_score(),
                self.plaintext
            )));
        }
        Ok(())
    }

    /// Validates security, NTT-friendliness and sizes (including a response modulus `q0` large
    /// enough for the switch down to it to keep scores exact).
    pub fn validate(&self) -> Result<()> {
        let bound = max_log_q(self.degree)
            .ok_or_else(|| Error::params(format!("degree {} not in the HE standard table", self.degree)))?;
        if self.log_q().ceil() as u32 > bound {
            return Err(Error::params(format!(
                "log2 q = {:.1} exceeds the 128-bit bound {bound} for N = {}",
                self.log_q(),
                self.degree
            )));
        }
        if self.plaintext < 3 || !(self.plaintext - 1).is_multiple_of(2 * self.degree as u64) {
            return Err(Error::params(format!("t = {} is not ≡ 1 mod 2N", self.plaintext)));
        }
        if self.moduli.is_empty() || self.moduli.iter().any(|&q| !(1 << 20..1 << 60).contains(&q)) {
            return Err(Error::params("ciphertext moduli must be 21..=60-bit primes"));
        }
        if !(1..=16).contains(&self.variance) {
            return Err(Error::params("variance must be in 1..=16"));
        }
        let need = min_q0_bits(self.degree, self.plaintext, self.variance);
        if (64 - self.moduli[0].leading_zeros() as usize) < need {
            return Err(Error::params(format!(
                "the response modulus q0 = moduli[0] needs at least {need} bits for t = {} at N = {} (the switch down to it would make scores inexact)",
                self.plaintext, self.degree
            )));
        }
        Ok(())
    }

    /// fhe's parameter object, built once per process and parameter set (its NTT and
    /// multiplication tables take milliseconds; keys, clients, servers and decoders share it).
    pub fn bfv(&self) -> Result<Arc<BfvParameters>> {
        static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, Arc<BfvParameters>>>> = OnceLock::new();
        self.validate()?;
        let key = self.canonical_bytes();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let p = BfvParametersBuilder::new()
            .set_degree(self.degree)
            .set_plaintext_modulus(self.plaintext)
            .set_moduli(&self.moduli)
            .set_variance(self.variance)
            .build_arc()?;
        cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, p.clone());
        Ok(p)
    }

    /// Canonical bytes (used in key ids).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(self.degree as u64).to_le_bytes());
        v.extend_from_slice(&self.plaintext.to_le_bytes());
        v.extend_from_slice(&(self.variance as u64).to_le_bytes());
        for q in &self.moduli {
            v.extend_from_slice(&q.to_le_bytes());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_respect_security_bound() {
        for preset in Preset::ALL {
            let p = preset.params().expect("preset builds");
            let bound = max_log_q(p.degree).expect("tabulated");
            assert!(p.log_q().ceil() as u32 <= bound, "{preset:?}: {} > {bound}", p.log_q());
            assert_eq!((p.plaintext - 1) % (2 * p.degree as u64), 0);
            p.bfv().expect("fhe accepts it");
            assert_eq!(Preset::from_name(preset.name()).ok(), Some(preset));
        }
    }

    #[test]
    fn default_scale_fits() {
        let p = Preset::N4096.params().expect("preset");
        let s = p.default_scale(16).expect("scale");
        assert_eq!(s, 156);
        p.check_capacity(16, s).expect("fits");
        assert!(p.check_capacity(16, s + 1).is_err());
        assert!(SearchParams { moduli: vec![1 << 59; 3], ..p.clone() }.validate().is_err());
    }

    /// The sum of `d` ciphertext products at the largest magnitudes keeps a wide noise margin
    /// for every preset (the exactness tests only see that it decrypts; this sees how far off
    /// the limit it is).
    #[test]
    fn noise_margin_at_extremes() {
        use rand::SeedableRng;
        for preset in Preset::ALL {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
            let params = preset.params().expect("preset");
            let dim = 16;
            let keys = crate::ClientKeys::generate(params, &mut rng).expect("keys");
            let client = crate::Client::new(keys, dim).expect("client");
            let s = client.quantizer().scale as i64;
            let n = client.chunk_size();
            let g: Vec<Vec<i64>> = (0..n).map(|i| vec![if i % 2 == 0 { s } else { -s }; dim]).collect();
            let chunks = client.encrypt_quantized(&g, &mut rng).expect("encrypt");
            let probe = client.encrypt_probe(&vec![s; dim], &mut rng).expect("probe");
            let sum = probe.cts.iter().zip(&chunks[0].cts).map(|(p, c)| p * c).reduce(|a, b| &a + &b).expect("dim > 0");
            let (noise, margin) = client.noise_margin_bits(&sum).expect("noise");
            println!(
                "{preset:?}: moduli {:?} bits, noise 2^{noise}, margin {margin:.1} bits",
                client.keys().public().params.moduli_bits()
            );
            assert!(margin >= 10.0, "{preset:?}: only {margin:.1} bits of noise margin");
        }
    }
}
