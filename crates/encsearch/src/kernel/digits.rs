//! Signed digits of values modulo a prime (the relinearisation gadget of compact answers,
//! `compact/gadget.rs`): `y = Σ_k d_k·2^(b·k) (mod p)` with `|d_k| ≤ 2^(b−1) + 1`, each digit
//! written modulo p — four values at a time with AVX2, one at a time otherwise, the same
//! integers either way.
//!
//! `y` is centred (`y − p` above `p/2`) and offset by `O = Σ_k 2^(b−1)·2^(b·k) ≥ p/2`, so
//! `z = y + O` is non-negative and below `2^61`; its unsigned base-`2^b` digits minus
//! `2^(b−1)` are the signed digits (the top one takes all that is left above `2^(b·(K−1))`).

use super::Simd;

/// Constants of one decomposition: `digits` digits of `bits` bits modulo `p`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digits {
    p: u64,
    bits: u32,
    digits: usize,
    offset: u64,
    avx2: bool,
}

impl Digits {
    /// The decomposition modulo `p` (below 2^60) in `digits` digits of `bits` bits
    /// (`bits·digits ≥ bits(p)`, `bits·digits ≤ 60`), with the builds `simd` allows.
    pub(crate) fn new(p: u64, bits: u32, digits: usize, simd: Simd) -> Self {
        let half = 1u64 << (bits - 1);
        let offset = (0..digits).map(|i| half << (bits as usize * i)).sum();
        Self { p, bits, digits, offset, avx2: simd.avx2() && super::cpu::avx2_detected() }
    }

    /// Every digit of every value of `y` (each below p), modulo p: digit `k` of `y[i]` at
    /// `out[k·n + i]`, `n = y.len()`.
    pub(crate) fn split(&self, y: &[u64], out: &mut [u64]) {
        let n = y.len();
        assert_eq!(out.len(), self.digits * n, "one row per digit");
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            done = n / 4 * 4;
            // SAFETY: `avx2` is set only where AVX2 was detected on the running CPU; every load
            // and store is a bounds-checked 4-word slice.
            #[allow(unsafe_code, reason = "AVX2 intrinsics after detecting the feature")]
            unsafe {
                self.split_avx2(&y[..done], n, out)
            };
        }
        let half = 1u64 << (self.bits - 1);
        let mask = (1u64 << self.bits) - 1;
        for (i, &v) in y.iter().enumerate().skip(done) {
            let centred = if v > self.p / 2 { v.wrapping_sub(self.p) } else { v };
            let z = centred.wrapping_add(self.offset);
            for k in 0..self.digits {
                let u = z >> (self.bits as usize * k);
                let d = (if k + 1 == self.digits { u } else { u & mask }).wrapping_sub(half);
                // A negative digit (as two's complement) plus p.
                out[k * n + i] = d.wrapping_add(if (d as i64) < 0 { self.p } else { 0 });
            }
        }
    }

    /// [`Digits::split`] of the first `y.len()` (a multiple of 4) values, four at a time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn split_avx2(&self, y: &[u64], n: usize, out: &mut [u64]) {
        use std::arch::x86_64::*;
        let p = _mm256_set1_epi64x(self.p as i64);
        let half_p = _mm256_set1_epi64x((self.p / 2) as i64);
        let offset = _mm256_set1_epi64x(self.offset as i64);
        let half = _mm256_set1_epi64x(1 << (self.bits - 1));
        let mask = _mm256_set1_epi64x((1 << self.bits) - 1);
        let zero = _mm256_setzero_si256();
        for i in (0..y.len()).step_by(4) {
            let s = &y[i..i + 4];
            // SAFETY: `s` is exactly 4 words; unaligned load.
            #[allow(unsafe_code, reason = "unaligned 256-bit load of a checked slice")]
            let v = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
            // Values below 2^60 compare correctly as signed.
            let above = _mm256_cmpgt_epi64(v, half_p);
            let z = _mm256_add_epi64(_mm256_sub_epi64(v, _mm256_and_si256(above, p)), offset);
            for k in 0..self.digits {
                let u = _mm256_srlv_epi64(z, _mm256_set1_epi64x(self.bits as i64 * k as i64));
                let u = if k + 1 == self.digits { u } else { _mm256_and_si256(u, mask) };
                let d = _mm256_sub_epi64(u, half);
                let d = _mm256_add_epi64(d, _mm256_and_si256(_mm256_cmpgt_epi64(zero, d), p));
                let o = &mut out[k * n + i..k * n + i + 4];
                // SAFETY: `o` is exactly 4 words; unaligned store.
                #[allow(unsafe_code, reason = "unaligned 256-bit store into a checked slice")]
                unsafe {
                    _mm256_storeu_si256(o.as_mut_ptr().cast(), d)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both builds give the same digits, which recombine to every value and stay within
    /// `2^(b−1) + 1`, at the extremes and around `p/2`.
    #[test]
    fn digits_recombine_on_every_build() {
        for (p, bits, digits) in
            [((1u64 << 48) - 59, 12u32, 4usize), ((1u64 << 59) - 55, 15, 4), ((1 << 48) - 59, 16, 3)]
        {
            let mut y: Vec<u64> = (0..4093u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % p).collect();
            y.extend([0, 1, p - 1, p / 2, p / 2 + 1, p / 2 - 1, 2, p - 2]);
            let n = y.len();
            let mut first: Option<Vec<u64>> = None;
            for simd in [Simd::detect(), Simd::portable()] {
                let mut out = vec![0; digits * n];
                Digits::new(p, bits, digits, simd).split(&y, &mut out);
                for (i, &v) in y.iter().enumerate() {
                    let mut sum = 0i128;
                    for k in 0..digits {
                        let d = out[k * n + i];
                        assert!(d < p);
                        let signed = if d > p / 2 { d as i128 - p as i128 } else { d as i128 };
                        assert!(signed.unsigned_abs() <= (1 << (bits - 1)) + 1, "digit {k} of {v}: {signed}");
                        sum += signed << (bits as usize * k);
                    }
                    assert_eq!(sum.rem_euclid(p as i128) as u64, v, "{}", simd.describe());
                }
                match &first {
                    None => first = Some(out),
                    Some(f) => assert_eq!(f, &out, "{} differs", simd.describe()),
                }
            }
        }
    }
}
