//! The server: scores encrypted probes against a gallery in the hot form. Nothing here takes a
//! secret key: the only key material the server ever holds is [`PublicParams`] (and, for the
//! HERS baseline, a relinearisation key).
//!
//! * [`ServerContext::score`]: a query against anything that yields chunks ([`ChunkSource`]:
//!   a gallery held hot in memory or mapped from its cache, a stored gallery streamed chunk by
//!   chunk, a slice of chunks, one chunk for 1:1 verification);
//! * [`ServerContext::score_candidates`]: the second stage of a two-stage search, over the
//!   chunks that hold the client's candidates ([`CandidateSource`]);
//! * `baseline.rs`: the HERS algorithm, kept to measure against.

mod accumulator;
mod baseline;
mod source;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use fhe::bfv::BfvParameters;
use num_bigint::BigUint;
use rayon::prelude::*;

use crate::compact::{FinishScratch, Finisher, PreparedKey, ScoreForm};
use crate::error::{Error, Result};
use crate::hot::{HotBasis, HotCacheReport, HotChunk, HotGallery, HotProbe};
use crate::kernel::{Kernel, Ntt, Ntt32, PROBE_ROWS, Rescaler, Simd, tensor_sum_narrow};
use crate::keys::{KeyId, PublicParams};
use crate::quantize::Metric;
use crate::store::Gallery;
use crate::wire::{
    ChunkScores, EncryptedChunk, EncryptedProbe, FineQuery, FineResponse, GatheredChunk, Query, Response,
};

use accumulator::Accumulator;
pub use baseline::HersBaseline;
pub use source::{CandidateSource, ChunkSource, FineChunks, GalleryChunk, HotSlice};

/// Chunks one worker scores together on the narrow form, each probe in its own pass over the
/// group (each probe block then serves every chunk of the group from L1).
///
/// Measured on the narrow form (AMD EPYC Zen 5, 2 cores, 1M × 16-D, `hers --simd avx2 bench
/// search`, `examples/multi_probe`): passes of 2 probes cost 130 % of as many single scans, and
/// of 1–8 probes over groups of 1–8 chunks never less than 100 %: the kernel is bound by its
/// multiplies, not by the gallery reads a batch shares; the inverse NTTs and the down-scaling
/// (≈ 40 % of a scan) are per (probe, chunk) pair; and the score rows (294 KB per pair) of more
/// than two pairs spill out of L2. So one probe per pass, two chunks per group.
const GROUP: usize = 2;

/// Most probes in one pass over a gallery held hot in the wide form, when a query has more
/// (its probes then take several passes). Each chunk's pass reads every probe's hot form
/// (4 MB at 16-D), so a pass of 8 or more cycles 32 MB or more per chunk through this machine's
/// 32 MB L3 — the likely reason for what was measured (AMD
/// EPYC Zen 5, IFMA, 1M × 16-D, `hers bench search --batch B`): one pass of 4 probes costs 91 %
/// of 4 single scans, one of 8 104–111 % of 8. A gallery streamed from its at-rest form keeps
/// every probe in one pass (there each chunk's preparation, shared by the pass, dominates).
const WIDE_PASS: usize = 4;

/// A probe to score and its query's compact-answer key, prepared.
type ProbeJob<'q> = (&'q EncryptedProbe, Option<Arc<PreparedKey>>);

/// Words between the narrow form's score rows beyond the ring degree (one cache line).
const ROW_PAD: usize = 16;

/// Words of a narrow hot form (u32 residues in the u64 storage), checked to be `len` long.
fn narrow_words(w: &[u64], len: usize) -> Result<&[u32]> {
    bytemuck::try_cast_slice::<u64, u32>(w)
        .ok()
        .filter(|v| v.len() == len)
        .ok_or_else(|| Error::InvalidArgument { reason: "hot form of another context".into() })
}

/// Server-side state for one (key, chunk shape): the multiplication basis, the kernel, the
/// NTTs and the down-scaling. Built from public material only.
#[derive(Debug, Clone)]
pub struct ServerContext {
    basis: HotBasis,
    kernel: Kernel,
    down: Rescaler,
    ntt: Arc<[Ntt]>,
    simd: Simd,
    /// The last step of compact answers, or why the parameters allow none.
    compact: std::result::Result<Arc<Finisher>, String>,
}

impl ServerContext {
    /// Prepares scoring of chunks of `rows` ciphertexts (the template dimension for a
    /// dimension-wise gallery, 1 for a coefficient-layout one; see [`crate::Quantizer::rows`]
    /// and [`crate::Layout::cts_per_chunk`]) with every vector build the CPU has.
    pub fn new(public: &PublicParams, rows: usize) -> Result<Self> {
        Self::with_simd(public, rows, Simd::detect())
    }

    /// [`ServerContext::new`] with the vector builds `simd` allows.
    pub fn with_simd(public: &PublicParams, rows: usize, simd: Simd) -> Result<Self> {
        let basis = HotBasis::new(public, rows, simd)?;
        let bfv = basis.bfv().clone();
        let ext_ctx = basis.ext_ctx().clone();
        // One rounding from Q∪P straight to the response modulus q0: the BFV `t/Q` down-scaling
        // and the modulus switch `q0/Q` combined into the factor `t·q0 / Q²`.
        let resp_ctx = bfv.context_at_level(bfv.max_level())?.clone();
        let q = bfv.context_at_level(0)?.modulus().clone();
        let kernel = Kernel::select(ext_ctx.moduli(), basis.is_narrow(), simd);
        // What each residue arrives divided by: the IFMA kernel's Montgomery factor, or N⁻¹
        // for the narrow basis' unnormalised inverse NTT.
        let factors: Vec<u64> = match basis.narrow_ntts() {
            Some(ntts) => ntts.iter().map(Ntt32::output_factor).collect(),
            None => ext_ctx.moduli_operators().iter().map(|m| kernel.output_factor(m)).collect(),
        };
        let compact =
            Finisher::new(&public.params, ext_ctx.moduli(), &factors, simd).map(Arc::new).map_err(|e| e.to_string());
        let down = Rescaler::new(
            ext_ctx.moduli(),
            &factors,
            &(BigUint::from(public.params.plaintext) * resp_ctx.modulus()),
            &(&q * &q),
            public.params.response_modulus(),
            simd,
        )?;
        let n = public.params.degree;
        let ntt = match basis.is_narrow() {
            true => Vec::new().into(),
            false => {
                ext_ctx.moduli_operators().iter().map(|q| Ntt::new(q, n, simd)).collect::<Result<Vec<_>>>()?.into()
            }
        };
        Ok(Self { basis, kernel, down, ntt, simd, compact })
    }

    /// The context of a stored gallery (public material only): one probe ciphertext per
    /// chunk ciphertext.
    pub fn for_gallery(gallery: &Gallery) -> Result<Self> {
        Self::for_gallery_with(gallery, Simd::detect())
    }

    /// [`ServerContext::for_gallery`] with the vector builds `simd` allows.
    pub fn for_gallery_with(gallery: &Gallery, simd: Simd) -> Result<Self> {
        Self::with_simd(&gallery.manifest().public, gallery.cts_per_chunk(), simd)
    }

    /// The build of the scoring kernel this context runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The vector builds this context was made with.
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// The public parameters this context serves.
    pub fn public(&self) -> &PublicParams {
        self.basis.public()
    }

    /// Ciphertexts per chunk (and per probe).
    pub fn rows(&self) -> usize {
        self.basis.rows()
    }

    /// fhe's parameter object (public).
    pub fn bfv(&self) -> &Arc<BfvParameters> {
        self.basis.bfv()
    }

    /// Whether this context scores the narrow hot form (u32 residues of primes below 2^29,
    /// chosen where AVX2 runs without IFMA) rather than the wide one.
    pub fn is_narrow(&self) -> bool {
        self.basis.is_narrow()
    }

    /// Moduli of the multiplication basis (`Q ∪ P`, or the narrow basis).
    pub fn extended_moduli(&self) -> &[u64] {
        self.basis.extended_moduli()
    }

    /// Bytes per template of the hot form.
    pub fn hot_bytes_per_template(&self) -> usize {
        self.basis.hot_bytes_per_template()
    }

    /// Converts a stored chunk to the hot form (basis extension, then NTT).
    pub fn prepare_chunk(&self, chunk: &EncryptedChunk) -> Result<HotChunk> {
        self.basis.prepare_chunk(chunk)
    }

    /// Converts chunks to the hot form on all cores.
    pub fn prepare_chunks(&self, chunks: &[EncryptedChunk]) -> Result<Vec<HotChunk>> {
        self.basis.prepare_chunks(chunks)
    }

    /// Loads a stored gallery's hot form on all cores (no cache file read or written).
    pub fn load_hot(&self, gallery: &Gallery) -> Result<HotGallery> {
        Ok(HotGallery::load(gallery, &self.basis, None)?.0)
    }

    /// Loads a stored gallery's hot form through its cache files `seg-N.hot`, writing the
    /// missing ones when `write`: each segment's cache is mapped where it holds, the others are
    /// built (a failed cache write is reported, not an error).
    pub fn load_hot_cached(&self, gallery: &Gallery, write: bool) -> Result<(HotGallery, HotCacheReport)> {
        HotGallery::load(gallery, &self.basis, Some(write))
    }

    /// Brings `hot` up to what `gallery` has committed since it was loaded: the segments
    /// appended since are loaded as [`ServerContext::load_hot_cached`] does, the chunks held
    /// already are kept (a committed segment never changes) and the slot ids are taken afresh
    /// (removals). A server makes each new gallery version this way, at the cost of the new
    /// segments only.
    pub fn refresh_hot(&self, hot: &mut HotGallery, gallery: &Gallery, write: bool) -> Result<HotCacheReport> {
        hot.refresh(gallery, &self.basis, Some(write))
    }

    /// Scores one chunk: lazy tensor sum over all dimensions, one `t/Q` scaling, then a
    /// modulus switch down to `q0`. Returns the degree-2 score ciphertext.
    pub(crate) fn score_chunk(&self, probe: &HotProbe, chunk: &HotChunk, acc: &mut Accumulator) -> Result<ChunkScores> {
        let mut scores = self.score_group(&[probe], &[chunk], acc)?;
        scores
            .pop()
            .and_then(|mut c| c.pop())
            .ok_or_else(|| Error::InvalidArgument { reason: "no probe to score".into() })
    }

    /// Scores a group of chunks against every probe of a batch (see
    /// [`ServerContext::score_chunk`]): `scores[chunk][probe]`. On the narrow form each block of
    /// a chunk is loaded once for every probe, and each block of a probe once for every chunk.
    pub(crate) fn score_group(
        &self,
        probes: &[&HotProbe],
        chunks: &[&HotChunk],
        acc: &mut Accumulator,
    ) -> Result<Vec<Vec<ChunkScores>>> {
        let narrow = self.basis.is_narrow();
        if probes.iter().any(|p| p.narrow != narrow) || chunks.iter().any(|c| c.is_narrow() != narrow) {
            return Err(Error::InvalidArgument {
                reason: "hot form of another context (wide and narrow forms do not mix)".into(),
            });
        }
        if let Some(ntts) = self.basis.narrow_ntts() {
            return self.score_narrow(probes, chunks, ntts, acc);
        }
        chunks.iter().map(|c| self.score_wide(probes, c, acc)).collect()
    }

    /// [`ServerContext::score_group`] of one chunk on the wide form (u64 words): per prime, the
    /// kernel writes every probe's `c0 | c1 | c2` (the IFMA build four probes per pass over the
    /// chunk), each row goes to the coefficient domain, then each probe's last step.
    fn score_wide(&self, probes: &[&HotProbe], chunk: &HotChunk, acc: &mut Accumulator) -> Result<Vec<ChunkScores>> {
        let n = self.public().params.degree;
        let rows = self.rows();
        let ext = self.basis.ext_ctx();
        let np = ext.moduli().len();
        let stride = 2 * rows * n;
        let pstride = PROBE_ROWS * rows * n;
        let words = chunk.words();
        if probes.iter().any(|p| p.data.len() != np * pstride) || words.len() != np * stride {
            return Err(Error::InvalidArgument { reason: "hot form of another context".into() });
        }
        // `[probe][prime][part][coefficient]`: the kernel writes a prime's `c0 | c1 | c2` in
        // place, and each row goes to the coefficient domain while it is in cache.
        let per_probe = 3 * np * n;
        acc.polys.resize(probes.len() * per_probe, 0);
        for (i, (q, ntt)) in ext.moduli_operators().iter().zip(self.ntt.iter()).enumerate() {
            let rows_i: Vec<&[u64]> = probes.iter().map(|p| &p.data[i * pstride..][..pstride]).collect();
            let mut outs: Vec<&mut [u64]> =
                acc.polys.chunks_exact_mut(per_probe).map(|p| &mut p[3 * i * n..][..3 * n]).collect();
            self.kernel.tensor_sum_batch(q, &rows_i, &words[i * stride..][..stride], rows, n, &mut outs);
            outs.iter_mut().for_each(|o| o.chunks_exact_mut(n).for_each(|row| ntt.backward(row)));
        }
        let Accumulator { polys, finish, .. } = acc;
        probes
            .iter()
            .zip(polys.chunks_exact(per_probe))
            .map(|(probe, polys)| {
                let scale = |r: &Rescaler, part: usize, dst: &mut [u64]| {
                    let rows: Vec<&[u64]> = (0..np).map(|i| &polys[(3 * i + part) * n..][..n]).collect();
                    r.scale_poly(&rows, dst);
                };
                self.finish(probe, n, finish, scale)
            })
            .collect()
    }

    /// The last step of one (probe, chunk): the full answer's three down-scalings, or the
    /// compact answer's relinearisation and switch (`compact/`) when the probe's query asked for
    /// it. `scale(rescaler, part, out)` down-scales part `part` of the tensor sum.
    fn finish(
        &self,
        probe: &HotProbe,
        n: usize,
        scratch: &mut FinishScratch,
        scale: impl Fn(&Rescaler, usize, &mut [u64]),
    ) -> Result<ChunkScores> {
        match (&probe.compact, &self.compact) {
            (None, _) => {
                let polys = (0..3)
                    .map(|part| {
                        let mut dst = vec![0u64; n];
                        scale(&self.down, part, &mut dst);
                        dst
                    })
                    .collect();
                Ok(ChunkScores { polys, form: ScoreForm::Full })
            }
            (Some(key), Ok(f)) => Ok(ChunkScores { polys: f.finish(key, n, scratch, scale), form: f.form() }),
            (Some(_), Err(why)) => Err(no_compact(why)),
        }
    }

    /// [`ServerContext::score_group`] on the narrow form (u32 words): per prime, the kernel
    /// writes each (probe, chunk) pair's `c0 | c1 | c2` straight into its score rows
    /// (`[pair][prime][part][coefficient]`, pairs probe-major, rows padded), which the inverse NTT then turns
    /// in place while they are in L2.
    fn score_narrow(
        &self,
        probes: &[&HotProbe],
        chunks: &[&HotChunk],
        ntts: &[Ntt32],
        acc: &mut Accumulator,
    ) -> Result<Vec<Vec<ChunkScores>>> {
        let n = self.public().params.degree;
        let rows = self.rows();
        let moduli = self.basis.extended_moduli();
        let np = moduli.len();
        let (stride, pstride) = (2 * rows * n, PROBE_ROWS * rows * n);
        let chunk_words = chunks.iter().map(|c| narrow_words(c.words(), np * stride)).collect::<Result<Vec<_>>>()?;
        let probe_words = probes.iter().map(|p| narrow_words(&p.data, np * pstride)).collect::<Result<Vec<_>>>()?;
        // Rows `ROW_PAD` words apart beyond n: a power-of-two row stride would put every output
        // stream of the kernel (3 per pair) in the same L1 sets as the probe and chunk blocks
        // it reads (all page-aligned), and evict them.
        let row = n + ROW_PAD;
        let per_pair = 3 * np * row;
        acc.polys32.resize(probes.len() * chunks.len() * per_pair, 0);
        for (i, (&q, ntt)) in moduli.iter().zip(ntts).enumerate() {
            let probe_rows: Vec<&[u32]> = probe_words.iter().map(|p| &p[i * pstride..][..pstride]).collect();
            let chunk_rows: Vec<&[u32]> = chunk_words.iter().map(|c| &c[i * stride..][..stride]).collect();
            let mut outs: Vec<[&mut [u32]; 3]> = acc
                .polys32
                .chunks_exact_mut(per_pair)
                .map(|p| {
                    let (c0, rest) = p[i * 3 * row..][..3 * row].split_at_mut(row);
                    let (c1, c2) = rest.split_at_mut(row);
                    [&mut c0[..n], &mut c1[..n], &mut c2[..n]]
                })
                .collect();
            tensor_sum_narrow(q as u32, &probe_rows, &chunk_rows, rows, n, &mut outs, self.simd.avx2());
            for out in outs {
                out.into_iter().for_each(|r| ntt.backward(r));
            }
        }
        let Accumulator { polys32, finish, .. } = acc;
        let mut pair = |p: usize, c: usize| {
            let polys = &polys32[(p * chunks.len() + c) * per_pair..][..per_pair];
            let scale = |r: &Rescaler, part: usize, dst: &mut [u64]| {
                let rows: Vec<&[u32]> = (0..np).map(|i| &polys[(i * 3 + part) * row..][..n]).collect();
                r.scale_poly_narrow(&rows, dst);
            };
            self.finish(probes[p], n, finish, scale)
        };
        (0..chunks.len()).map(|c| (0..probes.len()).map(|p| pair(p, c)).collect()).collect()
    }

    /// Scores every probe against every chunk of `source` on all cores, by groups of chunks
    /// (`GROUP` on the narrow form, one chunk on the wide form): each chunk is obtained once
    /// and scored against every probe while it is in cache, and `on_chunk(i, scores)` receives
    /// chunk i's score of every probe (in probe order) once its group is done, on the worker that
    /// scored it (groups complete in any order, chunks in order within a group).
    pub fn score_each_chunk<S, T, F>(&self, queries: &[&Query], source: &S, on_chunk: F) -> Result<Vec<T>>
    where
        S: ChunkSource + ?Sized,
        T: Send,
        F: Fn(usize, Vec<ChunkScores>) -> Result<T> + Sync,
    {
        source.check(self)?;
        self.score_probes(&self.probe_jobs(queries)?, source, on_chunk)
    }

    /// Every probe of `queries` with its query's compact-answer key prepared (once per query).
    fn probe_jobs<'q>(&self, queries: &[&'q Query]) -> Result<Vec<ProbeJob<'q>>> {
        let mut jobs = Vec::new();
        for q in queries {
            let key = match (&q.compact, &self.compact) {
                (None, _) => None,
                (Some(k), Ok(f)) => Some(Arc::new(f.prepare(k)?)),
                (Some(_), Err(why)) => return Err(no_compact(why)),
            };
            jobs.extend(q.probes.iter().map(|p| (p, key.clone())));
        }
        Ok(jobs)
    }

    /// [`ServerContext::score_each_chunk`] of `jobs` in one pass over `source` (checked by the
    /// caller).
    fn score_probes<S, T, F>(&self, jobs: &[ProbeJob<'_>], source: &S, on_chunk: F) -> Result<Vec<T>>
    where
        S: ChunkSource + ?Sized,
        T: Send,
        F: Fn(usize, Vec<ChunkScores>) -> Result<T> + Sync,
    {
        let probes = jobs
            .par_iter()
            .map(|(p, key)| Ok(HotProbe { compact: key.clone(), ..self.basis.prepare_probe(p)? }))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&HotProbe> = probes.iter().collect();
        let count = source.chunk_count();
        let group = self.group_size(count);
        (0..count.div_ceil(group))
            .into_par_iter()
            .map_init(Accumulator::default, |acc, g| {
                let range = g * group..((g + 1) * group).min(count);
                let hot = range.clone().map(|i| source.hot_chunk(self, i)).collect::<Result<Vec<_>>>()?;
                let hot_refs: Vec<&HotChunk> = hot.iter().map(|h| h.as_ref()).collect();
                let scores = match self.basis.is_narrow() {
                    // The wide form's kernel takes the probes together (four per pass over a chunk).
                    false => self.score_group(&refs, &hot_refs, acc)?,
                    // The narrow form: one pass per probe over the group (see GROUP for why).
                    true => {
                        let mut scores: Vec<Vec<ChunkScores>> = vec![Vec::with_capacity(refs.len()); hot.len()];
                        for probe in &refs {
                            for (all, part) in scores.iter_mut().zip(self.score_group(&[probe], &hot_refs, acc)?) {
                                all.extend(part);
                            }
                        }
                        scores
                    }
                };
                range.zip(scores).map(|(i, s)| on_chunk(i, s)).collect::<Result<Vec<T>>>()
            })
            .collect::<Result<Vec<Vec<T>>>>()
            .map(|v| v.into_iter().flatten().collect())
    }

    /// Chunks scored together by one worker: [`GROUP`] on the narrow form, unless that would
    /// leave a core fewer than four groups; 1 on the wide form.
    fn group_size(&self, chunks: usize) -> usize {
        match self.basis.is_narrow() {
            true => GROUP.min(chunks / (4 * rayon::current_num_threads())).max(1),
            false => 1,
        }
    }

    /// [`ServerContext::score_each_chunk`] of one query (checked against `source` by the
    /// caller) gathered: `scores[probe][chunk]`. On a gallery held hot in the wide form, passes
    /// of at most [`WIDE_PASS`] probes.
    fn score_chunk_major<S: ChunkSource + ?Sized>(&self, query: &Query, source: &S) -> Result<Vec<Vec<ChunkScores>>> {
        let jobs = self.probe_jobs(&[query])?;
        let pass = match (self.basis.is_narrow(), source.held_hot()) {
            (false, true) => WIDE_PASS,
            _ => jobs.len().max(1),
        };
        let mut scores: Vec<Vec<ChunkScores>> = vec![Vec::with_capacity(source.chunk_count()); jobs.len()];
        for (g, group) in jobs.chunks(pass).enumerate() {
            for chunk in self.score_probes(group, source, |_, scores| Ok(scores))? {
                for (p, cs) in chunk.into_iter().enumerate() {
                    scores[g * pass + p].push(cs);
                }
            }
        }
        Ok(scores)
    }

    /// Checks, before any scoring, that `query` can be scored against `source`: made with this
    /// context's key, quantised at the source's scale for its metric, one ciphertext per row.
    /// Returns the source's scale and metric.
    pub fn check_query<S: ChunkSource + ?Sized>(&self, query: &Query, source: &S) -> Result<(u32, Metric)> {
        let quantised = source.check(self)?;
        self.check_query_against(&query.key_id, (query.scale, query.metric), quantised)?;
        if let Some(p) = query.probes.iter().find(|p| p.dim() != self.rows()) {
            return Err(Error::DimensionMismatch { expected: self.rows(), actual: p.dim() });
        }
        if let (Some(_), Err(why)) = (&query.compact, &self.compact) {
            return Err(no_compact(why));
        }
        Ok(quantised)
    }

    /// How the answer to `query` is encoded: compact when it carries a compact-answer key.
    pub fn answer_form(&self, query: &Query) -> ScoreForm {
        match (&query.compact, &self.compact) {
            (Some(_), Ok(f)) => f.form(),
            _ => ScoreForm::Full,
        }
    }

    /// Checks that a query (its key id, scale and metric) was made for this key and gallery.
    fn check_query_against(&self, key_id: &KeyId, query: (u32, Metric), gallery: (u32, Metric)) -> Result<()> {
        self.public().key_id.ensure_eq(key_id)?;
        if query != gallery {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "query quantised at scale {} for {:?}, gallery at scale {} for {:?}",
                    query.0, query.1, gallery.0, gallery.1
                ),
            });
        }
        Ok(())
    }

    /// Answers a query against every chunk of `source`: a gallery held hot ([`HotGallery`],
    /// [`HotSlice`]), streamed from its at-rest segments ([`Gallery`]: memory stays at a few
    /// chunks per core whatever the gallery size, at the price of the hot-form preparation on
    /// every query), or the one chunk of a claimed id ([`GalleryChunk`]).
    pub fn score<S: ChunkSource + ?Sized>(&self, query: &Query, source: &S) -> Result<Response> {
        let quantised = self.check_query(query, source)?;
        let scores = self.score_chunk_major(query, source)?;
        Ok(Response {
            key_id: self.public().key_id.clone(),
            degree: self.public().params.degree,
            modulus: self.public().params.response_modulus(),
            form: self.answer_form(query),
            scale: quantised.0,
            metric: quantised.1,
            slot_ids: source.slot_ids(),
            probe_ids: query.probe_ids.clone(),
            scores,
        })
    }

    /// Second stage of a two-stage search: for each probe, gathers the coefficient-layout chunks
    /// of `source` that hold its candidates and multiplies each by the probe once (one tensor
    /// product scores every template of the chunk; the client reads only the candidates' blocks).
    /// The server learns the candidate ids, nothing else.
    pub fn score_candidates<S: CandidateSource + ?Sized>(&self, query: &FineQuery, source: &S) -> Result<FineResponse> {
        let q = source.check(self)?;
        if self.rows() != 1 {
            return Err(Error::InvalidArgument {
                reason: "the fine stage needs the context of a coefficient-layout gallery".into(),
            });
        }
        self.check_query_against(&query.key_id, (query.scale, query.metric), (q.scale, q.metric))?;
        let probes = query
            .probes
            .iter()
            .map(|fp| {
                let hp = self.basis.prepare_probe(&fp.probe)?;
                let mut by_chunk: BTreeMap<usize, Vec<(String, usize)>> = BTreeMap::new();
                for (id, (chunk, block)) in fp.candidates.iter().zip(source.locate(self, &fp.candidates)?) {
                    by_chunk.entry(chunk).or_default().push((id.clone(), block));
                }
                let chunks = by_chunk
                    .into_par_iter()
                    .map_init(Accumulator::default, |acc, (ci, candidates)| {
                        let hot: Cow<'_, HotChunk> = source.hot_chunk(self, ci)?;
                        Ok(GatheredChunk { candidates, scores: self.score_chunk(&hp, &hot, acc)? })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((fp.probe_id.clone(), chunks))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FineResponse {
            key_id: self.public().key_id.clone(),
            degree: self.public().params.degree,
            modulus: self.public().params.response_modulus(),
            rows: q.rows(),
            scale: q.scale,
            metric: q.metric,
            probes,
        })
    }
}

/// The error of a compact query where the parameters allow no compact answers (`why`).
fn no_compact(why: &str) -> Error {
    Error::InvalidArgument {
        reason: format!(
            "this gallery's parameters allow no compact answers ({why}); send the query without a compact key \
             (hers client --full-answers)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, ClientKeys, Preset, int_dot};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// A batch of probes against a group of chunks (the narrow form's shared passes, the wide
    /// form's loops) scores every (probe, chunk) pair exactly, on every build the CPU has.
    #[test]
    fn groups_and_batches_score_every_pair_exactly() {
        let dim = 16;
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
        let client = Client::new(keys, dim).expect("client");
        let (n, s) = (client.chunk_size(), client.quantizer().scale as i64);
        let gallery: Vec<Vec<i64>> =
            (0..2 * n + 100).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
        let chunks = client.encrypt_quantized(&gallery, &mut rng).expect("encrypt");
        let probes: Vec<Vec<i64>> = (0..3).map(|_| (0..dim).map(|_| rng.random_range(-s..=s)).collect()).collect();
        let encrypted: Vec<_> = probes.iter().map(|p| client.encrypt_probe(p, &mut rng).expect("probe")).collect();
        for simd in [Simd::detect(), Simd::without_avx512(), Simd::portable()] {
            let server = ServerContext::with_simd(client.keys().public(), dim, simd).expect("server");
            let hot = server.prepare_chunks(&chunks).expect("hot");
            let hot_probes: Vec<HotProbe> =
                encrypted.iter().map(|p| server.basis.prepare_probe(p).expect("probe")).collect();
            let probe_refs: Vec<&HotProbe> = hot_probes.iter().collect();
            let chunk_refs: Vec<&HotChunk> = hot.iter().collect();
            let scores = server.score_group(&probe_refs, &chunk_refs, &mut Accumulator::default()).expect("score");
            // The other form (where this CPU has both) is refused, not misread.
            let other = ServerContext::with_simd(client.keys().public(), dim, Simd::portable()).expect("server");
            if other.basis.is_narrow() != server.basis.is_narrow() {
                let wide = other.prepare_chunk(&chunks[0]).expect("hot");
                let err = server.score_group(&probe_refs, &[&wide], &mut Accumulator::default());
                assert!(err.is_err_and(|e| e.to_string().contains("another context")), "{:?}", server.kernel());
            }
            assert_eq!(scores.len(), chunks.len());
            for (c, per_probe) in scores.iter().enumerate() {
                for (p, cs) in per_probe.iter().enumerate() {
                    let got = client.decrypt_chunk(cs).expect("decrypt");
                    for (k, v) in got.iter().enumerate() {
                        let want = gallery.get(c * n + k).map_or(0, |g| int_dot(g, &probes[p]));
                        assert_eq!(*v, want, "{:?}: chunk {c}, probe {p}, slot {k}", server.kernel());
                    }
                }
            }
        }
    }
}
