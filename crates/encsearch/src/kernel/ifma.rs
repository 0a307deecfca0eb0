//! AVX-512 IFMA helpers shared by the NTT, the basis extension and the down-scaling:
//! arithmetic mod p < 2^50 on eight u64 lanes, products by Shoup's method with 52-bit factors
//! ([`shoup52`]): [`mul`] reduced to `[0, p)`, [`mul_lazy`] left in `[0, 2p)` for the NTT's lazy
//! butterflies.

/// Shoup factor `⌊w·2^52 / p⌋` of a constant `w < p` for [`mul`].
pub(crate) fn shoup52(w: u64, p: u64) -> u64 {
    (((w as u128) << 52) / p as u128) as u64
}

/// `−q⁻¹ mod 2^52` for odd q, the constant of a Montgomery step with R = 2^52 ([`montgomery`]);
/// Newton's iteration doubles the correct low bits each step.
pub(crate) fn neg_inv_52(q: u64) -> u64 {
    let mut inv = q; // correct to 3 bits for odd q
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(inv)));
    }
    inv.wrapping_neg() & ((1 << 52) - 1)
}

/// Whether the running CPU has AVX-512F and IFMA, detected once per process. Every `unsafe`
/// call of an IFMA build is guarded by this (or by a [`super::Simd`] that only
/// [`super::Simd::detect`] can make with IFMA on, which reads it).
pub(crate) fn detected() -> bool {
    static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `x·w mod p` in `[0, p)` for `x < 2^52`, `w < p < 2^50`, `ws` = Shoup factor of w.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn mul(x: __m512i, w: __m512i, ws: __m512i, p: __m512i) -> __m512i {
        reduce(mul_lazy(x, w, ws, p), p)
    }

    /// `x·w mod p` in `[0, 2p)` for `x < 2^52`, `w < p < 2^50`, `ws` = Shoup factor of w: [`mul`]
    /// without its last reduction, for lazy butterflies.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn mul_lazy(x: __m512i, w: __m512i, ws: __m512i, p: __m512i) -> __m512i {
        let zero = _mm512_setzero_si512();
        let q = _mm512_madd52hi_epu64(zero, x, ws);
        let r = _mm512_sub_epi64(_mm512_madd52lo_epu64(zero, x, w), _mm512_madd52lo_epu64(zero, q, p));
        _mm512_and_si512(r, _mm512_set1_epi64((1 << 52) - 1))
    }

    /// `x mod m` for `x < 2m` (the unsigned min picks `x − m` unless it wrapped).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn reduce(x: __m512i, m: __m512i) -> __m512i {
        _mm512_min_epu64(x, _mm512_sub_epi64(x, m))
    }

    /// One Montgomery step with R = 2^52: `(lo + hi·2^52)·2^-52 mod q` in `[0, 2q + hi')`, where
    /// `lo` is a lane sum of low 52-bit product halves (only its low 52 bits are reduced; its
    /// carries count with `hi`) and `q_neg_inv` = [`super::neg_inv_52`]`(q)`. Below `2q` when
    /// `lo + hi·2^52 < q·2^52`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn montgomery(lo: __m512i, hi: __m512i, q: __m512i, q_neg_inv: __m512i) -> __m512i {
        let m = _mm512_madd52lo_epu64(_mm512_setzero_si512(), lo, q_neg_inv);
        let carry = _mm512_srli_epi64::<52>(_mm512_madd52lo_epu64(lo, m, q));
        _mm512_madd52hi_epu64(_mm512_add_epi64(hi, carry), m, q)
    }

    /// `a + b mod p` for `a, b < p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn add(a: __m512i, b: __m512i, p: __m512i) -> __m512i {
        reduce(_mm512_add_epi64(a, b), p)
    }

    /// `a − b mod p` for `a, b < p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn sub(a: __m512i, b: __m512i, p: __m512i) -> __m512i {
        let d = _mm512_sub_epi64(a, b);
        _mm512_min_epu64(d, _mm512_add_epi64(d, p))
    }

    /// Unaligned load of 8 words at `a[i..i + 8]` (bounds checked by the slice index).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn load(a: &[u64], i: usize) -> __m512i {
        let s = &a[i..i + 8];
        // SAFETY: `s` is exactly 8 words.
        #[allow(unsafe_code, reason = "unaligned 512-bit load of an 8-word slice")]
        unsafe {
            _mm512_loadu_si512(s.as_ptr().cast())
        }
    }

    /// Unaligned store of 8 words at `a[i..i + 8]`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn store(a: &mut [u64], i: usize, v: __m512i) {
        let s = &mut a[i..i + 8];
        // SAFETY: `s` is exactly 8 words.
        #[allow(unsafe_code, reason = "unaligned 512-bit store into an 8-word slice")]
        unsafe {
            _mm512_storeu_si512(s.as_mut_ptr().cast(), v)
        }
    }
}
