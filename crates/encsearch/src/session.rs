//! The client's side of a search, step by step and timed: encrypt → (server) score → decrypt,
//! the second stage of a two-stage search from the first stage's matches, and 1:1
//! verification. The server is whatever answers a [`Query`] or a [`FineQuery`]: a closure over
//! a [`crate::ServerContext`] in this process (the CLI, eval, the benchmarks), or a network
//! call. This is the one place that orchestration is written.

use std::collections::HashMap;
use std::time::Instant;

use embeddings::Match;
use rand::{CryptoRng, RngCore};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::quantize::Metric;
use crate::wire::{FineQuery, FineResponse, Query, Response};

/// Wall-clock seconds of each step of one query (all probes together).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Client: quantise and encrypt the probes.
    pub encrypt: f64,
    /// Server: score (including whatever the server closure does, e.g. a network round trip).
    pub score: f64,
    /// Client: decrypt and rank.
    pub decrypt: f64,
}

impl std::ops::AddAssign for Timings {
    fn add_assign(&mut self, other: Timings) {
        self.encrypt += other.encrypt;
        self.score += other.score;
        self.decrypt += other.decrypt;
    }
}

/// A finished search: the ranked matches and where the time went.
#[derive(Debug, Clone)]
pub struct Searched {
    /// `k` matches per probe, best first.
    pub matches: Vec<Match>,
    /// Time per step.
    pub timings: Timings,
    /// Probes searched.
    pub probes: usize,
    /// The server's response the matches were decrypted from.
    pub response: Response,
}

/// A finished second stage: the candidates ranked at full dimension.
#[derive(Debug, Clone)]
pub struct Rescored {
    /// At most `k` matches per probe, best first.
    pub matches: Vec<Match>,
    /// Time per step.
    pub timings: Timings,
    /// Ciphertexts the server returned.
    pub ciphertexts: usize,
    /// Candidates rescored.
    pub candidates: usize,
}

/// Every decrypted score of a query: `scores[probe][slot]` over all slots of the gallery.
#[derive(Debug, Clone)]
pub struct AllScores {
    /// Per probe, the integer score of every global slot (empty slots included).
    pub scores: Vec<Vec<i64>>,
    /// Time per step.
    pub timings: Timings,
}

/// The outcome of a 1:1 verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Whether the claim is accepted at the threshold.
    pub accept: bool,
    /// Cosine similarity (or squared distance for the Euclidean metric) of probe and claim.
    pub value: f64,
    /// The matching function (decides whether higher or lower is better).
    pub metric: Metric,
}

/// Each probe's candidate ids, in the order of `probe_ids`, from a first stage's `matches`.
pub fn candidate_lists(probe_ids: &[String], matches: &[Match]) -> Vec<Vec<String>> {
    let mut by_probe: HashMap<&str, Vec<String>> = HashMap::new();
    for m in matches {
        by_probe.entry(m.probe_id.as_str()).or_default().push(m.gallery_id.clone());
    }
    probe_ids.iter().map(|id| by_probe.remove(id.as_str()).unwrap_or_default()).collect()
}

/// The probe ids of `matches` in order of first appearance.
pub fn probe_order(matches: &[Match]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    matches.iter().filter(|m| seen.insert(m.probe_id.as_str())).map(|m| m.probe_id.clone()).collect()
}

/// What a query carries in place of the caller's probe ids: each probe's position ("0", "1",
/// …), so that no id an application chose (a person's name, a case number) reaches the server.
pub fn probe_labels(count: usize) -> Vec<String> {
    (0..count).map(|i| i.to_string()).collect()
}

/// Puts the caller's `probe_ids` back where an answer echoes the [`probe_labels`] its query
/// carried; an answer that echoes anything else is refused (its scores would be misnamed).
pub fn restore_probe_ids(echoed: &mut [String], probe_ids: &[String]) -> Result<()> {
    let expected = probe_labels(probe_ids.len());
    if echoed != expected.as_slice() {
        return Err(Error::malformed(
            "answer",
            format!("it names {} probes other than the {} the query carried", echoed.len(), probe_ids.len()),
        ));
    }
    echoed.clone_from_slice(probe_ids);
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let out = f()?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// The client side of searches with one key set and quantiser.
#[derive(Debug)]
pub struct Session<'c> {
    client: &'c Client,
    compact: bool,
}

impl<'c> Session<'c> {
    /// A session of `client` (its quantiser must be the gallery's), asking for full answers.
    pub fn new(client: &'c Client) -> Self {
        Self { client, compact: false }
    }

    /// Asks for compact answers (`compact/`): half the bytes down, more server time per
    /// chunk, and a key of ≈ 74 KB up with each query — worth it where the answer crosses a
    /// network.
    pub fn with_compact_answers(mut self, compact: bool) -> Self {
        self.compact = compact;
        self
    }

    /// The query of probes `rows`, with a compact-answer key when the session asks for them.
    fn encrypt<R: RngCore + CryptoRng>(&self, probe_ids: Vec<String>, rows: &[f32], rng: &mut R) -> Result<Query> {
        self.client.encrypt_query_as(probe_ids, rows, self.compact, rng)
    }

    /// Encrypts probes `rows` (row-major, the client's dimension) under ids `probe_ids`, has
    /// `server` score them, and keeps the `k` best live slots of each probe.
    pub fn search<R: RngCore + CryptoRng>(
        &self,
        probe_ids: Vec<String>,
        rows: &[f32],
        k: usize,
        rng: &mut R,
        server: impl FnOnce(&Query) -> Result<Response>,
    ) -> Result<Searched> {
        let (query, encrypt) = timed(|| self.encrypt(probe_labels(probe_ids.len()), rows, rng))?;
        let (mut response, score) = timed(|| server(&query))?;
        restore_probe_ids(&mut response.probe_ids, &probe_ids)?;
        let (matches, decrypt) = timed(|| self.client.decrypt_top_k(&response, k))?;
        Ok(Searched { matches, timings: Timings { encrypt, score, decrypt }, probes: query.probes.len(), response })
    }

    /// [`Session::search`], keeping every score: `scores[probe][slot]` (evaluation needs whole
    /// score rows).
    pub fn score_all<R: RngCore + CryptoRng>(
        &self,
        probe_ids: Vec<String>,
        rows: &[f32],
        rng: &mut R,
        server: impl FnOnce(&Query) -> Result<Response>,
    ) -> Result<AllScores> {
        let (query, encrypt) = timed(|| self.encrypt(probe_labels(probe_ids.len()), rows, rng))?;
        let (mut response, score) = timed(|| server(&query))?;
        restore_probe_ids(&mut response.probe_ids, &probe_ids)?;
        let (scores, decrypt) = timed(|| {
            response
                .scores
                .iter()
                .map(|chunks| {
                    let mut row = Vec::with_capacity(chunks.len() * response.degree);
                    for c in chunks {
                        row.extend(self.client.decrypt_chunk(c)?);
                    }
                    Ok(row)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(AllScores { scores, timings: Timings { encrypt, score, decrypt } })
    }

    /// The second stage of a two-stage search: encrypts the full-dimension probes `rows` (ids
    /// `probe_ids`, in that order) with each probe's candidate ids (`candidates[i]` for probe i;
    /// from a first stage's matches: [`candidate_lists`]), has `server` gather and score them,
    /// and ranks them (at most `k` per probe).
    pub fn rescore<R: RngCore + CryptoRng>(
        &self,
        probe_ids: &[String],
        rows: &[f32],
        candidates: Vec<Vec<String>>,
        k: usize,
        rng: &mut R,
        server: impl FnOnce(&FineQuery) -> Result<FineResponse>,
    ) -> Result<Rescored> {
        let count = candidates.iter().map(Vec::len).sum();
        let (query, encrypt) =
            timed(|| self.client.encrypt_fine_query(probe_labels(probe_ids.len()), rows, candidates, rng))?;
        let (mut response, score) = timed(|| server(&query))?;
        let mut echoed: Vec<String> = response.probes.iter().map(|(id, _)| id.clone()).collect();
        restore_probe_ids(&mut echoed, probe_ids)?;
        response.probes.iter_mut().zip(echoed).for_each(|((id, _), real)| *id = real);
        let (matches, decrypt) = timed(|| self.client.decrypt_fine(&response, k))?;
        Ok(Rescored {
            matches,
            timings: Timings { encrypt, score, decrypt },
            ciphertexts: response.ciphertexts(),
            candidates: count,
        })
    }

    /// 1:1 verification of probe `row` (id `probe_id`) against the claimed gallery id: `server`
    /// scores only the chunk that holds the claim; the claim is accepted when the similarity is
    /// at least `threshold` (for the Euclidean metric: the squared distance at most).
    pub fn verify<R: RngCore + CryptoRng>(
        &self,
        probe_id: &str,
        row: &[f32],
        claim: &str,
        threshold: f64,
        rng: &mut R,
        server: impl FnOnce(&Query) -> Result<Response>,
    ) -> Result<Verified> {
        let query = self.encrypt(probe_labels(1), row, rng)?;
        let mut response = server(&query)?;
        restore_probe_ids(&mut response.probe_ids, &[probe_id.to_string()])?;
        let slot = response
            .slot_ids
            .iter()
            .position(|s| s.as_deref() == Some(claim))
            .ok_or_else(|| Error::UnknownId { id: claim.to_string() })?;
        let n = response.degree.max(1);
        let chunk = response
            .scores
            .first()
            .and_then(|p| p.get(slot / n))
            .ok_or_else(|| Error::malformed("response", format!("no scores for the chunk of {claim}")))?;
        let score = self.client.decrypt_chunk(chunk)?[slot % n];
        let q = self.client.quantizer();
        let value = q.dequantize_score(score);
        let accept = match q.metric {
            Metric::SquaredEuclidean => value <= threshold,
            _ => value >= threshold,
        };
        Ok(Verified { accept, value, metric: q.metric })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, g: &str) -> Match {
        Match { probe_id: p.into(), rank: 1, gallery_id: g.into(), score: 0, similarity: 0.0 }
    }

    #[test]
    fn candidates_follow_the_probe_order() {
        let first = [m("b", "1"), m("a", "2"), m("b", "3")];
        assert_eq!(probe_order(&first), vec!["b".to_string(), "a".to_string()]);
        let lists = candidate_lists(&["a".into(), "b".into(), "c".into()], &first);
        assert_eq!(lists, vec![vec!["2".to_string()], vec!["1".to_string(), "3".to_string()], vec![]]);
    }
}
