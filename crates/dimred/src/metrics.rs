//! Small plaintext metrics for validation: rank-1 identification by brute-force cosine, and
//! TAR at a given FAR. (eval has the full versions; dimred must not depend on it.) The probes
//! are drawn by the shared protocol (`protocol.rs`).

use crate::protocol::split_one_probe_per_identity;

/// Rank-1 identification rate of unit-norm rows under the identification protocol
/// ([`split_one_probe_per_identity`], seeded): a probe is a hit when its most similar gallery row
/// has its label. Returns 0 when there is no probe.
pub fn rank1(data: &[f32], dim: usize, labels: &[i64], seed: u64) -> f64 {
    let Ok(split) = split_one_probe_per_identity(labels, seed) else { return 0.0 };
    let hits = split
        .probes
        .iter()
        .filter(|&&p| {
            let q = &data[p * dim..(p + 1) * dim];
            let best = split
                .gallery
                .iter()
                .map(|&g| (embeddings::dot(q, &data[g * dim..(g + 1) * dim]), g))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            best.is_some_and(|(_, g)| labels[g] == labels[p])
        })
        .count();
    hits as f64 / split.probes.len() as f64
}

/// True accept rate at false accept rate `far` over all pairs of rows (genuine: same label).
pub fn tar_at_far(data: &[f32], dim: usize, labels: &[i64], far: f64) -> f64 {
    let n = labels.len();
    let (mut genuine, mut imp) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in i + 1..n {
            let s = embeddings::dot(&data[i * dim..(i + 1) * dim], &data[j * dim..(j + 1) * dim]);
            if labels[i] == labels[j] { genuine.push(s) } else { imp.push(s) }
        }
    }
    if genuine.is_empty() || imp.is_empty() {
        return 0.0;
    }
    imp.sort_by(|a, b| b.total_cmp(a));
    let k = ((imp.len() as f64 * far).floor() as usize).min(imp.len() - 1);
    let threshold = imp[k];
    genuine.iter().filter(|&&s| s > threshold).count() as f64 / genuine.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_hopeless_rank1() {
        // Two identities on orthogonal axes: rank-1 = 1.
        let data = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        assert_eq!(rank1(&data, 2, &[0, 0, 1, 1], 1), 1.0);
        // Labels crossed: every nearest neighbour is the other identity.
        assert_eq!(rank1(&data, 2, &[0, 1, 0, 1], 1), 0.0);
        assert_eq!(tar_at_far(&data, 2, &[0, 0, 1, 1], 0.0), 1.0);
    }
}
