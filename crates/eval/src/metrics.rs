//! Identification (rank-k, CMC) and verification (TAR at FAR) metrics.

use rayon::prelude::*;
use serde::Serialize;

use crate::search::PlainGallery;

/// Rank of the first correct match of each probe, summarised.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Identification {
    /// `cmc[r-1]`: fraction of probes whose first mate is within the top `r`.
    pub cmc: Vec<f64>,
    /// Number of probes.
    pub probes: usize,
}

impl Identification {
    /// Rank-`r` accuracy (1-based); the last CMC value beyond the computed range.
    pub fn rank(&self, r: usize) -> f64 {
        self.cmc.get(r.saturating_sub(1)).or(self.cmc.last()).copied().unwrap_or(0.0)
    }
}

/// Closed-set identification: for each probe, its rank is one plus the number of non-mate
/// templates scoring at least as high as its best mate. Ties count against the probe: real
/// sets hold exact duplicates (the same sentence under two labels), and a tie is not a match
/// a system could rely on. `max_rank` bounds the CMC curve.
pub fn identification(
    gallery: PlainGallery<'_>,
    gallery_labels: &[i64],
    probes: &[f32],
    probe_labels: &[i64],
    max_rank: usize,
) -> Identification {
    score_all(gallery, gallery_labels, probes, probe_labels, max_rank, &[]).0
}

/// True accept rate at each false accept rate, over all probe × gallery pairs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verification {
    /// `(far, tar)`; `tar` is `None` when there are too few impostor pairs to reach that FAR.
    pub tar_at_far: Vec<(f64, Option<f64>)>,
    /// Genuine pairs scored.
    pub genuine_pairs: usize,
    /// Impostor pairs scored (subsampled evenly beyond 20M).
    pub impostor_pairs: usize,
}

/// Impostor scores kept at most; beyond this they are subsampled with a fixed stride, which
/// still resolves FAR = 1e-4 with thousands of scores above the threshold.
const MAX_IMPOSTORS: usize = 20_000_000;

/// Verification: every probe against every template; mates are genuine pairs, the rest
/// impostor pairs. The threshold at FAR `f` is the impostor score exceeded by a fraction `f`.
pub fn verification(
    gallery: PlainGallery<'_>,
    gallery_labels: &[i64],
    probes: &[f32],
    probe_labels: &[i64],
    fars: &[f64],
) -> Verification {
    score_all(gallery, gallery_labels, probes, probe_labels, 1, fars).1
}

/// Both protocols from one pass over the probe × gallery scores (the expensive part).
pub fn score_all(
    gallery: PlainGallery<'_>,
    gallery_labels: &[i64],
    probes: &[f32],
    probe_labels: &[i64],
    max_rank: usize,
    fars: &[f64],
) -> (Identification, Verification) {
    let total = gallery.len() * probe_labels.len();
    let stride = total.div_ceil(MAX_IMPOSTORS).max(1);
    let want_verification = !fars.is_empty();
    let per_probe: Vec<(usize, Vec<f32>, Vec<f32>)> = probes
        .par_chunks_exact(gallery.dim)
        .zip(probe_labels.par_iter())
        .enumerate()
        .map_init(Vec::new, |scores, (pi, (p, &label))| {
            gallery.scores_into(p, scores);
            let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
            let mut best_mate = f32::NEG_INFINITY;
            for (gi, (&s, &l)) in scores.iter().zip(gallery_labels).enumerate() {
                if l == label {
                    best_mate = best_mate.max(s);
                    if want_verification {
                        genuine.push(s);
                    }
                } else if want_verification && (pi * gallery.len() + gi).is_multiple_of(stride) {
                    impostor.push(s);
                }
            }
            let rank = 1 + scores.iter().zip(gallery_labels).filter(|(s, l)| **l != label && **s >= best_mate).count();
            (rank, genuine, impostor)
        })
        .collect();

    let ranks: Vec<usize> = per_probe.iter().map(|(r, _, _)| *r).collect();
    let genuine: Vec<f64> = per_probe.iter().flat_map(|(_, g, _)| g.iter().map(|&x| x as f64)).collect();
    let impostor: Vec<f64> = per_probe.iter().flat_map(|(_, _, i)| i.iter().map(|&x| x as f64)).collect();
    drop(per_probe);
    summarise(&ranks, genuine, impostor, max_rank, fars)
}

/// Both protocols from precomputed score rows (`scores[p][g]`), e.g. decrypted integer
/// scores of an encrypted search; same rules as [`score_all`].
pub fn from_score_rows(
    scores: &[Vec<i64>],
    gallery_labels: &[i64],
    probe_labels: &[i64],
    max_rank: usize,
    fars: &[f64],
) -> (Identification, Verification) {
    let (mut ranks, mut genuine, mut impostor) = (Vec::new(), Vec::new(), Vec::new());
    for (row, &label) in scores.iter().zip(probe_labels) {
        let mut best_mate = i64::MIN;
        for (&s, &l) in row.iter().zip(gallery_labels) {
            if l == label {
                best_mate = best_mate.max(s);
                genuine.push(s as f64);
            } else {
                impostor.push(s as f64);
            }
        }
        ranks.push(1 + row.iter().zip(gallery_labels).filter(|(s, l)| **l != label && **s >= best_mate).count());
    }
    summarise(&ranks, genuine, impostor, max_rank, fars)
}

/// CMC from ranks, TAR@FAR from genuine and impostor scores.
fn summarise(
    ranks: &[usize],
    mut genuine: Vec<f64>,
    mut impostor: Vec<f64>,
    max_rank: usize,
    fars: &[f64],
) -> (Identification, Verification) {
    let max_rank = max_rank.max(1);
    let mut hist = vec![0usize; max_rank + 1];
    for r in ranks {
        hist[(*r).min(max_rank + 1) - 1] += 1;
    }
    let n = ranks.len().max(1) as f64;
    let mut acc = 0;
    let cmc = hist[..max_rank]
        .iter()
        .map(|h| {
            acc += h;
            acc as f64 / n
        })
        .collect();
    let ident = Identification { cmc, probes: ranks.len() };
    impostor.sort_unstable_by(|a, b| b.total_cmp(a));
    genuine.sort_unstable_by(|a, b| b.total_cmp(a));
    let tar_at_far = fars
        .iter()
        .map(|&far| {
            let allowed = (far * impostor.len() as f64).floor() as usize;
            if allowed == 0 || allowed >= impostor.len() || genuine.is_empty() {
                return (far, None);
            }
            let threshold = impostor[allowed];
            let accepted = genuine.partition_point(|&s| s > threshold);
            (far, Some(accepted as f64 / genuine.len() as f64))
        })
        .collect();
    (ident, Verification { tar_at_far, genuine_pairs: genuine.len(), impostor_pairs: impostor.len() })
}

/// Retrieval metrics for image search: precision@k and mean average precision, with every
/// gallery item of the probe's class relevant.
pub fn retrieval(
    gallery: PlainGallery<'_>,
    gallery_labels: &[i64],
    probes: &[f32],
    probe_labels: &[i64],
    k: usize,
) -> (f64, f64) {
    let per: Vec<(f64, f64)> = probes
        .par_chunks_exact(gallery.dim)
        .zip(probe_labels.par_iter())
        .map_init(Vec::new, |scores, (p, &label)| {
            gallery.scores_into(p, scores);
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let relevant = gallery_labels.iter().filter(|&&l| l == label).count();
            let (mut hits, mut ap, mut at_k) = (0usize, 0.0, 0usize);
            for (i, &g) in order.iter().enumerate() {
                if gallery_labels[g] == label {
                    hits += 1;
                    ap += hits as f64 / (i + 1) as f64;
                    if i < k {
                        at_k += 1;
                    }
                }
            }
            (at_k as f64 / k.min(order.len()).max(1) as f64, if relevant > 0 { ap / relevant as f64 } else { 0.0 })
        })
        .collect();
    let n = per.len().max(1) as f64;
    (per.iter().map(|x| x.0).sum::<f64>() / n, per.iter().map(|x| x.1).sum::<f64>() / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_count_non_mates_above_the_best_mate() {
        // 1-D gallery: scores are the values themselves for probe [1.0].
        let g = [0.9, 0.5, 0.7, 0.1];
        let gl = [1, 2, 3, 2];
        let gallery = PlainGallery { data: &g, dim: 1 };
        // label 2: best mate 0.5, non-mates above: 0.9, 0.7 -> rank 3.
        let id = identification(gallery, &gl, &[1.0, 1.0], &[2, 1], 4);
        assert_eq!(id.cmc, vec![0.5, 0.5, 1.0, 1.0]);
        // A non-mate tying the best mate counts against the probe.
        let tied = identification(PlainGallery { data: &[0.5, 0.5], dim: 1 }, &[1, 2], &[1.0], &[1], 2);
        assert_eq!(tied.cmc, vec![0.0, 1.0]);
        assert_eq!(id.rank(1), 0.5);
        assert_eq!(id.rank(10), 1.0);
    }

    #[test]
    fn tar_at_far_on_separable_scores_is_one_and_none_without_impostors() {
        let n = 1000;
        let g: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        let mut gl = vec![0i64; n];
        gl[n - 1] = 7; // the single mate has the top score
        let gallery = PlainGallery { data: &g, dim: 1 };
        let v = verification(gallery, &gl, &[1.0], &[7], &[1e-2, 1e-4]);
        assert_eq!(v.genuine_pairs, 1);
        assert_eq!(v.impostor_pairs, n - 1);
        assert_eq!(v.tar_at_far[0], (1e-2, Some(1.0)));
        assert_eq!(v.tar_at_far[1], (1e-4, None));
    }
}
