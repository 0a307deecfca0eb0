//! Two-stage encrypted search inside one process: the reduced-dimension encrypted 1:N search
//! keeps `candidates` per probe, then the full-dimension coefficient-layout gallery rescores
//! them (the slides' "16-D narrows, full-D decides"). Both stages are real BFV runs.

use std::collections::HashMap;

use encsearch::{Client, ClientKeys, ServerContext, Session, TopK, int_dot, server::FineChunks, session::Timings};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::encrypted::{EncryptedRun, PROBES_PER_QUERY, encrypted_scores};
use crate::{Error, Result};

/// A two-stage run: score rows for the metrics and the cost of each stage.
#[derive(Debug, Clone)]
pub struct TwoStageRun {
    /// `scores[p][g]`: candidates (ranked by their decrypted full-dimension score) above every
    /// other template (ranked by its first-stage score), so rank-k reads the two-stage order.
    pub scores: Vec<Vec<i64>>,
    /// The first stage.
    pub coarse: EncryptedRun,
    /// Per probe, second stage: encrypt, gather + score, decrypt + rank, ms.
    pub fine_encrypt_ms: f64,
    /// Per probe: server time of the second stage, ms.
    pub fine_score_ms: f64,
    /// Per probe: client decryption of the second stage, ms.
    pub fine_decrypt_ms: f64,
    /// Ciphertexts the second stage returned per probe.
    pub fine_ciphertexts: f64,
    /// Quantisation scale of the full-dimension gallery.
    pub fine_scale: u32,
    /// Both stages' decrypted scores equal the integer inner products of the quantised vectors.
    pub exact: bool,
}

/// Top `k` gallery indices of one score row (ties: lower index first).
fn top_indices(row: &[i64], k: usize) -> Vec<usize> {
    TopK::of(row.iter().copied(), k).iter().map(|h| h.index as usize).collect()
}

/// Runs both stages: `gallery`/`probes` at `dim` (reduced) and `full_gallery`/`full_probes` at
/// `full_dim`, same templates in the same order.
#[allow(clippy::too_many_arguments)]
pub fn two_stage_scores(
    gallery: &[f32],
    probes: &[f32],
    dim: usize,
    full_gallery: &[f32],
    full_probes: &[f32],
    full_dim: usize,
    candidates: usize,
    hers_chunks: usize,
    seed: u64,
) -> Result<TwoStageRun> {
    let coarse = encrypted_scores(gallery, probes, dim, hers_chunks, seed)?;
    let n_probes = coarse.scores.len();
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let keys = ClientKeys::generate(encsearch::Preset::for_dim(full_dim)?.params()?, &mut rng)?;
    let public = keys.public().clone();
    let client = Client::new(keys, full_dim)?;
    let q = *client.quantizer();
    let server = ServerContext::new(&public, 1)?;
    // Quantised once: encrypted here, and compared with the decrypted scores below.
    let qg = q.template_rows(full_gallery)?;
    let chunks = client.encrypt_coefficient_chunks(&qg, &mut rng)?;
    let n_gallery = full_gallery.len() / full_dim.max(1);
    let index: HashMap<String, usize> = (0..n_gallery).map(|g| (g.to_string(), g)).collect();

    let lists: Vec<Vec<usize>> = coarse.scores.iter().map(|row| top_indices(row, candidates)).collect();
    let probe_ids: Vec<String> = (0..n_probes).map(|p| p.to_string()).collect();
    let source = FineChunks { quantizer: &q, chunks: &chunks, index: &index };
    let session = Session::new(&client);
    let (mut matches, mut fine_timings, mut fine_ciphertexts) = (Vec::new(), Timings::default(), 0usize);
    // In queries of PROBES_PER_QUERY probes, as the first stage (memory stays bounded).
    for start in (0..n_probes).step_by(PROBES_PER_QUERY) {
        let end = (start + PROBES_PER_QUERY).min(n_probes);
        let fine = session.rescore(
            &probe_ids[start..end],
            &full_probes[start * full_dim..end * full_dim],
            lists[start..end].iter().map(|l| l.iter().map(usize::to_string).collect()).collect(),
            candidates,
            &mut rng,
            |fq| server.score_candidates(fq, &source),
        )?;
        fine_timings += fine.timings;
        fine_ciphertexts += fine.ciphertexts;
        matches.extend(fine.matches);
    }

    // Candidates sit above every other template: fine scores and first-stage scores are both
    // below t/2 < 2^31 in magnitude, so a 2^40 offset separates the two bands.
    const BAND: i64 = 1 << 40;
    let mut scores: Vec<Vec<i64>> = coarse.scores.iter().map(|row| row.iter().map(|s| s - BAND).collect()).collect();
    let qp = q.probe_rows(&full_probes[..n_probes * full_dim])?;
    let mut exact = coarse.exact;
    let mut seen = 0usize;
    for m in &matches {
        let (p, g) = match (m.probe_id.parse::<usize>(), m.gallery_id.parse::<usize>()) {
            (Ok(p), Ok(g)) if p < n_probes && g < n_gallery => (p, g),
            _ => {
                return Err(Error::Encrypted(format!(
                    "fine stage returned unknown ids {} / {}",
                    m.probe_id, m.gallery_id
                )));
            }
        };
        exact &= m.score == int_dot(&qp[p], &qg[g]);
        scores[p][g] = m.score + BAND;
        seen += 1;
    }
    exact &= seen == lists.iter().map(Vec::len).sum::<usize>();
    let per = n_probes.max(1) as f64;
    Ok(TwoStageRun {
        scores,
        coarse,
        fine_encrypt_ms: fine_timings.encrypt * 1e3 / per,
        fine_score_ms: fine_timings.score * 1e3 / per,
        fine_decrypt_ms: fine_timings.decrypt * 1e3 / per,
        fine_ciphertexts: fine_ciphertexts as f64 / per,
        fine_scale: q.scale,
        exact,
    })
}

#[cfg(test)]
mod tests {
    use super::top_indices;

    #[test]
    fn top_indices_keeps_the_best_with_index_ties() {
        let mut t = top_indices(&[3, 9, 9, 1, 7], 3);
        t.sort();
        assert_eq!(t, vec![1, 2, 4]);
        assert_eq!(top_indices(&[5, 5, 5], 1), vec![0]);
        assert!(top_indices(&[], 4).is_empty());
    }
}
