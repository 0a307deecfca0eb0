//! Which vector builds of the kernels may run: detected once, from the running CPU, and passed
//! to every kernel, NTT, basis extension and down-scaling when it is built.

/// The instruction sets the kernels may use. Only [`Simd::detect`] can turn a build on, so a
/// value that allows AVX-512 IFMA is proof that the running CPU has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simd {
    ifma: bool,
    avx2: bool,
}

impl Simd {
    /// Every build the running CPU supports (AVX-512F with IFMA, AVX2 on x86-64).
    pub fn detect() -> Self {
        Self { ifma: super::ifma::detected(), avx2: avx2_detected() }
    }

    /// The portable builds only, whatever the CPU, for A/B measurements and for testing those
    /// builds on any machine.
    pub fn portable() -> Self {
        Self { ifma: false, avx2: false }
    }

    /// Every build the running CPU supports except the AVX-512 ones: what a CPU with AVX2 and
    /// no AVX-512 runs, for A/B measurements on a machine that has both.
    pub fn without_avx512() -> Self {
        Self { ifma: false, avx2: avx2_detected() }
    }

    /// [`Simd::detect`] when `enabled`, [`Simd::portable`] otherwise.
    pub fn new(enabled: bool) -> Self {
        if enabled { Self::detect() } else { Self::portable() }
    }

    /// Whether the AVX-512 IFMA builds run.
    pub fn ifma(self) -> bool {
        self.ifma
    }

    /// Whether the AVX2 builds run.
    pub fn avx2(self) -> bool {
        self.avx2
    }

    /// The CPU features found and used, for reports (e.g. `avx512f+avx512ifma`, `portable`).
    pub fn describe(self) -> String {
        let mut found = Vec::new();
        #[cfg(target_arch = "x86_64")]
        for (name, on) in [
            ("avx2", std::is_x86_feature_detected!("avx2")),
            ("bmi2", std::is_x86_feature_detected!("bmi2")),
            ("adx", std::is_x86_feature_detected!("adx")),
            ("avx512f", std::is_x86_feature_detected!("avx512f")),
            ("avx512ifma", std::is_x86_feature_detected!("avx512ifma")),
        ] {
            if on {
                found.push(name);
            }
        }
        let cpu = if found.is_empty() { "none".to_string() } else { found.join(" ") };
        let used = if self.ifma {
            "AVX-512 IFMA builds"
        } else if self.avx2 {
            "AVX2 builds"
        } else {
            "portable builds"
        };
        format!("CPU features: {cpu}; using the {used}")
    }
}

/// Whether the running CPU has AVX2 and FMA (false off x86-64): what the narrow path's
/// double-precision builds (`avx2.rs`) need.
pub(crate) fn avx2_fma_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2_detected() && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the running CPU has AVX2 (false off x86-64).
pub(crate) fn avx2_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
