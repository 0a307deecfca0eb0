//! Top-k selection: the one used everywhere a ranking is taken (the client's decrypted scores,
//! the second stage's candidates, plaintext searches in eval and the benchmarks).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A score type with a total order (integers as they are, floats by `total_cmp`).
pub trait Score: Copy {
    /// Total order; greater is better.
    fn order(&self, other: &Self) -> Ordering;
}

impl Score for i64 {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl Score for f32 {
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// One candidate: a global slot index and its score.
#[derive(Debug, Clone, Copy)]
pub struct Hit<S = i64> {
    /// Global slot (chunk · N + slot) or any caller-defined index.
    pub index: u64,
    /// Score (higher is closer).
    pub score: S,
}

impl<S: Score> Ord for Hit<S> {
    /// Better hits compare greater: higher score, then lower index.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.order(&other.score).then_with(|| other.index.cmp(&self.index))
    }
}

impl<S: Score> PartialOrd for Hit<S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<S: Score> PartialEq for Hit<S> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<S: Score> Eq for Hit<S> {}

/// Streaming top-k accumulator (a min-heap of the k best); ties go to the lower index, so
/// results are deterministic.
#[derive(Debug, Clone)]
pub struct TopK<S = i64> {
    k: usize,
    heap: BinaryHeap<Reverse<Hit<S>>>,
}

impl<S: Score> TopK<S> {
    /// Keeps the `k` best hits.
    pub fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)) }
    }

    /// The `k` best of `scores` (indexed by position), best first.
    pub fn of(scores: impl IntoIterator<Item = S>, k: usize) -> Vec<Hit<S>> {
        let mut t = Self::new(k);
        for (i, score) in scores.into_iter().enumerate() {
            t.push(Hit { index: i as u64, score });
        }
        t.into_sorted()
    }

    /// Offers one hit.
    pub fn push(&mut self, hit: Hit<S>) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Reverse(hit));
        } else if let Some(Reverse(worst)) = self.heap.peek()
            && hit > *worst
        {
            self.heap.pop();
            self.heap.push(Reverse(hit));
        }
    }

    /// The score a hit needs at least to enter (a hit of exactly this score enters only with a
    /// lower index than the worst held): the worst held score once `k` are held, `None` before.
    pub fn threshold(&self) -> Option<S> {
        match self.heap.len() == self.k && self.k > 0 {
            true => self.heap.peek().map(|Reverse(h)| h.score),
            false => None,
        }
    }

    /// Merges another accumulator into this one.
    pub fn merge(&mut self, other: TopK<S>) {
        for Reverse(h) in other.heap {
            self.push(h);
        }
    }

    /// The hits, best first.
    pub fn into_sorted(self) -> Vec<Hit<S>> {
        let mut v: Vec<Hit<S>> = self.heap.into_iter().map(|Reverse(h)| h).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_index_tiebreak() {
        let mut t = TopK::new(3);
        for (i, s) in [5, 1, 9, 5, 7, 9].iter().enumerate() {
            t.push(Hit { index: i as u64, score: *s });
        }
        let got: Vec<(u64, i64)> = t.into_sorted().iter().map(|h| (h.index, h.score)).collect();
        assert_eq!(got, vec![(2, 9), (5, 9), (4, 7)]);
    }

    #[test]
    fn floats_rank_by_total_order() {
        let got: Vec<u64> = TopK::of([0.5f32, -1.0, 2.0, 0.5], 3).iter().map(|h| h.index).collect();
        assert_eq!(got, vec![2, 0, 3]);
    }
}
