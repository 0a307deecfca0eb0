//! Hard-pair mining: rank candidate pairs by how badly the current network preserves their
//! similarity, keep the worst, fill the batch with other candidates.

use rand::Rng;
use rand::seq::index::sample;

/// Chooses `total` of the candidates: the `keep` with the largest `errors` (|s − ŝ|), then
/// `total − keep` drawn at random from the others. Returns candidate indices.
///
/// `keep` is capped at `total`, and `total` at the number of candidates.
pub fn select_hard<R: Rng + ?Sized>(errors: &[f32], keep: usize, total: usize, rng: &mut R) -> Vec<usize> {
    let total = total.min(errors.len());
    let keep = keep.min(total);
    let mut order: Vec<usize> = (0..errors.len()).collect();
    order.sort_by(|&a, &b| errors[b].total_cmp(&errors[a]));
    let mut chosen: Vec<usize> = order[..keep].to_vec();
    let rest = &order[keep..];
    chosen.extend(sample(rng, rest.len(), total - keep).into_iter().map(|i| rest[i]));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keeps_the_worst_pairs() {
        let errors = [0.1, 0.9, 0.05, 0.7, 0.3, 0.8, 0.0, 0.2];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let c = select_hard(&errors, 3, 5, &mut rng);
        assert_eq!(&c[..3], &[1, 5, 3]);
        assert_eq!(c.len(), 5);
        let mut u = c.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), 5, "no candidate twice");
        assert!(c[3..].iter().all(|i| ![1, 5, 3].contains(i)));
        assert_eq!(select_hard(&errors, 10, 4, &mut rng).len(), 4);
    }
}
