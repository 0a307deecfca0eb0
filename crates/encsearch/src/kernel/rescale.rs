//! The single down-scaling of a score ciphertext: from the multiplication basis (`Q ∪ P`, or
//! the narrow basis) straight to the response modulus `q0`, `y = round(c · t·q0 / Q²) mod q0`.
//!
//! fhe-math's general RNS scaler does this with 256-bit arithmetic per coefficient; here the
//! structure of our sums makes a cheaper exact-up-to-one method safe. Write
//! `c = Σ u_i·M_i − v·M` with `M` the basis' product, `M_i = M/m_i`, `u_i = r_i·(M_i⁻¹ mod m_i) mod m_i`.
//! Our sums satisfy `|c| ≤ M/8` (the extension primes are chosen for that, see
//! [`crate::ServerContext::new`]), so `Σ u_i/m_i` lies within 1/8 of the integer `v`, and a
//! double-precision sum finds `v` without error. Then
//! `c·f = Σ u_i·w_i − v·w` with `w_i = M_i·f` and `w = M·f` rational constants, each split
//! into an integer part (used mod q0) and a 64-bit fraction: the fractions' truncation costs
//! at most `k·2^60·2^-64 < 1/2` in total, so `y` is the exact rounding or off by one — one
//! unit of noise, far below the `q0 / 2t` decryption margin.
//!
//! Where every modulus is below 2^48 and the CPU has AVX-512 IFMA, eight coefficients go at
//! once through the same steps in 52-bit arithmetic: Shoup products for `u_i`, 52-bit
//! fractions (truncation at most `k·2^48·2^-52 = k/16 < 1/2` for `k ≤ 7` moduli), and the
//! integer part reduced mod q0 by a Montgomery step on constants stored times `2^52 mod q0`.
//!
//! For the narrow basis (every modulus below 2^30, u32 residues) and a CPU with AVX2 and FMA,
//! four coefficients go through the same steps in double precision (`scale_narrow_avx2`): each
//! product reduced exactly (`kernel/avx2.rs`), the integer parts exact below 2^53, the fractions
//! rounded to 53 bits (their error far below 1/2), so again exact or off by one.

use fhe_math::zq::Modulus;
use num_bigint::BigUint;
use num_traits::ToPrimitive;

use super::Simd;
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
    /// Constants of the IFMA build, where the primes allow it.
    ifma: Option<IfmaConstants>,
    /// Whether the IFMA build runs (the CPU has it, detected when this was built).
    run_ifma: bool,
    /// Constants of the AVX2 build for the narrow basis, where the primes allow it.
    narrow: Option<NarrowConstants>,
    /// Whether the AVX2 build runs (AVX2 and FMA detected when this was built).
    run_avx2: bool,
}

/// The constants of [`Rescaler`] as doubles, for the AVX2 build over the narrow basis (every
/// modulus below 2^30, q0 below 2^48). Every product is formed exactly as a pair
/// `h + l` (`h = fl(a·b)`, `l = fma(a, b, −h)`) and reduced by a rounded quotient, so the
/// integer parts stay exact; only the fractions are rounded (to 53 bits).
#[derive(Debug, Clone)]
struct NarrowConstants {
    /// Per modulus: `m_i`, `1/m_i`, `M_i⁻¹ mod m_i` (times its factor), `w_int`, `w_frac / 2^64`.
    rows: Vec<[f64; 5]>,
    /// `q0`, `1/q0`, the integer part of `w` mod q0 and its fraction.
    q0: [f64; 4],
}

/// The constants of [`Rescaler`] in the 52-bit forms the IFMA build uses.
#[derive(Debug, Clone)]
struct IfmaConstants {
    /// Per modulus: `m_i`, `M_i⁻¹ mod m_i`, its 52-bit Shoup factor, `w_int·2^52 mod q0`,
    /// the 52-bit fraction of `w_i`.
    rows: Vec<[u64; 5]>,
    /// `(q0 − w_int)·2^52 mod q0` (subtracts `v·w`), the 52-bit fraction of `w`.
    neg_big: u64,
    big_frac52: u64,
    /// `2^52 mod q0` (a Montgomery product with it reduces mod q0).
    r_mod_q0: u64,
    /// `−q0⁻¹ mod 2^52`.
    q0_neg_inv: u64,
}

/// Moduli below this many bits can take the IFMA build.
const IFMA_BITS: u32 = 48;
/// At most this many moduli keep the 52-bit fractions' truncation below 1/2.
const IFMA_MAX_MODULI: usize = 7;

/// `num / den` as (integer part mod q0, 64-bit fraction).
fn split(num: &BigUint, den: &BigUint, q0: u64) -> Result<(u64, u64)> {
    let scaled = (num << 64u32) / den;
    let frac = (&scaled & BigUint::from(u64::MAX)).to_u64().ok_or_else(|| Error::params("rescale fraction"))?;
    let int = ((scaled >> 64u32) % q0).to_u64().ok_or_else(|| Error::params("rescale integer"))?;
    Ok((int, frac))
}

impl Rescaler {
    /// Constants for the basis `moduli` (all below 2^60), the factor `num / den` and the
    /// output modulus `q0`. Residue `i` arrives divided by `factors[i]` (mod `m_i`; the IFMA
    /// kernel's Montgomery factor), which the constants multiply back.
    pub fn new(moduli: &[u64], factors: &[u64], num: &BigUint, den: &BigUint, q0: u64, simd: Simd) -> Result<Self> {
        if moduli.is_empty() || moduli.len() > 8 || factors.len() != moduli.len() {
            return Err(Error::params(format!(
                "rescaling supports 1..=8 moduli with a factor each, not {}",
                moduli.len()
            )));
        }
        let big_m: BigUint = moduli.iter().map(|&m| BigUint::from(m)).product();
        let q0m = Modulus::new(q0)?;
        let mut inv = Vec::with_capacity(moduli.len());
        let (mut w_int, mut w_frac) = (Vec::new(), Vec::new());
        let mut ops = Vec::with_capacity(moduli.len());
        for (&m, &f) in moduli.iter().zip(factors) {
            if m >= 1 << 60 {
                return Err(Error::params("rescale moduli must be below 2^60"));
            }
            let op = Modulus::new(m)?;
            let mi = &big_m / m;
            let r = (&mi % m).to_u64().ok_or_else(|| Error::params("rescale residue"))?;
            let i = op.inv(r).ok_or_else(|| Error::params("basis moduli are not coprime"))?;
            let i = op.mul(i, op.reduce(f));
            inv.push((i, op.shoup(i)));
            let (a, b) = split(&(&mi * num), den, q0)?;
            w_int.push(a);
            w_frac.push(b);
            ops.push(op);
        }
        let (big_int, big_frac) = split(&(&big_m * num), den, q0)?;
        let ifma =
            (moduli.len() <= IFMA_MAX_MODULI && moduli.iter().chain([&q0]).all(|&m| m < 1 << IFMA_BITS)).then(|| {
                let r = ((1u128 << 52) % q0 as u128) as u64;
                let mont = |x: u64| ((x as u128 * r as u128) % q0 as u128) as u64;
                let rows = moduli
                    .iter()
                    .zip(&inv)
                    .zip(w_int.iter().zip(&w_frac))
                    .map(|((&m, &(i, _)), (&wi, &wf))| {
                        [m, i, (((i as u128) << 52) / m as u128) as u64, mont(wi), wf >> 12]
                    })
                    .collect();
                IfmaConstants {
                    rows,
                    neg_big: mont((q0 - big_int) % q0),
                    big_frac52: big_frac >> 12,
                    r_mod_q0: r,
                    q0_neg_inv: super::ifma::neg_inv_52(q0),
                }
            });
        #[cfg(target_arch = "x86_64")]
        let run_ifma = simd.ifma() && std::is_x86_feature_detected!("avx512dq");
        #[cfg(not(target_arch = "x86_64"))]
        let run_ifma = simd.ifma();
        let narrow = (moduli.iter().all(|&m| m < 1 << 30) && q0 < 1 << IFMA_BITS).then(|| NarrowConstants {
            rows: moduli
                .iter()
                .zip(&inv)
                .zip(w_int.iter().zip(&w_frac))
                .map(|((&m, &(i, _)), (&wi, &wf))| {
                    [m as f64, 1.0 / m as f64, i as f64, wi as f64, wf as f64 / 2f64.powi(64)]
                })
                .collect(),
            q0: [q0 as f64, 1.0 / q0 as f64, big_int as f64, big_frac as f64 / 2f64.powi(64)],
        });
        #[cfg(target_arch = "x86_64")]
        let run_avx2 = simd.avx2() && super::cpu::avx2_fma_detected();
        #[cfg(not(target_arch = "x86_64"))]
        let run_avx2 = false;
        Ok(Self {
            ifma,
            run_ifma,
            narrow,
            run_avx2,
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
        assert_eq!(rows.len(), self.moduli.len(), "rows of another basis");
        assert!(rows.iter().all(|r| r.len() >= out.len()), "rows shorter than the output");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = &self.ifma
            && self.run_ifma
        {
            done = out.len() / 8 * 8;
            // SAFETY: `run_ifma` is set only from a `Simd` with IFMA (made by `Simd::detect`) and a
            // detected AVX-512DQ; the kernel reads and writes
            // `done` coefficients, within every row and `out` (asserted at the top).
            #[allow(unsafe_code, reason = "AVX-512 IFMA intrinsics after detecting the features")]
            unsafe {
                scale_ifma(c, *self.q0, rows, &mut out[..done])
            };
        }
        self.scale_scalar(|i, k| rows[i][k], out, done);
    }

    /// [`Rescaler::scale_poly`] for the narrow hot form's rows (u32 residues, every modulus
    /// below 2^30): four coefficients at a time in double precision where the CPU has AVX2 and
    /// FMA, the portable path otherwise.
    pub(crate) fn scale_poly_narrow(&self, rows: &[&[u32]], out: &mut [u64]) {
        assert_eq!(rows.len(), self.moduli.len(), "rows of another basis");
        assert!(rows.iter().all(|r| r.len() >= out.len()), "rows shorter than the output");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = &self.narrow
            && self.run_avx2
        {
            done = out.len() / 4 * 4;
            // SAFETY: `run_avx2` is set only from a `Simd` with AVX2 (made by `Simd::detect`)
            // and a detected FMA; every load and store is a bounds-checked slice.
            #[allow(unsafe_code, reason = "AVX2/FMA intrinsics after detecting the features")]
            unsafe {
                scale_narrow_avx2(c, rows, &mut out[..done])
            };
        }
        self.scale_scalar(|i, k| rows[i][k] as u64, out, done);
    }

    /// The portable path, from coefficient `from` on; `row(i, k)` is residue i of coefficient k.
    fn scale_scalar(&self, row: impl Fn(usize, usize) -> u64, out: &mut [u64], from: usize) {
        for (k, o) in out.iter_mut().enumerate().skip(from) {
            let (mut est, mut int, mut frac) = (0f64, 0u128, 0u128);
            for i in 0..self.moduli.len() {
                let (inv, inv_shoup) = self.inv[i];
                let u = self.moduli[i].mul_shoup(row(i, k), inv, inv_shoup);
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

/// The IFMA build of [`Rescaler::scale_poly`] over `out.len()` (a multiple of 8) coefficients.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
fn scale_ifma(c: &IfmaConstants, q0: u64, rows: &[&[u64]], out: &mut [u64]) {
    use super::ifma::{self as simd, reduce};
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_si512();
    let vq0 = _mm512_set1_epi64(q0 as i64);
    let vqi = _mm512_set1_epi64(c.q0_neg_inv as i64);
    let montgomery = |lo: __m512i, hi: __m512i| simd::montgomery(lo, hi, vq0, vqi);
    let consts: Vec<[__m512i; 5]> = c.rows.iter().map(|r| r.map(|x| _mm512_set1_epi64(x as i64))).collect();
    let recips: Vec<__m512d> = c.rows.iter().map(|r| _mm512_set1_pd(1.0 / r[0] as f64)).collect();
    let (neg_big, big_frac) = (_mm512_set1_epi64(c.neg_big as i64), _mm512_set1_epi64(c.big_frac52 as i64));
    let r_mod_q0 = _mm512_set1_epi64(c.r_mod_q0 as i64);
    // Round half up, plus a bias of 8 that keeps the fraction sum non-negative (removed at the end).
    let bias = _mm512_set1_epi64((1 << 51) + (8 << 52));
    let eight = _mm512_set1_epi64(8);
    for (b, dst) in out.chunks_exact_mut(8).enumerate() {
        let (mut int_lo, mut int_hi, mut frac_lo, mut frac_hi) = (zero, zero, zero, zero);
        let mut est = _mm512_setzero_pd();
        for ((row, k), recip) in rows.iter().zip(&consts).zip(&recips) {
            let [m, inv, inv_shoup, w_int, w_frac] = *k;
            // u_i = r_i · M_i⁻¹ mod m_i.
            let u = simd::mul(simd::load(row, 8 * b), inv, inv_shoup, m);
            est = _mm512_fmadd_pd(_mm512_cvtepu64_pd(u), *recip, est);
            int_lo = _mm512_madd52lo_epu64(int_lo, u, w_int);
            int_hi = _mm512_madd52hi_epu64(int_hi, u, w_int);
            frac_lo = _mm512_madd52lo_epu64(frac_lo, u, w_frac);
            frac_hi = _mm512_madd52hi_epu64(frac_hi, u, w_frac);
        }
        // v = round(Σ u_i / m_i): the multiple of M to subtract.
        let v = _mm512_cvttpd_epu64(_mm512_add_pd(est, _mm512_set1_pd(0.5)));
        int_lo = _mm512_madd52lo_epu64(int_lo, v, neg_big);
        int_hi = _mm512_madd52hi_epu64(int_hi, v, neg_big);
        let x = _mm512_sub_epi64(_mm512_add_epi64(frac_lo, bias), _mm512_mullo_epi64(v, big_frac));
        let carry = _mm512_add_epi64(frac_hi, _mm512_srli_epi64::<52>(x));
        // Below 2·q0 + 2^51 < 2^52: one Montgomery product with 2^52 mod q0 reduces it.
        let y = _mm512_add_epi64(montgomery(int_lo, int_hi), carry);
        let y =
            reduce(montgomery(_mm512_madd52lo_epu64(zero, y, r_mod_q0), _mm512_madd52hi_epu64(zero, y, r_mod_q0)), vq0);
        // Remove the bias of 8.
        simd::store(dst, 0, simd::sub(y, eight, vq0));
    }
}

/// The AVX2 build of [`Rescaler::scale_poly_narrow`] over `out.len()` (a multiple of 4)
/// coefficients, in double precision: every integer below stays below 2^53 and is exact.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scale_narrow_avx2(c: &NarrowConstants, rows: &[&[u32]], out: &mut [u64]) {
    use super::avx2::{mul_mod, reduce, store_u64};
    use std::arch::x86_64::*;
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const FLOOR: i32 = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
    let zero = _mm256_setzero_pd();
    let consts: Vec<[__m256d; 5]> = c.rows.iter().map(|r| r.map(|x| _mm256_set1_pd(x))).collect();
    let [q0, q0_inv, big_int, big_frac] = c.q0.map(|x| _mm256_set1_pd(x));
    let half = _mm256_set1_pd(0.5);
    for b in 0..out.len() / 4 {
        let (mut est, mut int, mut frac) = (zero, zero, zero);
        for (row, k) in rows.iter().zip(&consts) {
            let [m, m_inv, inv, w_int, w_frac] = *k;
            let r = &row[4 * b..4 * b + 4];
            // SAFETY: `r` is 4 u32 (bounds-checked slice); unaligned 128-bit load.
            #[allow(unsafe_code, reason = "unaligned 128-bit load of a checked slice")]
            let r = _mm256_cvtepi32_pd(unsafe { _mm_loadu_si128(r.as_ptr().cast()) });
            // u_i = r_i · M_i⁻¹ mod m_i, brought into [0, m_i).
            let u = mul_mod(r, inv, m, m_inv);
            let u = _mm256_add_pd(u, _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(u, zero), m));
            est = _mm256_fmadd_pd(u, m_inv, est);
            int = _mm256_add_pd(int, mul_mod(u, w_int, q0, q0_inv));
            frac = _mm256_fmadd_pd(u, w_frac, frac);
        }
        // v = round(Σ u_i / m_i): the multiple of M to subtract.
        let v = _mm256_round_pd::<NEAREST>(est);
        let carry = _mm256_round_pd::<FLOOR>(_mm256_add_pd(_mm256_fnmadd_pd(v, big_frac, frac), half));
        let y = _mm256_add_pd(_mm256_fnmadd_pd(v, big_int, int), carry);
        store_u64(out, 4 * b, reduce(y, q0, q0_inv));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks against exact big-integer arithmetic on centred values |c| ≤ M/8, for the basis
    /// `moduli` whose first `q_count` primes are Q; residues arrive divided by `factor(m)`.
    /// Where every modulus is below 2^30 the narrow (u32) entry point is checked too.
    fn check(moduli: &[u64], q_count: usize, q0: u64, factor: impl Fn(u64) -> u64) {
        let big_m: BigUint = moduli.iter().map(|&m| BigUint::from(m)).product();
        let big_q: BigUint = moduli[..q_count].iter().map(|&m| BigUint::from(m)).product();
        let (num, den) = (BigUint::from(786_433u64) * q0, &big_q * &big_q);
        let factors: Vec<u64> = moduli.iter().map(|&m| factor(m)).collect();
        let rs = Rescaler::new(moduli, &factors, &num, &den, q0, Simd::detect()).expect("rescaler");
        assert_eq!(rs.ifma.is_some(), moduli.iter().all(|&m| m < 1 << IFMA_BITS));
        let narrow = moduli.iter().all(|&m| m < 1 << 30);
        assert_eq!(rs.narrow.is_some(), narrow);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let eighth = &big_m >> 3u32;
        // A random magnitude below M/8, either sign, plus the extremes; 2003 coefficients so
        // that both the vector builds and the scalar tail run.
        let cases: Vec<(BigUint, bool)> = (0..2003)
            .map(|case| {
                let mag = match case {
                    0 => BigUint::ZERO,
                    1 | 2 => eighth.clone(),
                    _ => {
                        (BigUint::from(next()) << 128u32 | BigUint::from(next()) << 64u32 | BigUint::from(next()))
                            % &eighth
                    }
                };
                (mag, case % 2 == 0)
            })
            .collect();
        let rows: Vec<Vec<u64>> = moduli
            .iter()
            .zip(&factors)
            .map(|(&m, &f)| {
                let inv = Modulus::new(m).expect("modulus").inv(f % m).expect("invertible");
                cases
                    .iter()
                    .map(|(mag, negative)| {
                        let c = if *negative { &big_m - mag } else { mag.clone() } % &big_m;
                        let r = (&c % m).to_u64().expect("u64");
                        ((r as u128 * inv as u128) % m as u128) as u64
                    })
                    .collect()
            })
            .collect();
        let row_refs: Vec<&[u64]> = rows.iter().map(|r| &r[..]).collect();
        let mut outs = vec![vec![0u64; cases.len()]];
        rs.scale_poly(&row_refs, &mut outs[0]);
        if narrow {
            let rows32: Vec<Vec<u32>> = rows.iter().map(|r| r.iter().map(|&v| v as u32).collect()).collect();
            let refs32: Vec<&[u32]> = rows32.iter().map(|r| &r[..]).collect();
            outs.push(vec![0u64; cases.len()]);
            rs.scale_poly_narrow(&refs32, &mut outs[1]);
        }
        for out in outs {
            for (case, ((mag, negative), got)) in cases.iter().zip(out).enumerate() {
                // round(±mag · num / den) mod q0, exactly.
                let t = (mag * &num * 2u32 + &den) / (&den * 2u32);
                let t = (t % q0).to_u64().expect("u64");
                let want = if *negative { (q0 - t) % q0 } else { t };
                let diff = (got + q0 - want) % q0;
                assert!(diff <= 1 || diff == q0 - 1, "case {case}: got {got}, want {want}");
            }
        }
    }

    #[test]
    fn matches_exact_rounding_up_to_one() {
        use fhe_math::zq::primes::generate_prime;
        // 60-bit primes: the portable path.
        let m0 = generate_prime(60, 8192, 1 << 60).expect("prime");
        let m1 = generate_prime(60, 8192, m0).expect("prime");
        let m2 = generate_prime(50, 8192, 1 << 50).expect("prime");
        let q0 = generate_prime(40, 8192, 1 << 40).expect("prime");
        // Residues times 2^-52, as the IFMA kernel leaves them.
        let montgomery = |m: u64| ((1u128 << 52) % m as u128) as u64;
        check(&[m2, m1, m0], 1, q0, montgomery);
        // The N4096 preset's shape, every prime below 2^48: the IFMA path where the CPU has it.
        let q1 = generate_prime(37, 8192, 1 << 37).expect("prime");
        let p0 = generate_prime(48, 8192, 1 << 48).expect("prime");
        let p1 = generate_prime(48, 8192, p0).expect("prime");
        check(&[q0, q1, p0, p1], 2, q0, montgomery);
        // The narrow basis of the N4096 preset (six 29-bit primes, Q outside it), residues
        // times N as the unnormalised inverse NTT leaves them: the AVX2 path where the CPU has it.
        let mut narrow = vec![generate_prime(29, 8192, 1 << 29).expect("prime")];
        while narrow.len() < 6 {
            narrow.push(generate_prime(29, 8192, narrow[narrow.len() - 1]).expect("prime"));
        }
        let n_inv = |m: u64| Modulus::new(m).expect("modulus").inv(4096 % m).expect("invertible");
        // Q here is the first two primes (the real Q is outside the basis; only its size matters).
        check(&narrow, 2, q0, n_inv);
    }
}
