//! `evaluate`: the protocol, the search and the metrics in one call, as `hers eval` prints it.

use std::time::Instant;

use embeddings::{EmbeddingSet, l2_normalize_rows};
use serde::Serialize;

use crate::metrics::score_all;
use crate::{Identification, Result, Split, Verification, search::PlainGallery, split_one_probe_per_identity};

/// How to evaluate a set.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Seed of the first probe draw; draw `i` uses `seed + i`.
    pub seed: u64,
    /// Number of seeded draws averaged (the reference numbers in data/README.md and docs/reduction.md use 5).
    pub draws: usize,
    /// Length of the CMC curve.
    pub max_rank: usize,
    /// False accept rates for verification.
    pub fars: Vec<f64>,
    /// L2-normalise embeddings first, so the inner product is the cosine similarity.
    pub normalize: bool,
    /// Also evaluate the vectors as encrypted search sees them: quantised with the default
    /// scale of the encryption preset for this dimension (`round(s·x)`).
    pub quantize: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { seed: 0, draws: 1, max_rank: 20, fars: vec![1e-2, 1e-3, 1e-4], normalize: true, quantize: false }
    }
}

/// Identification and verification results of a set, averaged over draws.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Rows in the set.
    pub rows: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Distinct labels.
    pub identities: usize,
    /// Probes per draw.
    pub probes: usize,
    /// Gallery templates per draw.
    pub gallery: usize,
    /// Draws averaged.
    pub draws: usize,
    /// Rank-1 accuracy.
    pub rank1: f64,
    /// Rank-5 accuracy.
    pub rank5: f64,
    /// Rank-10 accuracy.
    pub rank10: f64,
    /// CMC curve, ranks 1..=max_rank.
    pub cmc: Vec<f64>,
    /// TAR at each FAR (`None`: too few impostor pairs).
    pub tar_at_far: Vec<(f64, Option<f64>)>,
    /// Rank-1 on the quantised vectors and the scale used (with `quantize`).
    pub quantized: Option<(u32, f64)>,
    /// Wall time of the evaluation, seconds.
    pub seconds: f64,
}

/// Runs the identification protocol `draws` times and verification on the same splits.
pub fn evaluate(set: &EmbeddingSet, opts: &EvalOptions) -> Result<EvalReport> {
    let t0 = Instant::now();
    let mut data = set.data.clone();
    if opts.normalize {
        l2_normalize_rows(&mut data, set.dim);
    }
    let draws = opts.draws.max(1);
    let mut ids: Vec<Identification> = Vec::new();
    let mut vers: Vec<Verification> = Vec::new();
    let mut last = Split { probes: vec![], gallery: vec![] };
    let quantized = if opts.quantize { Some(quantize_rows(&data, set.dim)?) } else { None };
    let mut quantized_rank1 = 0.0;
    for d in 0..draws {
        let split = split_one_probe_per_identity(&set.labels, opts.seed + d as u64)?;
        let ((g, gl), (p, pl)) = split.parts(&data, &set.labels, set.dim);
        let gallery = PlainGallery { data: &g, dim: set.dim };
        let (i, v) = score_all(gallery, &gl, &p, &pl, opts.max_rank, &opts.fars);
        if let Some((_, q)) = &quantized {
            let ((qg, _), (qp, _)) = split.parts(q, &set.labels, set.dim);
            quantized_rank1 +=
                score_all(PlainGallery { data: &qg, dim: set.dim }, &gl, &qp, &pl, 1, &[]).0.rank(1) / draws as f64;
        }
        ids.push(i);
        vers.push(v);
        last = split;
    }
    let n = draws as f64;
    let cmc: Vec<f64> = (0..opts.max_rank.max(1)).map(|r| ids.iter().map(|i| i.cmc[r]).sum::<f64>() / n).collect();
    let tar_at_far = opts
        .fars
        .iter()
        .enumerate()
        .map(|(k, &far)| {
            let v: Option<Vec<f64>> = vers.iter().map(|v| v.tar_at_far[k].1).collect();
            (far, v.map(|v| v.iter().sum::<f64>() / n))
        })
        .collect();
    let rank = |r: usize| cmc.get(r - 1).or(cmc.last()).copied().unwrap_or(0.0);
    let mut labels = set.labels.clone();
    labels.sort_unstable();
    labels.dedup();
    Ok(EvalReport {
        rows: set.len(),
        dim: set.dim,
        identities: labels.len(),
        probes: last.probes.len(),
        gallery: last.gallery.len(),
        draws,
        rank1: rank(1),
        rank5: rank(5),
        rank10: rank(10),
        cmc,
        tar_at_far,
        quantized: quantized.map(|(scale, _)| (scale, quantized_rank1)),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The rows as encrypted search packs them: `round(s·x)` at the default scale of the preset
/// chosen for this dimension, as f32: exact for the N = 4096 preset (d ≤ 96, inner products
/// ≤ t/2 < 2^24); above that, inner products are rounded to f32.
fn quantize_rows(data: &[f32], dim: usize) -> Result<(u32, Vec<f32>)> {
    let params = encsearch::Preset::for_dim(dim)?.params()?;
    let q = encsearch::Quantizer::new(&params, dim)?;
    let rows = q.template_rows(data)?;
    Ok((q.scale, rows.iter().flat_map(|r| r[..dim].iter().map(|&x| x as f32)).collect()))
}
