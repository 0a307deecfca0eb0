//! Client-side top-k selection over decrypted scores.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One candidate: a global slot index and its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Global slot (chunk · N + slot) or any caller-defined index.
    pub index: u64,
    /// Decrypted integer score (higher is closer).
    pub score: i64,
}

impl Ord for Hit {
    /// Better hits compare greater: higher score, then lower index.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.cmp(&other.score).then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Streaming top-k accumulator (a min-heap of the k best).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Hit>>,
}

impl TopK {
    /// Keeps the `k` best hits.
    pub fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    /// Offers one hit.
    pub fn push(&mut self, hit: Hit) {
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

    /// Merges another accumulator into this one.
    pub fn merge(&mut self, other: TopK) {
        for Reverse(h) in other.heap {
            self.push(h);
        }
    }

    /// The hits, best first.
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.into_iter().map(|Reverse(h)| h).collect();
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
}
