//! Exact basis extension of ciphertext polynomials from `Q` to `Q ∪ P` (the centred lift),
//! the step that brings a stored chunk or a probe to the hot form.
//!
//! For each coefficient with residues `r_i` mod the primes `q_i` of Q, Garner's mixed-radix
//! digits `v_i` give `x = v_0 + v_1·q_0 + v_2·q_0·q_1 + …` in `[0, Q)`; the centred lift is
//! `x` or `x − Q` (when `x > ⌊Q/2⌋`, compared digit by digit), and its residue mod each `p` of
//! P is `Σ v_i·(q_0⋯q_{i−1} mod p)` minus `Q mod p` if lifted down. Only P needs transforms:
//! the Q rows stay in NTT form as stored, so a polynomial costs |Q| inverse and |P| forward
//! NTTs. fhe-math's general scaler (which also handles non-unit factors) does the same lift
//! with multi-word arithmetic and transforms every row; this is several times cheaper, and a
//! test checks it against fhe-math's, row for row.

use fhe_math::zq::Modulus;

use super::Ntt;
use super::Simd;
use super::ifma::{self as simd, shoup52};
use crate::error::{Error, Result};

/// Primes below this many bits (all of Q and P) let the IFMA build of the digit and residue
/// loops run.
const FAST_BITS: u32 = 48;

/// Precomputed constants of the extension for one (Q, P, N).
#[derive(Debug, Clone)]
pub struct Extender {
    n: usize,
    q: Vec<Modulus>,
    p: Vec<Modulus>,
    q_ntt: Vec<Ntt>,
    p_ntt: Vec<Ntt>,
    /// `garner[i][j] = q_j⁻¹ mod q_i` (j < i), with Shoup factors.
    garner: Vec<Vec<(u64, u64)>>,
    /// `radix[p][i] = q_0⋯q_{i−1} mod p`, with Shoup factors.
    radix: Vec<Vec<(u64, u64)>>,
    /// `Q mod p`.
    q_mod_p: Vec<u64>,
    /// Mixed-radix digits of `⌊Q/2⌋`, most significant first.
    half: Vec<u64>,
    /// Whether the IFMA build runs (then `garner` and `radix` carry 52-bit Shoup factors).
    fast: bool,
    /// Whether the AVX2/FMA build of the residue loop runs (every prime of P below 2^30 and of
    /// Q below 2^52, so digits and residues are exact in doubles).
    narrow_avx2: bool,
}

impl Extender {
    /// Constants for the primes `q` of Q, `p` of P and ring degree `n`.
    pub fn new(q: &[u64], p: &[u64], n: usize, simd: Simd) -> Result<Self> {
        if q.is_empty() {
            return Err(Error::params("basis extension from an empty basis"));
        }
        let ops = |m: &[u64]| m.iter().map(|&x| Modulus::new(x).map_err(Error::from)).collect::<Result<Vec<_>>>();
        let ntts = |m: &[Modulus]| m.iter().map(|x| Ntt::new(x, n, simd)).collect::<Result<Vec<_>>>();
        let (qm, pm) = (ops(q)?, ops(p)?);
        let fast = simd.ifma() && q.iter().chain(p).all(|&x| x < 1 << FAST_BITS);
        let shoup = |m: &Modulus, w: u64| if fast { shoup52(w, **m) } else { m.shoup(w) };
        let inv = |m: &Modulus, x: u64| {
            m.inv(m.reduce(x)).ok_or_else(|| Error::params("basis primes are not coprime")).map(|i| (i, shoup(m, i)))
        };
        let garner = qm
            .iter()
            .enumerate()
            .map(|(i, qi)| q[..i].iter().map(|&qj| inv(qi, qj)).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        let radix = pm
            .iter()
            .map(|pj| {
                let mut acc = 1u64;
                q.iter()
                    .map(|&qi| {
                        let r = (acc, shoup(pj, acc));
                        acc = pj.mul(acc, pj.reduce(qi));
                        r
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let q_mod_p = pm.iter().map(|pj| q.iter().fold(1u64, |acc, &qi| pj.mul(acc, pj.reduce(qi)))).collect();
        // Digits of ⌊Q/2⌋: Q = Π q_i has digits (q_0, …) = (0, …, 0, 1) shifted; with all q_i
        // odd, ⌊Q/2⌋ has digit i equal to (q_i − 1)/2 — a standard mixed-radix identity:
        // Σ_i (q_i − 1)/2 · Π_{j<i} q_j = (Q − 1)/2.
        let half = q.iter().rev().map(|&qi| (qi - 1) / 2).collect();
        let narrow_avx2 = !fast
            && simd.avx2()
            && super::cpu::avx2_fma_detected()
            && p.iter().all(|&x| x < 1 << 30)
            && q.iter().all(|&x| x < 1 << 52);
        Ok(Self {
            n,
            q_ntt: ntts(&qm)?,
            p_ntt: ntts(&pm)?,
            q: qm,
            p: pm,
            garner,
            radix,
            q_mod_p,
            half,
            fast,
            narrow_avx2,
        })
    }

    /// Extends one polynomial given by its NTT-form rows mod Q (`rows[i]`, n values each) and
    /// writes all `|Q| + |P|` NTT-form rows, Q's primes first, through `write(row_index, values)`.
    /// `scratch` is reused between calls.
    pub fn extend(&self, rows: &[&[u64]], scratch: &mut Vec<u64>, mut write: impl FnMut(usize, &[u64])) -> Result<()> {
        self.check_rows(rows)?;
        for (i, r) in rows.iter().enumerate() {
            write(i, r);
        }
        let k = self.q.len();
        self.lift(rows, scratch, |pi, prow| {
            self.p_ntt[pi].forward(prow);
            write(k + pi, prow);
        })
    }

    /// The centred lift of one polynomial given by its NTT-form rows mod Q: writes its `|P|`
    /// rows mod P in the coefficient domain through `write(index in P, values)` (for a basis
    /// whose rows take another transform, the narrow one's).
    pub fn lift(
        &self,
        rows: &[&[u64]],
        scratch: &mut Vec<u64>,
        mut write: impl FnMut(usize, &mut [u64]),
    ) -> Result<()> {
        self.check_rows(rows)?;
        let (k, n) = (self.q.len(), self.n);
        // Coefficients mod Q, then the mixed-radix digits in place, then each P row.
        scratch.clear();
        scratch.resize((k + 1) * n, 0);
        let (digits, prow) = scratch.split_at_mut(k * n);
        for (i, r) in rows.iter().enumerate() {
            let d = &mut digits[i * n..(i + 1) * n];
            d.copy_from_slice(r);
            self.q_ntt[i].backward(d);
        }
        #[cfg(target_arch = "x86_64")]
        if self.fast {
            // SAFETY: `fast` is only set after detecting AVX-512F and IFMA.
            #[allow(unsafe_code, reason = "AVX-512 IFMA build after detecting the features")]
            unsafe {
                self.digits_ifma(digits)
            };
            for pi in 0..self.p.len() {
                // SAFETY: as above.
                #[allow(unsafe_code, reason = "AVX-512 IFMA build after detecting the features")]
                unsafe {
                    self.residues_ifma(pi, digits, prow)
                };
                write(pi, prow);
            }
            return Ok(());
        }
        for c in 0..n {
            for i in 1..k {
                let qi = &self.q[i];
                let mut t = digits[i * n + c];
                for (j, &(inv, inv_s)) in self.garner[i].iter().enumerate() {
                    t = qi.mul_shoup(qi.sub(t, qi.reduce(digits[j * n + c])), inv, inv_s);
                }
                digits[i * n + c] = t;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self.narrow_avx2 {
            for pi in 0..self.p.len() {
                // SAFETY: `narrow_avx2` is only set after detecting AVX2 and FMA.
                #[allow(unsafe_code, reason = "AVX2/FMA build after detecting the features")]
                unsafe {
                    self.residues_avx2(pi, digits, prow)
                };
                write(pi, prow);
            }
            return Ok(());
        }
        for (pi, pm) in self.p.iter().enumerate() {
            let q_mod = self.q_mod_p[pi];
            for (c, out) in prow.iter_mut().enumerate() {
                let mut acc = 0u64;
                // x > ⌊Q/2⌋ ⇔ its digits, most significant first, exceed those of ⌊Q/2⌋.
                let mut above = None;
                for i in (0..k).rev() {
                    let v = digits[i * n + c];
                    if above.is_none() && v != self.half[k - 1 - i] {
                        above = Some(v > self.half[k - 1 - i]);
                    }
                    let (r, r_s) = self.radix[pi][i];
                    acc = pm.add(acc, pm.mul_shoup(pm.reduce(v), r, r_s));
                }
                *out = if above == Some(true) { pm.sub(acc, q_mod) } else { acc };
            }
            write(pi, prow);
        }
        Ok(())
    }

    fn check_rows(&self, rows: &[&[u64]]) -> Result<()> {
        if rows.len() != self.q.len() || rows.iter().any(|r| r.len() != self.n) {
            return Err(Error::malformed("ciphertext", "polynomial of another basis or degree"));
        }
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
impl Extender {
    /// Garner's digits in place, eight coefficients at a time: `(t − d_j)·q_j⁻¹` as two Shoup
    /// products, which also reduces a digit `d_j ≥ q_i`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn digits_ifma(&self, digits: &mut [u64]) {
        use std::arch::x86_64::*;
        let n = self.n;
        for i in 1..self.q.len() {
            let qi = _mm512_set1_epi64(*self.q[i] as i64);
            let (lower, rest) = digits.split_at_mut(i * n);
            let row = &mut rest[..n];
            for c in (0..n).step_by(8) {
                let mut t = simd::load(row, c);
                for (j, &(inv, inv_s)) in self.garner[i].iter().enumerate() {
                    let (w, ws) = (_mm512_set1_epi64(inv as i64), _mm512_set1_epi64(inv_s as i64));
                    let d = simd::load(lower, j * n + c);
                    t = simd::sub(simd::mul(t, w, ws, qi), simd::mul(d, w, ws, qi), qi);
                }
                simd::store(row, c, t);
            }
        }
    }

    /// The residues mod P prime `pi < 2^30` of the centred lift, four coefficients at a time in
    /// double precision (digits below 2^52 are exact; each digit's product with its radix is
    /// reduced exactly, see [`super::avx2::mul_mod`]).
    #[target_feature(enable = "avx2,fma")]
    fn residues_avx2(&self, pi: usize, digits: &[u64], out: &mut [u64]) {
        use super::avx2::{load_u64, mul_mod, reduce, store_u64};
        use std::arch::x86_64::*;
        let (k, n) = (self.q.len(), self.n);
        let p = _mm256_set1_pd(*self.p[pi] as f64);
        let p_inv = _mm256_set1_pd(1.0 / *self.p[pi] as f64);
        let q_mod = _mm256_set1_pd(self.q_mod_p[pi] as f64);
        let ones = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
        for c in (0..n).step_by(4) {
            let mut acc = _mm256_setzero_pd();
            let (mut above, mut undecided) = (_mm256_setzero_pd(), ones);
            for i in (0..k).rev() {
                let v = load_u64(digits, i * n + c);
                let h = _mm256_set1_pd(self.half[k - 1 - i] as f64);
                above = _mm256_or_pd(above, _mm256_and_pd(undecided, _mm256_cmp_pd::<_CMP_GT_OQ>(v, h)));
                undecided = _mm256_and_pd(undecided, _mm256_cmp_pd::<_CMP_EQ_OQ>(v, h));
                acc = _mm256_add_pd(acc, mul_mod(v, _mm256_set1_pd(self.radix[pi][i].0 as f64), p, p_inv));
            }
            store_u64(out, c, reduce(_mm256_sub_pd(acc, _mm256_and_pd(above, q_mod)), p, p_inv));
        }
    }

    /// The residues mod P prime `pi` of the centred lift, eight coefficients at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn residues_ifma(&self, pi: usize, digits: &[u64], out: &mut [u64]) {
        use std::arch::x86_64::*;
        let (k, n) = (self.q.len(), self.n);
        let p = _mm512_set1_epi64(*self.p[pi] as i64);
        let q_mod = _mm512_set1_epi64(self.q_mod_p[pi] as i64);
        for c in (0..n).step_by(8) {
            let mut acc = _mm512_setzero_si512();
            let (mut above, mut undecided): (__mmask8, __mmask8) = (0, 0xFF);
            for i in (0..k).rev() {
                let v = simd::load(digits, i * n + c);
                let h = _mm512_set1_epi64(self.half[k - 1 - i] as i64);
                above |= undecided & _mm512_cmpgt_epu64_mask(v, h);
                undecided &= _mm512_cmpeq_epu64_mask(v, h);
                let (r, r_s) = self.radix[pi][i];
                acc = simd::add(acc, simd::mul(v, _mm512_set1_epi64(r as i64), _mm512_set1_epi64(r_s as i64), p), p);
            }
            simd::store(out, c, _mm512_mask_blend_epi64(above, acc, simd::sub(acc, q_mod, p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::rns::ScalingFactor;
    use fhe_math::rq::scaler::Scaler;
    use fhe_math::rq::{Context, Poly, Representation};
    use fhe_math::zq::primes::generate_prime;

    /// Equal to fhe-math's scaler with factor one (the centred lift), row for row, for the
    /// bases the presets use and a three-prime Q.
    #[test]
    fn matches_fhe_math_scaler() {
        let n = 1024;
        let two_n = 2 * n as u64;
        let prime = |bits: usize, below: u64| generate_prime(bits, two_n, below).expect("prime");
        let q0 = prime(40, 1 << 40);
        let cases = [
            (vec![q0, prime(37, 1 << 37)], vec![prime(48, 1 << 48), prime(48, prime(48, 1 << 48))]),
            (vec![prime(51, 1 << 51), prime(60, 1 << 60)], vec![prime(60, prime(60, 1 << 60)), prime(59, 1 << 59)]),
            (vec![q0, prime(30, 1 << 30), prime(35, 1 << 35)], vec![prime(48, 1 << 48)]),
            // The narrow basis: 29-bit P (the AVX2/FMA residue loop where IFMA is off).
            (vec![q0, prime(37, 1 << 37)], vec![prime(29, 1 << 29), prime(29, prime(29, 1 << 29))]),
        ];
        let mut rng = rand::rng();
        for (q, p) in cases {
            let q_ctx = Context::new_arc(&q, n).expect("ctx");
            let all: Vec<u64> = q.iter().chain(&p).copied().collect();
            let ext_ctx = Context::new_arc(&all, n).expect("ctx");
            let scaler = Scaler::new(&q_ctx, &ext_ctx, ScalingFactor::one()).expect("scaler");
            for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
                let ext = Extender::new(&q, &p, n, simd).expect("extender");
                assert_eq!(ext.fast, simd.ifma() && all.iter().all(|&x| x < 1 << FAST_BITS));
                let narrow = !ext.fast
                    && simd.avx2()
                    && super::super::cpu::avx2_fma_detected()
                    && p.iter().all(|&x| x < 1 << 30);
                assert_eq!(ext.narrow_avx2, narrow);
                for _ in 0..3 {
                    let poly = Poly::random(&q_ctx, Representation::Ntt, &mut rng);
                    let want = poly.scale(&scaler).expect("scale");
                    assert_eq!(*want.representation(), Representation::Ntt);
                    let coeffs = poly.coefficients();
                    let rows: Vec<&[u64]> = coeffs.outer_iter().map(|r| r.to_slice().expect("contiguous")).collect();
                    let mut got = vec![vec![0u64; n]; all.len()];
                    ext.extend(&rows, &mut Vec::new(), |i, r| got[i].copy_from_slice(r)).expect("extend");
                    for (i, row) in want.coefficients().outer_iter().enumerate() {
                        assert_eq!(row.to_vec(), got[i], "basis {q:?} ∪ {p:?}, row {i}, {}", simd.describe());
                    }
                }
            }
        }
    }
}
