//! Plaintext exact search: multi-threaded brute-force inner-product top-k.

use embeddings::dot;
use rayon::prelude::*;

/// A row-major plaintext gallery.
#[derive(Debug, Clone, Copy)]
pub struct PlainGallery<'a> {
    /// `len × dim` values.
    pub data: &'a [f32],
    /// The dimension.
    pub dim: usize,
}

impl PlainGallery<'_> {
    /// Number of templates.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// True when the gallery has no templates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inner products of `probe` with every template, into `out`.
    pub fn scores_into(&self, probe: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.data.chunks_exact(self.dim).map(|g| dot(g, probe)));
    }
}

/// The `k` best `(gallery index, score)` of each probe, best first; probes are searched in
/// parallel. Ties are broken by the lower gallery index, so results are deterministic.
pub fn top_k(gallery: PlainGallery<'_>, probes: &[f32], k: usize) -> Vec<Vec<(usize, f32)>> {
    let k = k.min(gallery.len());
    probes
        .par_chunks_exact(gallery.dim.max(1))
        .map_init(Vec::new, |scores, p| {
            gallery.scores_into(p, scores);
            best_k(scores, k)
        })
        .collect()
}

/// The `k` largest entries of `scores` as `(index, score)`, best first (ties: lower index).
pub(crate) fn best_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    encsearch::TopK::of(scores.iter().copied(), k).iter().map(|h| (h.index as usize, h.score)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn top_k_agrees_with_full_sort(
            g in proptest::collection::vec(-1.0f32..1.0, 4 * 3..4 * 40),
            p in proptest::collection::vec(-1.0f32..1.0, 4 * 2),
            k in 1usize..12,
        ) {
            let dim = 4;
            let n = g.len() / dim;
            let gallery = PlainGallery { data: &g[..n * dim], dim };
            let got = top_k(gallery, &p, k);
            for (pi, probe) in p.chunks_exact(dim).enumerate() {
                let mut all: Vec<(usize, f32)> = (0..n).map(|i| (i, dot(&g[i * dim..(i + 1) * dim], probe))).collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                all.truncate(k.min(n));
                prop_assert_eq!(&got[pi], &all);
            }
        }
    }
}
