//! Parameter presets for one ciphertext–ciphertext multiplication at 128-bit security.
//!
//! The ciphertext modulus `Q = q0 · q1 · …` is chosen so that
//! * `log2 Q` stays under the HomomorphicEncryption.org bound for the ring degree
//!   (classical 128-bit security, ternary/small secret);
//! * `q0`, the modulus the response is switched down to, is large enough that a query of 64
//!   probes against 100M templates decrypts wrongly with probability at most 2^-40, by the
//!   noise bound of [`SearchParams::noise_budget`] (derived in `docs/security.md`, “Decryption
//!   failure”);
//! * the plaintext modulus `t` is an NTT-friendly prime (`t ≡ 1 mod 2N`, so SIMD slots
//!   exist) and holds `d · s²` with its sign.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use fhe::bfv::{BfvParameters, BfvParametersBuilder};
use fhe_math::zq::primes::generate_prime;
use serde::{Deserialize, Serialize};

use crate::compact::{Gadget, ScoreForm, compact_moduli};
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

/// Templates in the gallery the response modulus is sized for.
pub const SIZING_TEMPLATES: u64 = 100_000_000;
/// Probes per query the response modulus is sized for.
pub const SIZING_PROBES: u64 = 64;
/// Ciphertexts multiplied and summed per score the response modulus is sized for: templates
/// of up to 2048 rows in the dimension-wise layout (1536-D features with the squared-Euclidean
/// metric's two extra rows fit); a coefficient-layout score sums one product. The
/// multiplication's share of the noise grows with it, but stays below a few units of q0.
pub const SIZING_ROWS: usize = 2048;
/// The per-query decryption-failure probability the response modulus is sized for, as log2.
pub const MAX_FAILURE_LOG2: f64 = -40.0;
/// Factor on every noise variance in the failure bound: room for the central-limit heuristic
/// of the tail and for the spread of the key's norms around their means.
pub const NOISE_SAFETY: f64 = 2.0;
/// Bound on the second moment of one rounding of a server down-scaling or modulus switch: the
/// exact rounding error (uniform on ±1/2: 1/12) shifted by the truncation of the fixed-point
/// constants (in `[0, 1/2)` for the at most 8 moduli `kernel/rescale.rs` takes): `1/12 + 1/4`.
pub(crate) const ROUNDING_SECOND_MOMENT: f64 = 1.0 / 3.0;
/// The decryptor's double-precision quotient `t·x/q0` is within 2^-20 of the exact one
/// (`decrypt.rs`), which costs this much of the rounding interval `±1/2`.
const DECRYPT_SLACK: f64 = 1.0 / (1u64 << 20) as f64;

/// The decryption-noise budget of one coefficient of a score ciphertext, in units of the
/// response modulus q0: the coefficient decrypts exactly while its noise stays below `bound`
/// in magnitude. The noise is a fixed part, at most `fixed`, plus a random part of standard
/// deviation at most `sigma` (over the key and the encryption randomness, at the worst
/// plaintexts). See `docs/security.md`, “Decryption failure”.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseBudget {
    /// Largest noise that decrypts exactly: `(q0/t)·(1/2 − 2^-20)`.
    pub bound: f64,
    /// Bound on the fixed part of the noise.
    pub fixed: f64,
    /// Bound on the standard deviation of the random part (`√(σ_mul² + σ_round²)`).
    pub sigma: f64,
    /// The multiplication's share of `sigma`: the fresh noise of probe and gallery ciphertexts
    /// multiplied out, `d` products summed.
    pub sigma_multiplication: f64,
    /// The roundings' share of `sigma`: the switch down to q0 (full answers), or the
    /// relinearisation, the switches to the two small primes and the client's lift (compact).
    pub sigma_rounding: f64,
}

impl NoiseBudget {
    /// log2 of the bound on the probability that one coefficient decrypts wrongly:
    /// `2·exp(−(bound − fixed)² / (2·S·σ²))`, `S` = `NOISE_SAFETY` (the Gaussian tail: a
    /// theorem for sums of independent sub-Gaussian terms, the central-limit heuristic for the
    /// products with the key).
    pub fn failure_log2(&self) -> f64 {
        self.failure_log2_at(self.sigma)
    }

    /// [`NoiseBudget::failure_log2`] with the standard deviation `sigma` instead (a measured
    /// one, say).
    pub fn failure_log2_at(&self, sigma: f64) -> f64 {
        let room = self.bound - self.fixed;
        if room <= 0.0 {
            return 0.0;
        }
        if sigma <= 0.0 {
            return f64::NEG_INFINITY;
        }
        (1.0 - room * room / (2.0 * NOISE_SAFETY * sigma * sigma) / std::f64::consts::LN_2).min(0.0)
    }

    /// log2 of the union bound over `coefficients` decrypted coefficients: a wrong coefficient
    /// may change every slot (the slots are an NTT of the coefficients), so a query fails with
    /// probability at most `coefficients` times the per-coefficient bound.
    pub fn query_failure_log2(&self, coefficients: f64) -> f64 {
        (self.failure_log2() + coefficients.log2()).min(0.0)
    }
}

/// Bits the response modulus `q0` needs for ring degree `degree` and plaintext modulus
/// `plaintext`: the fewest for which the prime [`SearchParams::for_degree`] picks (with the
/// `q1` it then picks) keeps [`SearchParams::sizing_failure_log2`] at most
/// [`MAX_FAILURE_LOG2`]. The derivation is in `docs/security.md`, “Decryption failure”.
fn min_q0_bits(degree: usize, plaintext: u64, variance: usize) -> Result<usize> {
    let t_bits = 64 - plaintext.leading_zeros() as usize;
    for bits in (t_bits + 2).max(21)..=60 {
        let p = SearchParams { degree, plaintext, moduli: moduli_for(degree, plaintext, bits)?, variance };
        if p.sizing_failure_log2()? <= MAX_FAILURE_LOG2 {
            return Ok(bits);
        }
    }
    Err(Error::params(format!("plaintext modulus {plaintext} too large for N={degree}")))
}

/// The moduli `[q0, q1]` with a `q0_bits`-bit response modulus (see [`SearchParams::for_degree`]).
fn moduli_for(degree: usize, plaintext: u64, q0_bits: usize) -> Result<Vec<u64>> {
    let t_bits = 64 - plaintext.leading_zeros() as usize;
    let two_n = 2 * degree as u64;
    let q0 = generate_prime(q0_bits, two_n, 1 << q0_bits)
        .ok_or_else(|| Error::params(format!("no {q0_bits}-bit prime ≡ 1 mod {two_n}")))?;
    let log_n = degree.trailing_zeros() as usize;
    let fast_q1 = 95usize.saturating_sub(4 + log_n + 2 + q0_bits);
    // At least 16 bits above `t` for the multiplication noise.
    let q1_bits = if q0_bits < IFMA_MAX_BITS as usize && fast_q1 >= t_bits + 16 { fast_q1 } else { 60 };
    let q1 = generate_prime(q1_bits, two_n, 1 << q1_bits)
        .ok_or_else(|| Error::params(format!("no {q1_bits}-bit prime ≡ 1 mod {two_n}")))?;
    Ok(vec![q0, q1])
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

    /// The smallest preset whose default quantisation scale keeps at least 6 bits per value at
    /// dimension `dim` (N = 4096 up to 48-D, N = 8192 beyond).
    pub fn for_dim(dim: usize) -> Result<Self> {
        for p in Self::ALL {
            if p.params()?.default_scale(dim)? >= 64 {
                return Ok(p);
            }
        }
        Ok(Preset::N8192)
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
    /// `q0` gets the fewest bits that keep a query of 64 probes (`SIZING_PROBES`) against 100M
    /// templates (`SIZING_TEMPLATES`) of up to 2048 rows (`SIZING_ROWS`) below a 2^-40 chance of a
    /// wrong score, full or compact, by [`SearchParams::noise_budget`] (40 bits at N = 4096, 51
    /// at N = 8192: the switch's rounding `e2·s²` decides). One more prime `q1` follows. Where
    /// `q0` is below 2^48, `q1` is as large as lets 16-D scoring extend `Q` by just two 48-bit
    /// primes (`log2 Q ≤ 95 − log2(16·N) − 2`, see [`crate::ServerContext::new`]), which keeps
    /// the IFMA kernel and 4 primes in the hot form: 37 bits at N = 4096, where the
    /// multiplication's noise stays below one unit of q0. Otherwise `q1` is a 60-bit prime.
    pub fn for_degree(degree: usize, plaintext: u64) -> Result<Self> {
        let variance = DEFAULT_VARIANCE;
        let q0_bits = min_q0_bits(degree, plaintext, variance)?;
        let p = Self { degree, plaintext, moduli: moduli_for(degree, plaintext, q0_bits)?, variance };
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
        let failure = self.sizing_failure_log2()?;
        if failure > MAX_FAILURE_LOG2 {
            return Err(Error::params(format!(
                "the response modulus q0 = moduli[0] ({} bits) is too small for t = {} at N = {}: a query of {} \
                 probes against {} templates could decrypt wrongly with probability up to 2^{:.1} (at most 2^{} \
                 allowed, see docs/security.md, “Decryption failure”); make a new key set with the current \
                 presets (hers keygen) and enrol the gallery again under it",
                64 - self.moduli[0].leading_zeros(),
                self.plaintext,
                self.degree,
                SIZING_PROBES,
                SIZING_TEMPLATES,
                failure,
                MAX_FAILURE_LOG2
            )));
        }
        Ok(())
    }

    /// The decryption-noise budget of one coefficient of a score ciphertext that sums `rows`
    /// ciphertext products (the template's rows in the dimension-wise layout, 1 in the
    /// coefficient layout), answered in `form`, for any plaintexts. The derivation is in
    /// `docs/security.md`, “Decryption failure”.
    pub fn noise_budget(&self, rows: usize, form: ScoreForm) -> Result<NoiseBudget> {
        if self.moduli.is_empty() || self.plaintext < 2 {
            return Err(Error::params("no ciphertext or plaintext modulus"));
        }
        let n = self.degree as f64;
        let t = self.plaintext as f64;
        let var = self.variance as f64;
        let q0 = self.moduli[0] as f64;
        // Q / q0.
        let rest: f64 = self.moduli[1..].iter().map(|&q| q as f64).product();
        let big_q = q0 * rest;
        // Per product, at the level of Q: t·(w_p·ẽ_g + w_g·ẽ_p) with E[w²] ≤ (√(N·σ²/12) + 1/2)²
        // and ẽ = e − f, E[ẽ²] ≤ σ² + 1, plus (t/Q)·ẽ_p·ẽ_g with |ẽ| ≤ 2σ² + 1.
        let w2 = ((n * var / 12.0).sqrt() + 0.5).powi(2);
        let rows = rows as f64;
        let mul_var = rows * 2.0 * t * t * w2 * (var + 1.0) * n;
        let mul_fixed = rows * t / big_q * n * (2.0 * var + 1.0).powi(2);
        let sigma_multiplication = mul_var.sqrt() / rest;
        // E‖s‖² = N·σ², E‖s²‖² ≤ 2·N²·σ⁴.
        let s1 = n * var;
        let s2 = 2.0 * n * n * var * var;
        let (round_var, round_fixed) = match form {
            ScoreForm::Full => (ROUNDING_SECOND_MOMENT * (1.0 + s1 + s2), 0.0),
            ScoreForm::Compact { moduli: [p_a, p_b] } => {
                // At the level of the gadget's prime P: the relinearisation Σ_k d_k·e_k and
                // the rounding of c2 (times s²). Then the switch of c1 to p_b (two roundings,
                // times s) and the client's lift of it (at most 1, times s); the switch of c0
                // to p_a (two roundings) and its lift are fixed.
                let gadget = Gadget::for_params(self)?;
                let at_p = gadget.noise_variance(self.degree) + ROUNDING_SECOND_MOMENT * s2;
                let at_q0 = at_p * (q0 / gadget.prime as f64).powi(2);
                let c1 = (q0 / p_b as f64).powi(2) * 4.0 * ROUNDING_SECOND_MOMENT * s1;
                (at_q0 + c1 + s1, 2.0 * q0 / p_a as f64 + 1.0)
            }
        };
        let sigma_rounding = round_var.sqrt();
        Ok(NoiseBudget {
            bound: q0 / t * (0.5 - DECRYPT_SLACK),
            fixed: mul_fixed / rest + round_fixed,
            sigma: (sigma_multiplication.powi(2) + round_var).sqrt(),
            sigma_multiplication,
            sigma_rounding,
        })
    }

    /// Score coefficients one query decrypts: `probes` probes against `templates` templates in
    /// chunks of `per_chunk`, one response ciphertext of N coefficients per (probe, chunk).
    pub fn query_coefficients(&self, templates: u64, per_chunk: usize, probes: u64) -> f64 {
        templates.div_ceil(per_chunk.max(1) as u64) as f64 * probes as f64 * self.degree as f64
    }

    /// log2 of the bound on the probability that a query of 64 probes (`SIZING_PROBES`) against
    /// 100M templates (`SIZING_TEMPLATES`) of 2048 rows (`SIZING_ROWS`, dimension-wise layout)
    /// decrypts any score wrongly: the larger of full and compact answers (compact where the
    /// parameters allow them).
    pub fn sizing_failure_log2(&self) -> Result<f64> {
        let coefficients = self.query_coefficients(SIZING_TEMPLATES, self.degree, SIZING_PROBES);
        let full = self.noise_budget(SIZING_ROWS, ScoreForm::Full)?.query_failure_log2(coefficients);
        Ok(match compact_moduli(self) {
            Ok(moduli) => full
                .max(self.noise_budget(SIZING_ROWS, ScoreForm::Compact { moduli })?.query_failure_log2(coefficients)),
            Err(_) => full,
        })
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

    /// Both presets keep a query of 64 probes against 100M templates of up to 2048 rows below a
    /// 2^-40 chance of a wrong score, full and compact, with the fewest bits of q0 that do (one
    /// bit less fails and is refused), and so in particular 16-, 64- and 512-D templates
    /// dimension-wise and 512-D ones in the coefficient layout. Prints the rows of the table in
    /// `docs/security.md` (“Decryption failure”).
    #[test]
    fn presets_meet_the_failure_target() {
        for preset in Preset::ALL {
            let p = preset.params().expect("preset");
            let failure = p.sizing_failure_log2().expect("bound");
            assert!(failure <= MAX_FAILURE_LOG2, "{preset:?}: 2^{failure:.1}");
            let bits = p.moduli_bits()[0] as usize;
            assert_eq!(bits, min_q0_bits(p.degree, p.plaintext, p.variance).expect("bits"));
            let less =
                SearchParams { moduli: moduli_for(p.degree, p.plaintext, bits - 1).expect("moduli"), ..p.clone() };
            let less_failure = less.sizing_failure_log2().expect("bound");
            assert!(less_failure > MAX_FAILURE_LOG2, "{preset:?}: {} bits would do", bits - 1);
            let err = less.validate().expect_err("one bit less is refused");
            assert!(err.to_string().contains("hers keygen"), "{err}");
            println!("{preset:?}: moduli {:?} bits, {bits} - 1 bits: 2^{less_failure:.1} per query", p.moduli_bits());
            let compact = ScoreForm::Compact { moduli: compact_moduli(&p).expect("compact") };
            // (layout, rows, templates per chunk): dimension-wise d-D (d rows, N per chunk),
            // coefficient layout at 512-D (one product, ⌊N/512⌋ templates per chunk).
            let cases = [
                ("dimension-wise 16-D", 16, p.degree),
                ("dimension-wise 64-D", 64, p.degree),
                ("dimension-wise 512-D", 512, p.degree),
                ("coefficient 512-D", 1, p.degree / 512),
            ];
            for (layout, rows, per_chunk) in cases {
                let coefficients = p.query_coefficients(SIZING_TEMPLATES, per_chunk, SIZING_PROBES);
                for form in [ScoreForm::Full, compact] {
                    let b = p.noise_budget(rows, form).expect("budget");
                    let query = b.query_failure_log2(coefficients);
                    println!(
                        "  {layout}, {}: bound 2^{:.2}, fixed {:.0}, σ {:.0} (multiplication {:.2}, rounding {:.0}), \
                         (bound − fixed)/σ = {:.2}, log2 per coefficient {:.1}, {:.3e} coefficients, log2 per query {query:.1}",
                        if form == ScoreForm::Full { "full" } else { "compact" },
                        b.bound.log2(),
                        b.fixed,
                        b.sigma,
                        b.sigma_multiplication,
                        b.sigma_rounding,
                        (b.bound - b.fixed) / b.sigma,
                        b.failure_log2(),
                        coefficients,
                    );
                    assert!(query <= MAX_FAILURE_LOG2, "{preset:?} {layout}: 2^{query:.1}");
                }
            }
        }
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
