//! AVX-512 IFMA helpers shared by the NTT, the basis extension and the down-scaling:
//! arithmetic mod p < 2^50 on eight u64 lanes, values kept reduced in `[0, p)`, products by
//! Shoup's method with 52-bit factors ([`shoup52`]).

/// Shoup factor `⌊w·2^52 / p⌋` of a constant `w < p` for [`mul`].
pub(crate) fn shoup52(w: u64, p: u64) -> u64 {
    (((w as u128) << 52) / p as u128) as u64
}

/// Whether the AVX-512 IFMA builds run: the CPU has AVX-512F and IFMA, and the environment
/// does not say `HERS_SIMD=off` (which runs the portable builds everywhere, as on a CPU
/// without them — for A/B measurements and for testing those builds on any machine).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if std::env::var("HERS_SIMD").is_ok_and(|v| v == "off") {
            return false;
        }
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
        let zero = _mm512_setzero_si512();
        let q = _mm512_madd52hi_epu64(zero, x, ws);
        let r = _mm512_sub_epi64(_mm512_madd52lo_epu64(zero, x, w), _mm512_madd52lo_epu64(zero, q, p));
        let r = _mm512_and_si512(r, _mm512_set1_epi64((1 << 52) - 1));
        _mm512_min_epu64(r, _mm512_sub_epi64(r, p))
    }

    /// `a + b mod p` for `a, b < p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn add(a: __m512i, b: __m512i, p: __m512i) -> __m512i {
        let s = _mm512_add_epi64(a, b);
        _mm512_min_epu64(s, _mm512_sub_epi64(s, p))
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
