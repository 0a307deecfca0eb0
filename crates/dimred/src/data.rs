//! Training data: identity-disjoint train/validation split, a seeded genuine/impostor pair
//! sampler (DeepMDS) and identity-balanced P × K batches (supervised contrastive).

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// A pair of row indices.
pub type Pair = (usize, usize);

/// Splits rows by identity: about `fraction` of the identities (at most `max_identities`, 0 = no
/// cap) go to validation. Returns `(train_rows, validation_rows)`, each in file order.
pub fn split_identities(labels: &[i64], fraction: f64, max_identities: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut ids: Vec<i64> = labels.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ids.shuffle(&mut rng);
    let mut n = (ids.len() as f64 * fraction).round() as usize;
    if max_identities > 0 {
        n = n.min(max_identities);
    }
    let val: std::collections::HashSet<i64> = ids[..n].iter().copied().collect();
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for (i, l) in labels.iter().enumerate() {
        if val.contains(l) { va.push(i) } else { tr.push(i) }
    }
    (tr, va)
}

/// A training set L2-normalised and split by identity (see [`split_identities`]): the rows the
/// learned methods train on and those they validate on, each with its labels.
#[derive(Debug, Clone)]
pub struct TrainValidation {
    /// Training rows, row-major, unit-norm.
    pub train: Vec<f32>,
    /// Labels of the training rows.
    pub train_labels: Vec<i64>,
    /// Validation rows (held-out identities), row-major, unit-norm.
    pub validation: Vec<f32>,
    /// Labels of the validation rows.
    pub validation_labels: Vec<i64>,
}

impl TrainValidation {
    /// Normalises the rows of `data` (`dim` wide) and splits them by identity as
    /// [`split_identities`] does.
    pub fn split(data: &[f32], labels: &[i64], dim: usize, fraction: f64, max_identities: usize, seed: u64) -> Self {
        let mut x = data.to_vec();
        embeddings::l2_normalize_rows(&mut x, dim);
        let (tr, va) = split_identities(labels, fraction, max_identities, seed);
        let take = |rows: &[usize]| -> (Vec<f32>, Vec<i64>) {
            let mut d = Vec::with_capacity(rows.len() * dim);
            rows.iter().for_each(|&r| d.extend_from_slice(&x[r * dim..(r + 1) * dim]));
            (d, rows.iter().map(|&r| labels[r]).collect())
        };
        let ((train, train_labels), (validation, validation_labels)) = (take(&tr), take(&va));
        TrainValidation { train, train_labels, validation, validation_labels }
    }
}

/// Draws genuine pairs (same label, two distinct rows) and impostor pairs (different labels)
/// from a labelled set, deterministically from a seed.
#[derive(Debug, Clone)]
pub struct PairSampler {
    labels: Vec<i64>,
    /// Rows of each identity that has at least two.
    groups: Vec<Vec<usize>>,
    rng: ChaCha8Rng,
}

impl PairSampler {
    /// A sampler over rows `0..labels.len()`; needs two identities and one with two samples.
    pub fn new(labels: &[i64], seed: u64) -> Result<Self> {
        let mut by: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, &l) in labels.iter().enumerate() {
            by.entry(l).or_default().push(i);
        }
        if by.len() < 2 {
            return Err(Error::Data(format!("{} identities: need at least 2 for impostor pairs", by.len())));
        }
        let mut groups: Vec<(i64, Vec<usize>)> = by.into_iter().filter(|(_, v)| v.len() >= 2).collect();
        if groups.is_empty() {
            return Err(Error::Data("no identity has two samples, so there are no genuine pairs".into()));
        }
        groups.sort_unstable_by_key(|(l, _)| *l);
        Ok(PairSampler {
            labels: labels.to_vec(),
            groups: groups.into_iter().map(|(_, v)| v).collect(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Number of identities with at least two samples.
    pub fn genuine_identities(&self) -> usize {
        self.groups.len()
    }

    /// `n` genuine pairs; their identities are distinct while `n` does not exceed the number of
    /// identities (so in-batch negatives really are impostors).
    pub fn genuine(&mut self, n: usize) -> Vec<Pair> {
        let g = self.groups.len();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let take = (n - out.len()).min(g);
            for gi in rand::seq::index::sample(&mut self.rng, g, take) {
                let rows = &self.groups[gi];
                let a = self.rng.random_range(0..rows.len());
                let mut b = self.rng.random_range(0..rows.len() - 1);
                if b >= a {
                    b += 1;
                }
                out.push((rows[a], rows[b]));
            }
        }
        out
    }

    /// `n` impostor pairs (rows with different labels).
    pub fn impostor(&mut self, n: usize) -> Vec<Pair> {
        let rows = self.labels.len();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let a = self.rng.random_range(0..rows);
            let b = self.rng.random_range(0..rows);
            if self.labels[a] != self.labels[b] {
                out.push((a, b));
            }
        }
        out
    }

    /// The sampler's generator (for mining's fill-in draws).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

/// Identity-balanced batches for a contrastive loss: each batch holds `P` distinct identities
/// with `K` rows each, so every row has `K − 1` positives and `(P − 1)·K` negatives. An epoch
/// visits every identity (with at least two rows) once, in a seeded random order.
#[derive(Debug, Clone)]
pub struct IdentityBatcher {
    /// Rows of each identity that has at least two, in label order.
    groups: Vec<Vec<usize>>,
    p: usize,
    k: usize,
    rng: ChaCha8Rng,
}

impl IdentityBatcher {
    /// Batches over rows `0..labels.len()`: `p` identities (capped at the number there are) ×
    /// `k` rows. Identities with a single row are left out (they have no positive).
    pub fn new(labels: &[i64], p: usize, k: usize, seed: u64) -> Result<Self> {
        let mut by: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, &l) in labels.iter().enumerate() {
            by.entry(l).or_default().push(i);
        }
        let mut groups: Vec<(i64, Vec<usize>)> = by.into_iter().filter(|(_, v)| v.len() >= 2).collect();
        if groups.len() < 2 {
            return Err(Error::Data(format!(
                "{} identities with two or more samples: a contrastive batch needs at least 2",
                groups.len()
            )));
        }
        groups.sort_unstable_by_key(|(l, _)| *l);
        let p = p.clamp(2, groups.len());
        Ok(IdentityBatcher {
            groups: groups.into_iter().map(|(_, v)| v).collect(),
            p,
            k: k.max(2),
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Identities per batch (after the cap).
    pub fn identities_per_batch(&self) -> usize {
        self.p
    }

    /// Batches per epoch (a last batch smaller than two identities is dropped).
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.groups.len();
        n / self.p + usize::from(n % self.p >= 2)
    }

    /// One epoch of batches, each a list of `(row, identity index)` with the `K` rows of an
    /// identity together. An identity with fewer than `K` rows gives each once, then repeats
    /// random ones; with more, `K` are drawn without replacement.
    pub fn epoch(&mut self) -> Vec<Vec<(usize, usize)>> {
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.shuffle(&mut self.rng);
        let mut out = Vec::with_capacity(self.batches_per_epoch());
        for ids in order.chunks(self.p).filter(|c| c.len() >= 2) {
            let mut batch = Vec::with_capacity(ids.len() * self.k);
            for &g in ids {
                let rows = &self.groups[g];
                if rows.len() >= self.k {
                    for i in rand::seq::index::sample(&mut self.rng, rows.len(), self.k) {
                        batch.push((rows[i], g));
                    }
                } else {
                    batch.extend(rows.iter().map(|&r| (r, g)));
                    for _ in rows.len()..self.k {
                        batch.push((rows[self.rng.random_range(0..rows.len())], g));
                    }
                }
            }
            out.push(batch);
        }
        out
    }
}

/// Gathers the rows of `pairs` into a row-major `[2·pairs, dim]` buffer: all first members,
/// then all second members.
pub fn gather_pairs(data: &[f32], dim: usize, pairs: &[Pair]) -> Vec<f32> {
    let mut out = Vec::with_capacity(2 * pairs.len() * dim);
    for &(a, _) in pairs {
        out.extend_from_slice(&data[a * dim..(a + 1) * dim]);
    }
    for &(_, b) in pairs {
        out.extend_from_slice(&data[b * dim..(b + 1) * dim]);
    }
    out
}

/// Cosine similarity of each pair of (unit-norm) rows.
pub fn pair_cosines(data: &[f32], dim: usize, pairs: &[Pair]) -> Vec<f32> {
    pairs.iter().map(|&(a, b)| embeddings::dot(&data[a * dim..(a + 1) * dim], &data[b * dim..(b + 1) * dim])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<i64> {
        (0..60).map(|i| i / 3).collect()
    }

    #[test]
    fn pairs_are_genuine_and_impostor_and_seeded() {
        let l = labels();
        let mut s = PairSampler::new(&l, 1).expect("sampler");
        let g = s.genuine(30);
        assert_eq!(g.len(), 30);
        assert!(g.iter().all(|&(a, b)| a != b && l[a] == l[b]));
        let first20: std::collections::HashSet<i64> = g[..20].iter().map(|p| l[p.0]).collect();
        assert_eq!(first20.len(), 20, "distinct identities within one round");
        let i = s.impostor(50);
        assert!(i.iter().all(|&(a, b)| l[a] != l[b]));
        let mut s2 = PairSampler::new(&l, 1).expect("sampler");
        assert_eq!(s2.genuine(30), g);
    }

    #[test]
    fn split_is_identity_disjoint() {
        let l = labels();
        let (tr, va) = split_identities(&l, 0.25, 0, 9);
        assert_eq!(tr.len() + va.len(), l.len());
        assert_eq!(va.len(), 15);
        let vl: std::collections::HashSet<i64> = va.iter().map(|&r| l[r]).collect();
        assert!(tr.iter().all(|&r| !vl.contains(&l[r])));
    }

    #[test]
    fn identity_batches_are_p_by_k_and_cover_every_identity_once() {
        // 60 rows: identities 0..20 with 3 rows each; one extra identity with one row.
        let mut l = labels();
        l.push(999);
        let mut b = IdentityBatcher::new(&l, 6, 3, 4).expect("batcher");
        assert_eq!(b.batches_per_epoch(), 4); // 20 = 6 + 6 + 6 + 2
        let epoch = b.epoch();
        assert_eq!(epoch.len(), 4);
        let mut seen = std::collections::HashSet::new();
        for batch in &epoch {
            assert_eq!(batch.len() % 3, 0);
            for group in batch.chunks(3) {
                let id = l[group[0].0];
                assert!(group.iter().all(|&(r, _)| l[r] == id), "one identity per group of K");
                let rows: std::collections::HashSet<usize> = group.iter().map(|p| p.0).collect();
                assert_eq!(rows.len(), 3, "K distinct rows when the identity has K");
                assert!(seen.insert(id), "identity {id} twice in one epoch");
            }
        }
        assert_eq!(seen.len(), 20);
        assert!(!seen.contains(&999), "single-row identities have no positive");
        assert_eq!(epoch[..3].iter().map(Vec::len).collect::<Vec<_>>(), vec![18, 18, 18]);
        // K larger than an identity's rows: every row once, then repeats, still K per identity.
        let mut b = IdentityBatcher::new(&l, 4, 5, 4).expect("batcher");
        for batch in b.epoch() {
            for group in batch.chunks(5) {
                let rows: std::collections::HashSet<usize> = group.iter().map(|p| p.0).collect();
                assert_eq!(rows.len(), 3);
            }
        }
        assert!(IdentityBatcher::new(&[1, 2, 3, 3], 4, 2, 0).is_err(), "one identity with positives");
    }

    #[test]
    fn no_genuine_pairs_is_an_error() {
        assert!(PairSampler::new(&[1, 2, 3], 0).is_err());
        assert!(PairSampler::new(&[1, 1], 0).is_err());
    }
}
