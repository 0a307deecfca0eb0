//! Pointwise products of NTT-domain rows by constant rows (the relinearisation of compact
//! answers: each digit of `c2` times a key row): `acc[k] = acc[k] + x[k]·w[k] mod p`, with `w`
//! precomputed for Shoup's method — eight coefficients at a time with AVX-512 IFMA for primes
//! below 2^50; four at a time in double precision with AVX2 and FMA for primes below 2^50 (the
//! exact product split of `kernel/avx2.rs`: products below 2^100); the portable 64-bit Shoup
//! product otherwise.

use fhe_math::zq::Modulus;

use super::Simd;
use super::ifma::shoup52;

/// Primes below this many bits can take the IFMA build.
const IFMA_BITS: u32 = 50;

/// Which build a [`ShoupRow`] runs, chosen once when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Ifma,
    Avx2,
    Portable,
}

/// A constant row `w` (each value below p) with the Shoup factors its build needs (52-bit for
/// IFMA, none for AVX2, 64-bit for the portable build): a server makes eight of these per
/// query, and each factor is a 128-bit division.
#[derive(Debug, Clone)]
pub(crate) struct ShoupRow {
    w: Vec<u64>,
    factors: Vec<u64>,
    build: Build,
}

impl ShoupRow {
    /// The row `w` modulo `q` (every value must be below q), for the builds `simd` allows.
    pub(crate) fn new(q: &Modulus, w: Vec<u64>, simd: Simd) -> Self {
        let fits = **q < 1 << IFMA_BITS;
        let build = if fits && simd.ifma() && super::ifma::detected() {
            Build::Ifma
        } else if fits && simd.avx2() && super::cpu::avx2_fma_detected() {
            Build::Avx2
        } else {
            Build::Portable
        };
        let factors = match build {
            Build::Ifma => w.iter().map(|&v| shoup52(v, **q)).collect(),
            Build::Avx2 => Vec::new(),
            Build::Portable => q.shoup_vec(&w),
        };
        Self { w, factors, build }
    }

    /// Overwrites the row with zeros (a row of the secret key, when its holder drops it).
    pub(crate) fn zeroize(&mut self) {
        use zeroize::Zeroize;
        self.w.zeroize();
        self.factors.zeroize();
    }

    /// `acc[k] = acc[k] + x[k]·w[k] mod q` for `x[k] < q`, `acc[k] < q`.
    pub(crate) fn mul_acc(&self, q: &Modulus, x: &[u64], acc: &mut [u64]) {
        assert!(x.len() == self.w.len() && acc.len() == self.w.len(), "rows of another length");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        match self.build {
            Build::Ifma => {
                done = x.len() / 8 * 8;
                // SAFETY: the IFMA build is chosen only where AVX-512F and IFMA were detected;
                // every load and store is a bounds-checked 8-word slice.
                #[allow(unsafe_code, reason = "AVX-512 IFMA intrinsics after detecting the features")]
                unsafe {
                    mul_acc_ifma(**q, &x[..done], &self.w, &self.factors, &mut acc[..done])
                };
            }
            Build::Avx2 => {
                done = x.len() / 4 * 4;
                // SAFETY: the AVX2 build is chosen only where AVX2 and FMA were detected; every
                // load and store is a bounds-checked 4-word slice.
                #[allow(unsafe_code, reason = "AVX2/FMA intrinsics after detecting the features")]
                unsafe {
                    mul_acc_avx2(**q, &x[..done], &self.w, &mut acc[..done])
                };
            }
            Build::Portable => {}
        }
        for k in done..x.len() {
            let prod = match self.build {
                Build::Portable => q.mul_shoup(x[k], self.w[k], self.factors[k]),
                _ => q.mul(x[k], self.w[k]),
            };
            acc[k] = q.add(acc[k], prod);
        }
    }

    /// `out[k] = Σ_j x_j[k]·w_j[k] mod q` over `rows` (of one build, at most 8), `x` holding
    /// one row of `out.len()` values below q per row of `rows`, one after the other: one pass
    /// over the output instead of one per row, the sum reduced once.
    pub(crate) fn dot(q: &Modulus, rows: &[ShoupRow], x: &[u64], out: &mut [u64]) {
        let n = out.len();
        assert!(!rows.is_empty() && rows.len() <= 8, "1 to 8 rows");
        assert!(x.len() == rows.len() * n && rows.iter().all(|r| r.w.len() == n), "rows of another length");
        let build = rows[0].build;
        assert!(rows.iter().all(|r| r.build == build), "rows of different builds");
        #[cfg(target_arch = "x86_64")]
        let p = **q as f64;
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        match build {
            Build::Ifma => {
                done = n / 8 * 8;
                // SAFETY: the IFMA build is chosen only where AVX-512F and IFMA were detected;
                // every load and store is a bounds-checked 8-word slice.
                #[allow(unsafe_code, reason = "AVX-512 IFMA intrinsics after detecting the features")]
                unsafe {
                    dot_ifma(**q, rows, x, n, &mut out[..done])
                };
            }
            // The sum of the centred products must stay exact (below 2^52).
            Build::Avx2 if rows.len() as f64 * (p / 2.0 + p * p / 2f64.powi(51) + 1.0) < 2f64.powi(52) => {
                done = n / 4 * 4;
                // SAFETY: the AVX2 build is chosen only where AVX2 and FMA were detected; every
                // load and store is a bounds-checked 4-word slice.
                #[allow(unsafe_code, reason = "AVX2/FMA intrinsics after detecting the features")]
                unsafe {
                    dot_avx2(**q, rows, x, n, &mut out[..done])
                };
            }
            _ => {}
        }
        for (k, o) in out.iter_mut().enumerate().skip(done) {
            *o = rows.iter().enumerate().fold(0, |acc, (j, r)| {
                let prod = match build {
                    Build::Portable => q.mul_shoup(x[j * n + k], r.w[k], r.factors[k]),
                    _ => q.mul(x[j * n + k], r.w[k]),
                };
                q.add(acc, prod)
            });
        }
    }
}

/// [`ShoupRow::dot`] eight lanes at a time: each product reduced into `[0, p)`, their sum
/// (below `8p ≤ 2^53`) brought into `[0, p)` by three conditional subtractions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn dot_ifma(p: u64, rows: &[ShoupRow], x: &[u64], n: usize, out: &mut [u64]) {
    use super::ifma::{load, mul, reduce, store};
    use std::arch::x86_64::{_mm512_add_epi64, _mm512_set1_epi64, _mm512_setzero_si512};
    let vp = _mm512_set1_epi64(p as i64);
    let (vp2, vp4) = (_mm512_set1_epi64(2 * p as i64), _mm512_set1_epi64(4 * p as i64));
    for i in (0..out.len()).step_by(8) {
        let mut acc = _mm512_setzero_si512();
        for (j, r) in rows.iter().enumerate() {
            acc = _mm512_add_epi64(acc, mul(load(x, j * n + i), load(&r.w, i), load(&r.factors, i), vp));
        }
        store(out, i, reduce(reduce(reduce(acc, vp4), vp2), vp));
    }
}

/// [`ShoupRow::dot`] four lanes at a time in doubles: each product reduced exactly to
/// `|r| < p/2 + p²·2^-51 + 1` by `mul_mod_small_quotient` (values below p: quotients below
/// p), their sum (below 2^52, checked by the caller) reduced once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(p: u64, rows: &[ShoupRow], x: &[u64], n: usize, out: &mut [u64]) {
    use super::avx2::{load_u64, mul_mod_small_quotient as mul_mod, reduce, store_u64};
    use std::arch::x86_64::{_mm256_add_pd, _mm256_set1_pd, _mm256_setzero_pd};
    let (vp, vinv) = (_mm256_set1_pd(p as f64), _mm256_set1_pd(1.0 / p as f64));
    for i in (0..out.len()).step_by(4) {
        let mut acc = _mm256_setzero_pd();
        for (j, r) in rows.iter().enumerate() {
            acc = _mm256_add_pd(acc, mul_mod(load_u64(x, j * n + i), load_u64(&r.w, i), vp, vinv));
        }
        store_u64(out, i, reduce(acc, vp, vinv));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_acc_ifma(p: u64, x: &[u64], w: &[u64], w52: &[u64], acc: &mut [u64]) {
    use super::ifma::{add, load, mul, store};
    use std::arch::x86_64::_mm512_set1_epi64;
    let vp = _mm512_set1_epi64(p as i64);
    for i in (0..x.len()).step_by(8) {
        let prod = mul(load(x, i), load(w, i), load(w52, i), vp);
        store(acc, i, add(load(acc, i), prod, vp));
    }
}

/// `acc + x·w mod p` four lanes at a time in doubles: every value below `p < 2^50` is exact,
/// the product below 2^100 (its quotient below p) is reduced exactly by
/// `mul_mod_small_quotient`, and the sum lands in `(−p, 2p)`, which `reduce` brings into
/// `[0, p)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn mul_acc_avx2(p: u64, x: &[u64], w: &[u64], acc: &mut [u64]) {
    use super::avx2::{load_u64, mul_mod_small_quotient as mul_mod, reduce, store_u64};
    use std::arch::x86_64::{_mm256_add_pd, _mm256_set1_pd};
    let (vp, vinv) = (_mm256_set1_pd(p as f64), _mm256_set1_pd(1.0 / p as f64));
    for i in (0..x.len()).step_by(4) {
        let prod = mul_mod(load_u64(x, i), load_u64(w, i), vp, vinv);
        store_u64(acc, i, reduce(_mm256_add_pd(load_u64(acc, i), prod), vp, vinv));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_builds_match_the_modular_product() {
        for p in [(1u64 << 40) - 87, (1u64 << 49) - 81, (1u64 << 60) - 93] {
            let q = Modulus::new(p).expect("modulus");
            let n = 37; // not a multiple of 8: the tail takes the portable path
            let x: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % p).chain([p - 1]).collect();
            let w: Vec<u64> =
                (0..n as u64).map(|i| (i.wrapping_mul(0x2545_f491_4f6c_dd1d) + 7) % p).chain([p - 1]).collect();
            let acc0: Vec<u64> = (0..=n as u64).map(|i| (i * 31 + p / 3) % p).collect();
            let want: Vec<u64> =
                (0..=n).map(|k| ((acc0[k] as u128 + x[k] as u128 * w[k] as u128) % p as u128) as u64).collect();
            for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
                let row = ShoupRow::new(&q, w.clone(), simd);
                let mut acc = acc0.clone();
                row.mul_acc(&q, &x, &mut acc);
                assert_eq!(acc, want, "p = {p}, {}", simd.describe());
            }
        }
    }

    /// The dot product of up to 8 rows matches the exact sum on every build, with every value
    /// at its largest (`p − 1`) in some coefficients.
    #[test]
    fn dot_matches_the_exact_sum() {
        for p in [(1u64 << 40) - 87, (1u64 << 48) - 59, (1u64 << 49) - 81, (1u64 << 60) - 93] {
            let q = Modulus::new(p).expect("modulus");
            let n = 37;
            let value = |j: u64, i: u64, salt: u64| {
                if i.is_multiple_of(5) { p - 1 } else { (i * 131 + j).wrapping_mul(salt) % p }
            };
            for rows in [1usize, 4, 8] {
                let x: Vec<u64> = (0..rows as u64)
                    .flat_map(|j| (0..n as u64).map(move |i| value(j, i, 0x9e37_79b9_7f4a_7c15)))
                    .collect();
                let w: Vec<Vec<u64>> = (0..rows as u64)
                    .map(|j| (0..n as u64).map(|i| value(j, i, 0x2545_f491_4f6c_dd1d)).collect())
                    .collect();
                let want: Vec<u64> = (0..n)
                    .map(|k| {
                        let sum: u128 = (0..rows).map(|j| x[j * n + k] as u128 * w[j][k] as u128 % p as u128).sum();
                        (sum % p as u128) as u64
                    })
                    .collect();
                for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
                    let r: Vec<ShoupRow> = w.iter().map(|w| ShoupRow::new(&q, w.clone(), simd)).collect();
                    let mut out = vec![0; n];
                    ShoupRow::dot(&q, &r, &x, &mut out);
                    assert_eq!(out, want, "p = {p}, {rows} rows, {}", simd.describe());
                }
            }
        }
    }
}
