//! The id ↔ slot map of a gallery: which gallery id sits in which global slot (chunk · slots per
//! chunk + slot), with the ids the manifest tombstoned treated as empty slots.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::seal::ChunkSeal;

/// Ids of every chunk's used slots, in slot order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    /// Slots per chunk.
    per_chunk: usize,
    /// `ids[chunk][slot]` for the used slots of each chunk.
    ids: Vec<Vec<String>>,
    /// Each chunk's used-slot count and ciphertext digest.
    seals: Vec<ChunkSeal>,
}

impl Slots {
    /// An empty map of chunks of `per_chunk` slots.
    pub(crate) fn new(per_chunk: usize) -> Self {
        Self { per_chunk, ids: Vec::new(), seals: Vec::new() }
    }

    /// Adds the next chunk: its used-slot ids and the digest of its ciphertexts.
    pub(crate) fn push_chunk(&mut self, ids: Vec<String>, digest: [u8; 32]) {
        self.seals.push(ChunkSeal { used: ids.len() as u32, digest });
        self.ids.push(ids);
    }

    /// Each chunk's used-slot count and digest, in chunk order.
    pub(crate) fn chunk_seals(&self) -> &[ChunkSeal] {
        &self.seals
    }

    /// Chunks mapped.
    pub(crate) fn chunks(&self) -> usize {
        self.ids.len()
    }

    /// Ids in use (not removed), counted without copying any.
    pub(crate) fn live(&self, removed: &BTreeSet<String>) -> usize {
        self.ids.iter().flatten().filter(|id| !removed.contains(*id)).count()
    }

    /// Every id ever enrolled, removed ones included (an id is never reused).
    pub(crate) fn all_ids(&self) -> impl Iterator<Item = &String> {
        self.ids.iter().flatten()
    }

    /// The used-slot ids of each chunk.
    pub(crate) fn chunk_ids(&self) -> impl Iterator<Item = &[String]> {
        self.ids.iter().map(Vec::as_slice)
    }

    /// The id of every global slot, `None` for unused or removed ones.
    pub(crate) fn slot_ids(&self, removed: &BTreeSet<String>) -> Arc<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(self.ids.len() * self.per_chunk);
        for c in &self.ids {
            out.extend(c.iter().map(|id| Some(id).filter(|id| !removed.contains(*id)).cloned()));
            out.extend(std::iter::repeat_n(None, self.per_chunk.saturating_sub(c.len())));
        }
        Arc::new(out)
    }

    /// The ids of one chunk's slots (`per_chunk` entries, `None` for unused or removed ones).
    pub(crate) fn chunk_slot_ids(&self, chunk: usize, removed: &BTreeSet<String>) -> Vec<Option<String>> {
        let ids = self.ids.get(chunk).map(Vec::as_slice).unwrap_or_default();
        (0..self.per_chunk).map(|s| ids.get(s).filter(|id| !removed.contains(*id)).cloned()).collect()
    }

    /// (chunk, slot) of each of `ids`, in order; one pass over the map. Unknown and removed
    /// ids are errors.
    pub(crate) fn locate_many(&self, ids: &[String], removed: &BTreeSet<String>) -> Result<Vec<(usize, usize)>> {
        let wanted: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let mut found = vec![None; ids.len()];
        for (ci, c) in self.ids.iter().enumerate() {
            for (slot, id) in c.iter().enumerate() {
                if let Some(&i) = wanted.get(id.as_str()) {
                    found[i] = Some((ci, slot));
                }
            }
        }
        ids.iter()
            .zip(found)
            .map(|(id, f)| match f {
                Some(p) if !removed.contains(id) => Ok(p),
                _ => Err(Error::UnknownId { id: id.clone() }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_locate_and_hide_removed_ids() {
        let mut s = Slots::new(3);
        s.push_chunk(vec!["a".into(), "b".into(), "c".into()], [1; 32]);
        s.push_chunk(vec!["d".into()], [2; 32]);
        let removed: BTreeSet<String> = ["b".to_string()].into();
        assert_eq!(s.live(&removed), 3);
        let ids = s.slot_ids(&removed);
        assert_eq!(ids.len(), 6);
        assert_eq!(ids[1], None);
        assert_eq!(ids[3].as_deref(), Some("d"));
        assert_eq!(s.chunk_slot_ids(1, &removed), vec![Some("d".to_string()), None, None]);
        assert_eq!(s.locate_many(&["d".into(), "a".into()], &removed).expect("found"), vec![(1, 0), (0, 0)]);
        assert!(s.locate_many(&["b".into()], &removed).is_err());
    }
}
