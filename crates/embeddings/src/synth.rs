//! Synthetic embedding sets that imitate face, fingerprint and image embeddings.
//!
//! Identities live on a smooth `k`-dimensional manifold inside the unit sphere of `D`
//! dimensions: a latent point `z ∈ R^k` is mapped by random Fourier features,
//! `x_d = √(2/D)·cos(w_d·z + b_d)`, so that `x·x' ≈ exp(−‖z − z'‖² / 2ℓ²)` (a Gaussian kernel).
//! That gives what real models show and a linear toy cannot: a low intrinsic dimension (`k`,
//! 16 for faces) while the embeddings spread over all `D` ambient dimensions, impostor cosines
//! near zero with a small spread, and genuine cosines set by the within-identity latent noise
//! `σ`. A little isotropic ambient noise (norm `a` against a unit signal) and, for
//! ImageNet-like features (post-ReLU, all positive), a shared offset direction of weight `c`
//! complete the picture.
//!
//! Expected cosines (see [`SynthSpec::expected_genuine_cosine`]): two samples of one identity
//! sit at `z = centre + q₁ε₁` and `z' = centre + q₂ε₂`, so `z − z' ~ N(0, (q₁² + q₂²)·I_k)` — *both*
//! carry noise — and the kernel averages to `(1 + (q₁² + q₂²)/ℓ²)^{-k/2}`; the ambient noise and
//! the offset enter through the normalisation:
//! `E[x·x'] ≈ (E_q[(1 + (q₁² + q₂²)/ℓ²)^{-k/2}] + c²) / (1 + c² + a²)`, which is
//! `≈ ((1 + 2σ²/ℓ²)^{-k/2} + c²)/(1 + c² + a²)` for a fixed noise level `q = σ` (each sample's
//! level is `q = σ·e^{0.3ξ}`, ξ standard normal: capture quality varies). Impostors: centres are
//! standard normal, so `(1 + 2/ℓ²)^{-k/2}` replaces the kernel term. Everything is a pure function of the seed and the
//! identity index, so sets are reproducible and generated block by block in bounded memory.

use std::f32::consts::PI;
use std::path::Path;

use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::{EmbeddingSet, EmbeddingWriter, Error, Ids, Result, dot, l2_normalize};

/// The embedding models the seed paper used, as shapes and similarity statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// ArcFace face embeddings: 512-D.
    Arcface,
    /// DeepPrint fingerprint embeddings: 192-D.
    Deepprint,
    /// ResNet ImageNet image features: 1536-D, non-negative, so impostors are positively correlated.
    Imagenet,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "arcface" => Ok(Preset::Arcface),
            "deepprint" => Ok(Preset::Deepprint),
            "imagenet" => Ok(Preset::Imagenet),
            other => Err(Error::Invalid(format!("unknown preset `{other}`; use arcface, deepprint or imagenet"))),
        }
    }
}

/// Everything that determines a synthetic set.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// Ambient dimension `D`.
    pub dim: usize,
    /// Intrinsic (latent) dimension `k`.
    pub intrinsic_dim: usize,
    /// Number of identities (labels `0..identities`).
    pub identities: usize,
    /// Samples per identity.
    pub per_identity: usize,
    /// Seed; the same spec and seed give the same rows.
    pub seed: u64,
    /// Kernel length scale `ℓ` in latent units (latent identity centres are standard normal).
    pub length_scale: f32,
    /// Within-identity latent noise `σ` (sets the genuine cosine).
    pub within: f32,
    /// Isotropic ambient noise, as a fraction of the signal norm.
    pub ambient: f32,
    /// Weight of a direction shared by all embeddings (positive impostor cosines).
    pub common: f32,
}

impl SynthSpec {
    /// The preset's defaults for `identities × per_identity` rows.
    pub fn preset(preset: Preset, identities: usize, per_identity: usize, seed: u64) -> Self {
        let base = SynthSpec {
            dim: 512,
            intrinsic_dim: 16,
            identities,
            per_identity,
            seed,
            length_scale: 1.5,
            within: 0.24,
            ambient: 0.25,
            common: 0.0,
        };
        match preset {
            Preset::Arcface => base,
            Preset::Deepprint => SynthSpec { dim: 192, within: 0.22, ambient: 0.2, ..base },
            Preset::Imagenet => SynthSpec { dim: 1536, within: 0.30, ambient: 0.3, common: 0.6, ..base },
        }
    }

    /// The expected cosine of two samples of one identity (module docs): the kernel averaged
    /// over both samples' noise levels by quadrature, then the ambient noise and the offset.
    pub fn expected_genuine_cosine(&self) -> f64 {
        let (k, l2) = (self.intrinsic_dim as f64, f64::from(self.length_scale).powi(2));
        let sigma2 = f64::from(self.within).powi(2);
        // Midpoint rule over ξ₁, ξ₂ ∈ [−6, 6] with standard-normal weights.
        let steps = 241;
        let h = 12.0 / steps as f64;
        let nodes: Vec<(f64, f64)> = (0..steps)
            .map(|i| {
                let xi = -6.0 + (i as f64 + 0.5) * h;
                let weight = (-0.5 * xi * xi).exp() / (2.0 * std::f64::consts::PI).sqrt() * h;
                (sigma2 * (2.0 * f64::from(QUALITY_SPREAD) * xi).exp(), weight)
            })
            .collect();
        let mut kernel = 0.0;
        for &(q1, w1) in &nodes {
            for &(q2, w2) in &nodes {
                kernel += w1 * w2 * (1.0 + (q1 + q2) / l2).powf(-k / 2.0);
            }
        }
        self.normalised(kernel)
    }

    /// The expected cosine of samples of two identities (module docs).
    pub fn expected_impostor_cosine(&self) -> f64 {
        let (k, l2) = (self.intrinsic_dim as f64, f64::from(self.length_scale).powi(2));
        self.normalised((1.0 + 2.0 / l2).powf(-k / 2.0))
    }

    /// A kernel value (the signals' cosine) after the offset and the ambient noise are added and
    /// the rows normalised.
    fn normalised(&self, kernel: f64) -> f64 {
        let (a2, c2) = (f64::from(self.ambient).powi(2), f64::from(self.common).powi(2));
        (kernel + c2) / (1.0 + c2 + a2)
    }

    /// Total rows.
    pub fn rows(&self) -> usize {
        self.identities * self.per_identity
    }

    fn check(&self) -> Result<()> {
        if self.dim == 0 || self.intrinsic_dim == 0 || self.identities == 0 || self.per_identity == 0 {
            return Err(Error::Invalid(
                "dim, intrinsic dim, identities and samples per identity must all be at least 1".into(),
            ));
        }
        if self.intrinsic_dim > self.dim {
            return Err(Error::Invalid(format!(
                "intrinsic dimension {} exceeds the embedding dimension {}",
                self.intrinsic_dim, self.dim
            )));
        }
        Ok(())
    }
}

/// Log-normal spread of each sample's latent noise level around `σ`.
const QUALITY_SPREAD: f32 = 0.3;

/// The fixed random map of a spec: frequencies `w` (`D×k`), phases `b`, shared direction `u`.
struct Manifold {
    w: Vec<f32>,
    b: Vec<f32>,
    u: Vec<f32>,
}

impl Manifold {
    fn new(spec: &SynthSpec) -> Self {
        let mut rng = stream(spec.seed, u64::MAX);
        let (d, k) = (spec.dim, spec.intrinsic_dim);
        let w = (0..d * k).map(|_| normal(&mut rng) / spec.length_scale).collect();
        let b = (0..d).map(|_| rng.random::<f32>() * 2.0 * PI).collect();
        let mut u: Vec<f32> = (0..d).map(|_| normal(&mut rng).abs()).collect();
        l2_normalize(&mut u);
        Manifold { w, b, u }
    }
}

fn stream(seed: u64, s: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(s);
    rng
}

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    StandardNormal.sample(rng)
}

/// The `per_identity` rows of identity `id`, appended to `out`.
fn identity_rows(spec: &SynthSpec, m: &Manifold, id: usize, out: &mut Vec<f32>) {
    let (d, k) = (spec.dim, spec.intrinsic_dim);
    let mut rng = stream(spec.seed, id as u64);
    let centre: Vec<f32> = (0..k).map(|_| normal(&mut rng)).collect();
    let feat_scale = (2.0 / d as f32).sqrt();
    let noise_scale = spec.ambient / (d as f32).sqrt();
    let mut z = vec![0f32; k];
    for _ in 0..spec.per_identity {
        // Sample quality varies: some captures are much noisier than others.
        let q = spec.within * (QUALITY_SPREAD * normal(&mut rng)).exp();
        for (zi, ci) in z.iter_mut().zip(&centre) {
            *zi = ci + q * normal(&mut rng);
        }
        let start = out.len();
        for j in 0..d {
            let phase = dot(&m.w[j * k..(j + 1) * k], &z) + m.b[j];
            out.push(feat_scale * phase.cos() + noise_scale * normal(&mut rng) + spec.common * m.u[j]);
        }
        l2_normalize(&mut out[start..]);
    }
}

/// Generates a whole synthetic set in memory (for tests and small experiments).
pub fn synth_set(spec: &SynthSpec) -> Result<EmbeddingSet> {
    spec.check()?;
    let m = Manifold::new(spec);
    Ok(block(spec, &m, 0..spec.identities))
}

/// Generates only identities `range` of the spec (labels and ids as in the full set), so
/// disjoint train / gallery / distractor identities can come from one generator.
pub fn synth_identities(spec: &SynthSpec, range: std::ops::Range<usize>) -> Result<EmbeddingSet> {
    spec.check()?;
    if range.is_empty() {
        return Err(Error::Invalid("empty identity range".into()));
    }
    Ok(block(spec, &Manifold::new(spec), range))
}

fn block(spec: &SynthSpec, m: &Manifold, ids: std::ops::Range<usize>) -> EmbeddingSet {
    let per = spec.per_identity;
    let start = ids.start;
    let parts: Vec<Vec<f32>> = ids
        .into_par_iter()
        .map(|id| {
            let mut v = Vec::with_capacity(per * spec.dim);
            identity_rows(spec, m, id, &mut v);
            v
        })
        .collect();
    let n = parts.len() * per;
    let first_row = start * per;
    EmbeddingSet {
        ids: Ids::Int((first_row as i64..(first_row + n) as i64).collect()),
        labels: (0..n).map(|r| (start + r / per) as i64).collect(),
        dim: spec.dim,
        data: parts.concat(),
        extra: Vec::new(),
    }
}

/// Streams a synthetic set to `out` in blocks of about 32K rows (bounded memory, any size);
/// ids are row numbers, labels identity numbers. Advances `progress` by rows written.
pub fn synth_to_parquet(spec: &SynthSpec, out: impl AsRef<Path>, progress: &ProgressBar) -> Result<usize> {
    spec.check()?;
    let m = Manifold::new(spec);
    let ids_per_block = (32 * 1024 / spec.per_identity).max(1);
    let mut writer = EmbeddingWriter::create(out, spec.dim)?;
    let mut start = 0;
    while start < spec.identities {
        let end = (start + ids_per_block).min(spec.identities);
        let b = block(spec, &m, start..end);
        writer.write(&b)?;
        progress.inc(b.len() as u64);
        start = end;
    }
    writer.finish()
}

/// Genuine and impostor cosine statistics of a set, from sampled pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthStats {
    /// Mean cosine of two samples of one identity.
    pub genuine_mean: f32,
    /// Standard deviation of genuine cosines.
    pub genuine_std: f32,
    /// Mean cosine of samples of two identities.
    pub impostor_mean: f32,
    /// Standard deviation of impostor cosines.
    pub impostor_std: f32,
}

impl SynthStats {
    /// Measures up to `pairs` genuine and `pairs` impostor pairs drawn with `seed`.
    pub fn measure(set: &EmbeddingSet, pairs: usize, seed: u64) -> Result<Self> {
        let mut by_label: std::collections::HashMap<i64, Vec<usize>> = Default::default();
        for (i, &l) in set.labels.iter().enumerate() {
            by_label.entry(l).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = by_label.into_values().filter(|g| g.len() >= 2).collect();
        groups.sort();
        if groups.is_empty() || set.len() < 2 {
            return Err(Error::Invalid("need an identity with two samples and two identities".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cos = |a: usize, b: usize| {
            let (x, y) = (set.row(a), set.row(b));
            dot(x, y) / (dot(x, x).sqrt() * dot(y, y).sqrt()).max(f32::MIN_POSITIVE)
        };
        let mut genuine = Vec::with_capacity(pairs);
        let mut imp = Vec::with_capacity(pairs);
        while genuine.len() < pairs {
            let g = &groups[rng.random_range(0..groups.len())];
            let (a, b) = (rng.random_range(0..g.len()), rng.random_range(0..g.len()));
            if a != b {
                genuine.push(cos(g[a], g[b]));
            }
        }
        let mut tries = 0;
        while imp.len() < pairs && tries < pairs * 100 {
            tries += 1;
            let (a, b) = (rng.random_range(0..set.len()), rng.random_range(0..set.len()));
            if set.labels[a] != set.labels[b] {
                imp.push(cos(a, b));
            }
        }
        if imp.is_empty() {
            return Err(Error::Invalid("every row has the same label: no impostor pairs".into()));
        }
        let stats = |v: &[f32]| {
            let m = v.iter().sum::<f32>() / v.len() as f32;
            let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len() as f32;
            (m, var.sqrt())
        };
        let ((gm, gs), (im, is)) = (stats(&genuine), stats(&imp));
        Ok(SynthStats { genuine_mean: gm, genuine_std: gs, impostor_mean: im, impostor_std: is })
    }
}
