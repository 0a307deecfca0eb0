//! The key holder's ranking: each chunk's scores decrypted and folded into every probe's top-k
//! as soon as they are there — from a whole [`Response`] ([`Client::decrypt_top_k`]) or chunk by
//! chunk while a streamed answer is still arriving ([`crate::wire::ScoreStream::for_each_chunk`]), so
//! decryption overlaps the transfer. One implementation for both, so they rank identically.

use std::sync::{Arc, Mutex, PoisonError};

use embeddings::Match;

use crate::client::{Client, better_sign, similarity};
use crate::compact::ScoreForm;
use crate::error::{Error, Result};
use crate::keys::KeyId;
use crate::quantize::Metric;
use crate::seal::ChunkSeal;
use crate::topk::{Hit, TopK};
use crate::wire::{ChunkScores, IdTable, StreamHeader};

thread_local! {
    /// One chunk's decrypted scores, per thread.
    static SCORES: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What an answer says about itself, checked against the client's key before anything is
/// decrypted.
struct Answer<'a> {
    key_id: &'a KeyId,
    degree: usize,
    modulus: u64,
    form: ScoreForm,
    scale: u32,
    metric: Metric,
}

/// Every probe's `k` best live slots so far; chunks may be added in any order, from any thread.
#[derive(Debug)]
pub struct Ranking<'c> {
    client: &'c Client,
    probe_ids: Vec<String>,
    slot_ids: Arc<Vec<Option<String>>>,
    /// Each chunk's used slots, when the id table states them: the others must decrypt to 0.
    chunks: Arc<Vec<ChunkSeal>>,
    /// The range a genuine score lies in ([`crate::Quantizer::score_bounds`]).
    bounds: (i64, i64),
    degree: usize,
    scale: u32,
    /// +1 where higher scores are better, −1 for distances (TopK keeps the highest values).
    sign: i64,
    k: usize,
    tops: Vec<Mutex<TopK>>,
}

impl<'c> Ranking<'c> {
    /// A ranking of the answer that `header` begins, its slots named by `ids` (the id table of
    /// the header's gallery version); keeps `k` matches per probe.
    pub fn for_stream(client: &'c Client, header: &StreamHeader, ids: &IdTable, k: usize) -> Result<Self> {
        ids.check_names(header)?;
        let answer = Answer {
            key_id: &header.key_id,
            degree: header.degree,
            modulus: header.modulus,
            form: header.form,
            scale: header.scale,
            metric: header.metric,
        };
        let mut r = Self::new(client, &answer, header.probe_ids.clone(), ids.slot_ids.clone(), k)?;
        r.chunks = ids.chunks.clone();
        Ok(r)
    }

    /// A ranking of a whole [`crate::Response`].
    pub(crate) fn for_response(client: &'c Client, response: &crate::wire::Response, k: usize) -> Result<Self> {
        let answer = Answer {
            key_id: &response.key_id,
            degree: response.degree,
            modulus: response.modulus,
            form: response.form,
            scale: response.scale,
            metric: response.metric,
        };
        Self::new(client, &answer, response.probe_ids.clone(), response.slot_ids.clone(), k)
    }

    fn new(
        client: &'c Client,
        a: &Answer<'_>,
        probe_ids: Vec<String>,
        slot_ids: Arc<Vec<Option<String>>>,
        k: usize,
    ) -> Result<Self> {
        client.check_response(a.key_id, a.degree, a.modulus, a.form, "response")?;
        let tops = probe_ids.iter().map(|_| Mutex::new(TopK::new(k))).collect();
        Ok(Self {
            client,
            probe_ids,
            slot_ids,
            chunks: Arc::default(),
            bounds: client.quantizer().score_bounds(),
            degree: a.degree,
            scale: a.scale,
            sign: better_sign(a.metric),
            k,
            tops,
        })
    }

    /// Decrypts chunk `chunk`'s scores (one per probe, in the probes' order) and folds its
    /// live slots into each probe's top-k. A score no genuine answer holds — beyond the
    /// quantiser's bound, or not 0 in a slot the id table says is empty — is an
    /// [`Error::Integrity`]: the answer was not computed on the gallery the table describes.
    pub fn add_chunk(&self, chunk: usize, scores: &[ChunkScores]) -> Result<()> {
        self.fold(chunk, &scores.iter().collect::<Vec<_>>())
    }

    /// [`Ranking::add_chunk`] of borrowed scores.
    pub(crate) fn fold(&self, chunk: usize, scores: &[&ChunkScores]) -> Result<()> {
        if scores.len() != self.tops.len() {
            return Err(Error::malformed(
                "response",
                format!("{} scores for {} probes", scores.len(), self.tops.len()),
            ));
        }
        let n = self.degree;
        // The chunk's slots of the id table (shorter at the end of a table that is: those are
        // empty slots).
        let ids = self.slot_ids.get((chunk * n).min(self.slot_ids.len())..).unwrap_or_default();
        let ids = &ids[..n.min(ids.len())];
        let used = self.chunks.get(chunk).map_or(n, |c| (c.used as usize).min(n));
        SCORES.with_borrow_mut(|values| {
            values.resize(n, 0);
            for (top, cs) in self.tops.iter().zip(scores) {
                self.client.decrypt_chunk_into(cs, values)?;
                self.check(chunk, values, used)?;
                let floor = top.lock().unwrap_or_else(PoisonError::into_inner).threshold();
                let t = self.best_of(chunk, values, ids, floor);
                top.lock().unwrap_or_else(PoisonError::into_inner).merge(t);
            }
            Ok(())
        })
    }

    /// An error unless every score of a chunk is one a genuine answer holds: within the
    /// quantiser's bound, and 0 in the slots from `used` on, which the id table says are empty.
    fn check(&self, chunk: usize, values: &[i64], used: usize) -> Result<()> {
        let (lo, hi) = self.bounds;
        // Branch-free passes (they vectorise); the slot is looked for only when one fails.
        let out_of_range = values[..used].iter().fold(false, |bad, &v| bad | (v < lo) | (v > hi));
        let not_empty = values[used..].iter().fold(false, |bad, &v| bad | (v != 0));
        if !(out_of_range || not_empty) {
            return Ok(());
        }
        let (s, v) = values
            .iter()
            .enumerate()
            .find(|&(s, &v)| v < lo || v > hi || (s >= used && v != 0))
            .map(|(s, &v)| (s, v))
            .unwrap_or_default();
        Err(Error::Integrity {
            what: format!(
                "slot {s} of chunk {chunk} decrypts to {v}, which no template of this gallery can score ({}): \
                 the server's answer was not computed on the sealed gallery",
                if s >= used { "the slot is empty".to_string() } else { format!("range {lo}..={hi}") }
            ),
        })
    }

    /// The best live slots of one chunk's scores, of those that can enter a top-k whose
    /// threshold is `floor`: only the blocks holding a score at or above the running
    /// threshold are looked at slot by slot, so the id table is read for a handful of
    /// slots per chunk rather than for all of them.
    fn best_of(&self, chunk: usize, values: &[i64], ids: &[Option<String>], floor: Option<i64>) -> TopK {
        const BLOCK: usize = 64;
        let (mut t, sign) = (TopK::new(self.k), self.sign);
        let mut floor = floor;
        for (b, block) in values.chunks(BLOCK).enumerate() {
            if let Some(f) = floor {
                // Whether any `sign·v ≥ f`, written per sign so that the pass vectorises.
                let any = match sign > 0 {
                    true => block.iter().fold(false, |a, &v| a | (v >= f)),
                    false => block.iter().fold(false, |a, &v| a | (v <= -f)),
                };
                if !any {
                    continue;
                }
            }
            for (j, &v) in block.iter().enumerate() {
                let (s, score) = (b * BLOCK + j, sign * v);
                if floor.is_some_and(|f| score < f) || !matches!(ids.get(s), Some(Some(_))) {
                    continue;
                }
                t.push(Hit { index: (chunk * values.len() + s) as u64, score });
                floor = floor.max(t.threshold());
            }
        }
        t
    }

    /// The matches: `k` per probe (fewer where the gallery holds fewer), best first, probes in
    /// the answer's order.
    pub fn into_matches(self) -> Vec<Match> {
        let mut out = Vec::with_capacity(self.probe_ids.len() * self.k.min(self.slot_ids.len()));
        for (pid, top) in self.probe_ids.into_iter().zip(self.tops) {
            let top = top.into_inner().unwrap_or_else(PoisonError::into_inner);
            for (rank, h) in top.into_sorted().into_iter().enumerate() {
                let score = h.score * self.sign;
                out.push(Match {
                    probe_id: pid.clone(),
                    rank: rank + 1,
                    gallery_id: self.slot_ids[h.index as usize].clone().unwrap_or_default(),
                    score,
                    similarity: similarity(score, self.scale),
                });
            }
        }
        out
    }
}
