//! The identification protocol: one probe per identity, every other sample in the gallery.
//!
//! The one draw of probes in the workspace: validation during training ([`crate::metrics`]) and
//! eval's identification use the same split, so a seed means the same probes everywhere.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// Row indices of probes and gallery for one draw of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// One row per identity that has at least two samples.
    pub probes: Vec<usize>,
    /// Every row that is not a probe; identities with a single sample are distractors.
    pub gallery: Vec<usize>,
}

/// One side of a split: row-major vectors and their labels.
pub type Side = (Vec<f32>, Vec<i64>);

impl Split {
    /// The gallery and probe sides of a row-major `data` (`dim` wide) with their labels:
    /// `((gallery, gallery_labels), (probes, probe_labels))`.
    pub fn parts(&self, data: &[f32], labels: &[i64], dim: usize) -> (Side, Side) {
        let side = |rows: &[usize]| {
            let mut v = Vec::with_capacity(rows.len() * dim);
            rows.iter().for_each(|&r| v.extend_from_slice(&data[r * dim..(r + 1) * dim]));
            (v, rows.iter().map(|&r| labels[r]).collect())
        };
        (side(&self.gallery), side(&self.probes))
    }
}

/// Draws one probe per identity (among identities with ≥ 2 samples), seeded; the rest of the
/// rows form the gallery, so every probe has at least one mate in it. Fails with
/// [`Error::NoMates`] when no identity has two samples.
pub fn split_one_probe_per_identity(labels: &[i64], seed: u64) -> Result<Split> {
    let mut by_label: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_label.entry(l).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut is_probe = vec![false; labels.len()];
    let mut probes = Vec::new();
    for rows in by_label.values().filter(|r| r.len() >= 2) {
        let p = rows[rng.random_range(0..rows.len())];
        is_probe[p] = true;
        probes.push(p);
    }
    if probes.is_empty() {
        return Err(Error::NoMates);
    }
    let gallery = (0..labels.len()).filter(|&i| !is_probe[i]).collect();
    Ok(Split { probes, gallery })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_identity_and_mates_stay_in_gallery() {
        let labels = [0, 0, 0, 1, 1, 2, 3, 3];
        let s = split_one_probe_per_identity(&labels, 7).expect("split");
        assert_eq!(s.probes.len(), 3, "labels 0, 1, 3 have mates; 2 is a distractor");
        assert_eq!(s.probes.len() + s.gallery.len(), labels.len());
        for &p in &s.probes {
            assert!(s.gallery.iter().any(|&g| labels[g] == labels[p]));
        }
        assert!(s.gallery.contains(&5));
        assert_eq!(s, split_one_probe_per_identity(&labels, 7).expect("split"));
    }

    #[test]
    fn all_singletons_is_an_error() {
        assert!(split_one_probe_per_identity(&[0, 1, 2], 1).is_err());
    }
}
