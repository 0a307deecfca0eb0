//! AVX2/FMA helpers shared by the narrow path's down-scaling and basis extension: integers
//! below 2^53 held exactly in doubles, four per vector, and products reduced exactly.

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 2^52 as a double: adding it puts an integer in `[0, 2^52)` into the low mantissa bits.
    const MAGIC: f64 = 4_503_599_627_370_496.0;
    /// 1.5·2^52: adding it to a value below 2^51 in magnitude rounds it to an integer.
    const ROUND_SHIFT: f64 = 6_755_399_441_055_744.0;

    /// `a·w mod m`, an integer `r ≡ a·w` with `|r| < m/2 + |a·w|·2^-51 + 1` (the quotient's two
    /// roundings leave it off by at most `3·2^-53·|a·w|/m`), for integers of either sign with
    /// `|a·w| ≤ 2^100` and `m < 2^52` (exact while that bound stays below 2^52): the exact
    /// product `h + l` (`h = fl(a·w)`, `l = fma(a, w, −h)`) minus the rounded quotient times m,
    /// which fma computes exactly because the difference is small.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn mul_mod(a: __m256d, w: __m256d, m: __m256d, m_inv: __m256d) -> __m256d {
        let h = _mm256_mul_pd(a, w);
        let l = _mm256_fmsub_pd(a, w, h);
        let quot = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(h, m_inv));
        _mm256_add_pd(_mm256_fnmadd_pd(quot, m, h), l)
    }

    /// [`mul_mod`] where the quotient is small, `|a·w/m| < 2^50`, with the same bound on the
    /// result: the quotient `fl(a·w)·m_inv` is rounded to an integer by one fused
    /// multiply-add of `1.5·2^52` (which leaves the integer part in the low mantissa bits) and
    /// one subtraction, instead of a product and a rounding instruction.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn mul_mod_small_quotient(a: __m256d, w: __m256d, m: __m256d, m_inv: __m256d) -> __m256d {
        let h = _mm256_mul_pd(a, w);
        let l = _mm256_fmsub_pd(a, w, h);
        let shift = _mm256_set1_pd(ROUND_SHIFT);
        let quot = _mm256_sub_pd(_mm256_fmadd_pd(h, m_inv, shift), shift);
        _mm256_add_pd(_mm256_fnmadd_pd(quot, m, h), l)
    }

    /// `x − m·round(x/m)` for an integer `|x| < 2^50·m` (the quotient rounded as in
    /// [`mul_mod_small_quotient`]): `x` brought to `|·| ≤ m/2 + 1`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn centre(x: __m256d, m: __m256d, m_inv: __m256d) -> __m256d {
        let shift = _mm256_set1_pd(ROUND_SHIFT);
        let quot = _mm256_sub_pd(_mm256_fmadd_pd(x, m_inv, shift), shift);
        _mm256_fnmadd_pd(quot, m, x)
    }

    /// `x mod m` in `[0, m)` for an integer `|x| < 2^52`: subtract the floored quotient, then fix
    /// a quotient off by one either way.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn reduce(x: __m256d, m: __m256d, m_inv: __m256d) -> __m256d {
        let zero = _mm256_setzero_pd();
        let y = _mm256_fnmadd_pd(
            _mm256_round_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(x, m_inv)),
            m,
            x,
        );
        let y = _mm256_add_pd(y, _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(y, zero), m));
        _mm256_sub_pd(y, _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(y, m), m))
    }

    /// Four u64 below 2^52 at `a[i..i + 4]` as doubles.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn load_u64(a: &[u64], i: usize) -> __m256d {
        let s = &a[i..i + 4];
        // SAFETY: `s` is exactly 4 words; unaligned load.
        #[allow(unsafe_code, reason = "unaligned 256-bit load of a checked slice")]
        let x = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
        let magic = _mm256_set1_pd(MAGIC);
        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, _mm256_castpd_si256(magic))), magic)
    }

    /// Stores four doubles holding integers in `[0, 2^52)` as u64 at `a[i..i + 4]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn store_u64(a: &mut [u64], i: usize, x: __m256d) {
        let magic = _mm256_set1_pd(MAGIC);
        let bits = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(x, magic)), _mm256_castpd_si256(magic));
        let s = &mut a[i..i + 4];
        // SAFETY: `s` is exactly 4 words; unaligned store.
        #[allow(unsafe_code, reason = "unaligned 256-bit store into a checked slice")]
        unsafe {
            _mm256_storeu_si256(s.as_mut_ptr().cast(), bits)
        };
    }
}
