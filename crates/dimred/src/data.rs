//! Training data: identity-disjoint train/validation split and a seeded genuine/impostor pair
//! sampler.

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
    fn no_genuine_pairs_is_an_error() {
        assert!(PairSampler::new(&[1, 2, 3], 0).is_err());
        assert!(PairSampler::new(&[1, 1], 0).is_err());
    }
}
