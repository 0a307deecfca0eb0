//! The server: stores the encrypted gallery in the form the hot loop reads and scores
//! encrypted probes against it. Nothing here takes a secret key: the only key material the
//! server ever holds is [`PublicParams`] (and, for the HERS baseline, a relinearisation key).

use std::borrow::Cow;
use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, Multiplicator, RelinearizationKey};
use fhe_math::rq::{Context, Representation};
use fhe_math::zq::primes::generate_prime;
use num_bigint::BigUint;
use rayon::prelude::*;

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::extend::Extender;
use crate::gallery::Gallery;
use crate::hotcache::HotWords;
use crate::keys::{KeyId, PublicParams};
use crate::ntt::Ntt;
use crate::pack::Layout;
use crate::protocol::{
    ChunkScores, EncryptedChunk, EncryptedProbe, FineQuery, FineResponse, GatheredChunk, Query, Response,
};
use crate::quantize::{Metric, Quantizer};
use crate::rescale::Rescaler;
use crate::score::{Accumulator, IFMA_MAX_BITS, Kernel, PROBE_ROWS, probe_rows, scatter_row};

/// A gallery chunk in the hot form: both ciphertext polynomials of every dimension, extended
/// to the multiplication basis `Q ∪ P` and in NTT form, laid out
/// `[prime][slot / 8][dim][part][slot % 8]` so that the kernel reads it sequentially.
#[derive(Debug, Clone)]
pub struct HotChunk {
    data: HotWords,
}

impl HotChunk {
    /// Bytes of hot form (in memory, or mapped from the gallery's cache file).
    pub fn bytes(&self) -> usize {
        self.words().len() * 8
    }

    /// Whether the words are mapped from a cache file rather than built in memory.
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, HotWords::Mapped { .. })
    }

    pub(crate) fn words(&self) -> &[u64] {
        self.data.words()
    }

    pub(crate) fn from_words(data: HotWords) -> Self {
        Self { data }
    }
}

/// A probe in the hot form (`[prime][slot / 8][dim][a0, a1][slot % 8]`), prepared once per
/// query.
#[derive(Debug, Clone)]
pub struct HotProbe {
    data: Vec<u64>,
}

/// A whole gallery in the hot form, with the id of every global slot.
#[derive(Debug, Clone, Default)]
pub struct HotGallery {
    /// Chunks, in global slot order.
    pub chunks: Vec<HotChunk>,
    /// Gallery id of each global slot (`None`: empty or removed).
    pub slot_ids: Arc<Vec<Option<String>>>,
    /// Quantisation scale the gallery was enrolled at.
    pub scale: u32,
    /// Matching function of the gallery.
    pub metric: Metric,
}

impl HotGallery {
    /// Bytes of ciphertext held in memory.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(HotChunk::bytes).sum()
    }
}

/// Server-side state for one (key, dimension): parameters, the multiplication basis and the
/// scalers. Built from public material only.
#[derive(Debug, Clone)]
pub struct ServerContext {
    public: PublicParams,
    dim: usize,
    bfv: Arc<BfvParameters>,
    q_ctx: Arc<Context>,
    ext_ctx: Arc<Context>,
    extender: Extender,
    down: Rescaler,
    kernel: Kernel,
    ntt: Arc<[Ntt]>,
}

impl ServerContext {
    /// Prepares scoring of templates packed as `dim` rows (see [`crate::Quantizer::rows`]).
    ///
    /// The extension primes P make `M = Q·P ≥ 4·d·N·Q²`: a coefficient of the sum of `d`
    /// tensor products of centred lifts is at most `2·d·N·(Q/2)² ≤ M/8` in magnitude, so it is
    /// exact in `Q ∪ P` before the single `t/Q` scaling, and the 1/8 margin is what
    /// down-scaling (`rescale.rs`) relies on. They are 48-bit when every prime of Q is (so the IFMA
    /// kernel can run, [`Kernel`]), 60-bit otherwise.
    pub fn new(public: &PublicParams, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::InvalidArgument { reason: "dimension 0".into() });
        }
        let bfv = public.params.bfv()?;
        let n = public.params.degree;
        let q_ctx = bfv.context_at_level(0)?.clone();
        let log_q = public.params.log_q();
        let need = (dim as f64).log2() + (n as f64).log2() + 2.0 * log_q + 2.0;
        let extend = |bits: usize| -> Result<Vec<u64>> {
            let mut moduli = public.params.moduli.clone();
            let (mut have, mut upper) = (log_q, 1u64 << bits);
            while have < need {
                let p = generate_prime(bits, 2 * n as u64, upper)
                    .ok_or_else(|| Error::params(format!("ran out of {bits}-bit extension primes")))?;
                upper = p;
                if !moduli.contains(&p) {
                    moduli.push(p);
                    have += (p as f64).log2();
                }
            }
            Ok(moduli)
        };
        // 48-bit P keeps every prime IFMA-sized, unless that takes more primes than the
        // down-scaling's IFMA build handles (7); then fewer, 60-bit ones.
        let small = match public.params.moduli.iter().all(|&q| q < 1 << IFMA_MAX_BITS) {
            true => extend(IFMA_MAX_BITS as usize).ok().filter(|m| m.len() <= 7),
            false => None,
        };
        let moduli = match small {
            Some(m) => m,
            None => extend(60)?,
        };
        let ext_ctx = Context::new_arc(&moduli, n)?;
        let q_len = public.params.moduli.len();
        let extender = Extender::new(&moduli[..q_len], &moduli[q_len..], n)?;
        // One rounding from Q∪P straight to the response modulus q0: the BFV `t/Q` down-scaling
        // and the modulus switch `q0/Q` combined into the factor `t·q0 / Q²`.
        let resp_ctx = bfv.context_at_level(bfv.max_level())?.clone();
        let q = q_ctx.modulus();
        let kernel = Kernel::select(ext_ctx.moduli());
        let factors: Vec<u64> = ext_ctx.moduli_operators().iter().map(|m| kernel.output_factor(m)).collect();
        let down = Rescaler::new(
            ext_ctx.moduli(),
            &factors,
            &(BigUint::from(public.params.plaintext) * resp_ctx.modulus()),
            &(q * q),
            public.params.response_modulus(),
        )?;
        let ntt = ext_ctx.moduli_operators().iter().map(|q| Ntt::new(q, n)).collect::<Result<Vec<_>>>()?.into();
        Ok(Self { public: public.clone(), dim, bfv, q_ctx, ext_ctx, extender, down, kernel, ntt })
    }

    /// The build of the scoring kernel this context runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The public parameters this context serves.
    pub fn public(&self) -> &PublicParams {
        &self.public
    }

    /// Template dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// fhe's parameter object (public).
    pub fn bfv(&self) -> &Arc<BfvParameters> {
        &self.bfv
    }

    /// Moduli of the multiplication basis `Q ∪ P`.
    pub fn extended_moduli(&self) -> &[u64] {
        self.ext_ctx.moduli()
    }

    /// u64 words of one chunk's hot form.
    pub fn hot_words_per_chunk(&self) -> usize {
        self.ext_ctx.moduli().len() * self.dim * 2 * self.public.params.degree
    }

    /// Bytes per template of the hot form.
    pub fn hot_bytes_per_template(&self) -> usize {
        self.dim * 2 * self.ext_ctx.moduli().len() * 8
    }

    /// The NTT-form rows mod Q of a top-level, 2-part ciphertext, each value checked below its
    /// prime (the kernels rely on it; a decoded ciphertext is not otherwise range-checked).
    fn q_rows<'a>(&self, ct: &'a Ciphertext, part: usize) -> Result<Vec<&'a [u64]>> {
        if ct.len() != 2 || ct[0].ctx() != &self.q_ctx || *ct[part].representation() != Representation::Ntt {
            return Err(Error::malformed("ciphertext", "expected 2 parts at the top level, in NTT form"));
        }
        ct[part]
            .coefficients()
            .into_outer_iter()
            .zip(&self.public.params.moduli)
            .map(|(r, &q)| {
                let r = r.to_slice().ok_or_else(|| Error::params("non-contiguous polynomial rows"))?;
                if r.iter().any(|&v| v >= q) {
                    return Err(Error::malformed("ciphertext", "coefficient not reduced"));
                }
                Ok(r)
            })
            .collect()
    }

    fn to_hot(&self, cts: &[Ciphertext]) -> Result<Vec<u64>> {
        if cts.len() != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, actual: cts.len() });
        }
        let n = self.public.params.degree;
        let np = self.ext_ctx.moduli().len();
        let stride = self.dim * 2 * n;
        let mut data = vec![0u64; np * stride];
        let mut scratch = Vec::new();
        for (j, ct) in cts.iter().enumerate() {
            for part in 0..2 {
                self.extender.extend(&self.q_rows(ct, part)?, &mut scratch, |i, row| {
                    scatter_row(self.dim, 2, j, part, row, &mut data[i * stride..(i + 1) * stride]);
                })?;
            }
        }
        Ok(data)
    }

    /// Converts a stored chunk to the hot form (basis extension + NTT, once per chunk).
    pub fn prepare_chunk(&self, chunk: &EncryptedChunk) -> Result<HotChunk> {
        Ok(HotChunk { data: HotWords::Owned(self.to_hot(&chunk.cts)?) })
    }

    /// Converts chunks to the hot form on all cores.
    pub fn prepare_chunks(&self, chunks: &[EncryptedChunk]) -> Result<Vec<HotChunk>> {
        chunks.par_iter().map(|c| self.prepare_chunk(c)).collect()
    }

    /// Converts a probe to the hot form (once per query).
    pub fn prepare_probe(&self, probe: &EncryptedProbe) -> Result<HotProbe> {
        if probe.cts.len() != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, actual: probe.cts.len() });
        }
        let n = self.public.params.degree;
        let pstride = self.dim * PROBE_ROWS * n;
        let mut data = vec![0u64; self.ext_ctx.moduli().len() * pstride];
        // Basis extension of every dimension on all cores (the costly part), then the layout.
        let parts = probe
            .cts
            .par_iter()
            .map(|ct| {
                let mut rows = vec![vec![0u64; n]; 2 * self.ext_ctx.moduli().len()];
                let mut scratch = Vec::new();
                for part in 0..2 {
                    self.extender.extend(&self.q_rows(ct, part)?, &mut scratch, |i, row| {
                        rows[2 * i + part].copy_from_slice(row)
                    })?;
                }
                Ok(rows)
            })
            .collect::<Result<Vec<_>>>()?;
        for (j, rows) in parts.iter().enumerate() {
            for i in 0..self.ext_ctx.moduli().len() {
                probe_rows(&rows[2 * i], &rows[2 * i + 1], self.dim, j, &mut data[i * pstride..(i + 1) * pstride]);
            }
        }
        Ok(HotProbe { data })
    }

    /// Scores one chunk: lazy tensor sum over all dimensions, one `t/Q` scaling, then a
    /// modulus switch down to `q0`. Returns the degree-2 score ciphertext.
    pub fn score_chunk(&self, probe: &HotProbe, chunk: &HotChunk, acc: &mut Accumulator) -> Result<ChunkScores> {
        let n = self.public.params.degree;
        let np = self.ext_ctx.moduli().len();
        let stride = 2 * self.dim * n;
        let pstride = PROBE_ROWS * self.dim * n;
        let words = chunk.words();
        if probe.data.len() != np * pstride || words.len() != np * stride {
            return Err(Error::InvalidArgument { reason: "hot form of another context".into() });
        }
        acc.out.resize(3 * n, 0);
        acc.polys.resize(3 * np * n, 0);
        // Kernel per prime, then each part's row of that prime to the coefficient domain.
        for (i, (q, ntt)) in self.ext_ctx.moduli_operators().iter().zip(self.ntt.iter()).enumerate() {
            self.kernel.tensor_sum(
                q,
                &probe.data[i * pstride..][..pstride],
                &words[i * stride..][..stride],
                self.dim,
                n,
                &mut acc.out,
            );
            for part in 0..3 {
                let row = &mut acc.polys[(part * np + i) * n..][..n];
                row.copy_from_slice(&acc.out[part * n..][..n]);
                ntt.backward(row);
            }
        }
        let mut polys: [Vec<u64>; 3] = Default::default();
        for (part, dst) in polys.iter_mut().enumerate() {
            let rows: Vec<&[u64]> = (0..np).map(|i| &acc.polys[(part * np + i) * n..][..n]).collect();
            dst.resize(n, 0);
            self.down.scale_poly(&rows, dst);
        }
        Ok(ChunkScores { polys })
    }

    /// Scores one probe against every chunk, on all cores.
    pub fn score_probe(&self, probe: &EncryptedProbe, chunks: &[HotChunk]) -> Result<Vec<ChunkScores>> {
        let mut scores =
            self.score_chunk_major(std::slice::from_ref(probe), chunks.len(), |i| Ok(Cow::Borrowed(&chunks[i])))?;
        Ok(scores.pop().unwrap_or_default())
    }

    /// Scores every probe against `count` chunks on all cores, chunk by chunk: `chunk(i)` is
    /// obtained once and scored against every probe while it is in cache. `scores[probe][chunk]`.
    fn score_chunk_major<'c>(
        &self,
        probes: &[EncryptedProbe],
        count: usize,
        chunk: impl Fn(usize) -> Result<Cow<'c, HotChunk>> + Sync,
    ) -> Result<Vec<Vec<ChunkScores>>> {
        let probes = probes.par_iter().map(|p| self.prepare_probe(p)).collect::<Result<Vec<_>>>()?;
        let per_chunk = (0..count)
            .into_par_iter()
            .map_init(Accumulator::default, |acc, i| {
                let hot = chunk(i)?;
                probes.iter().map(|hp| self.score_chunk(hp, &hot, acc)).collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut scores: Vec<Vec<ChunkScores>> = vec![Vec::with_capacity(count); probes.len()];
        for chunk in per_chunk {
            for (p, cs) in chunk.into_iter().enumerate() {
                scores[p].push(cs);
            }
        }
        Ok(scores)
    }

    /// Checks that a query (its key id, scale and metric) was made for this key and gallery.
    fn check_query(&self, key_id: &KeyId, query: (u32, Metric), gallery: (u32, Metric)) -> Result<()> {
        self.public.key_id.ensure_eq(key_id)?;
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

    /// The response to `query`: `scores[probe][chunk]` of a gallery with these slot ids.
    fn response(
        &self,
        query: &Query,
        gallery: (u32, Metric),
        slot_ids: Arc<Vec<Option<String>>>,
        scores: Vec<Vec<ChunkScores>>,
    ) -> Response {
        Response {
            key_id: self.public.key_id.clone(),
            degree: self.public.params.degree,
            modulus: self.public.params.response_modulus(),
            scale: gallery.0,
            metric: gallery.1,
            slot_ids,
            probe_ids: query.probe_ids.clone(),
            scores,
        }
    }

    /// Answers a query against a gallery.
    pub fn score(&self, query: &Query, gallery: &HotGallery) -> Result<Response> {
        let quantised = (gallery.scale, gallery.metric);
        self.check_query(&query.key_id, (query.scale, query.metric), quantised)?;
        let chunks = &gallery.chunks;
        let scores = self.score_chunk_major(&query.probes, chunks.len(), |i| Ok(Cow::Borrowed(&chunks[i])))?;
        Ok(self.response(query, quantised, gallery.slot_ids.clone(), scores))
    }

    /// Answers a query straight from the gallery's at-rest segments (memory-mapped): each chunk
    /// is brought to the hot form, scored against every probe and dropped, so memory stays at a
    /// few chunks per core whatever the gallery size. The price is the hot-form preparation on
    /// every query (about as long as the scoring itself); a gallery that fits in memory is
    /// faster through [`Gallery::load_hot_cached`] + [`ServerContext::score`].
    pub fn score_streaming(&self, query: &Query, gallery: &Gallery) -> Result<Response> {
        gallery.manifest().public.key_id.ensure_eq(&self.public.key_id)?;
        if gallery.layout() != Layout::DimensionWise || self.dim != gallery.cts_per_chunk() {
            return Err(Error::InvalidArgument {
                reason: format!("{} is not a dimension-wise gallery of this context", gallery.dir().display()),
            });
        }
        let q = gallery.quantizer();
        self.check_query(&query.key_id, (query.scale, query.metric), (q.scale, q.metric))?;
        let scores = self.score_chunk_major(&query.probes, gallery.chunk_count(), |i| {
            Ok(Cow::Owned(self.prepare_chunk(&gallery.chunk(i, self)?)?))
        })?;
        Ok(self.response(query, (q.scale, q.metric), Arc::new(gallery.slot_ids()), scores))
    }

    /// Second stage of a two-stage search: for each probe, gathers the coefficient-layout chunks
    /// of `gallery` that hold its candidates and multiplies each by the probe once (one tensor
    /// product scores every template of the chunk; the client reads only the candidates' blocks).
    /// The server learns the candidate ids, nothing else. `self` must be the gallery's context.
    pub fn score_candidates(&self, query: &FineQuery, gallery: &Gallery) -> Result<FineResponse> {
        gallery.manifest().public.key_id.ensure_eq(&self.public.key_id)?;
        if gallery.layout() != Layout::Coefficient {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{} is not a coefficient-layout (fine) gallery; enrol the full-dimension set with `--layout coefficient`",
                    gallery.dir().display()
                ),
            });
        }
        self.gather(
            query,
            &gallery.quantizer(),
            |ids| gallery.locate_many(ids),
            |ci| self.prepare_chunk(&gallery.chunk(ci, self)?),
        )
    }

    /// [`ServerContext::score_candidates`] over coefficient-layout chunks held in memory
    /// (`index` maps an id to its template's position in `chunks`), for in-process evaluation.
    pub fn score_candidates_in_memory(
        &self,
        query: &FineQuery,
        quantizer: &Quantizer,
        chunks: &[EncryptedChunk],
        index: &HashMap<String, usize>,
    ) -> Result<FineResponse> {
        let per = Layout::Coefficient.templates_per_chunk(self.public.params.degree, quantizer.rows()).max(1);
        let locate = |ids: &[String]| {
            ids.iter()
                .map(|id| match index.get(id) {
                    Some(&g) if g / per < chunks.len() => Ok((g / per, g % per)),
                    _ => Err(Error::UnknownId { id: id.clone() }),
                })
                .collect()
        };
        self.gather(query, quantizer, locate, |ci| self.prepare_chunk(&chunks[ci]))
    }

    /// The fine stage over any chunk source: `locate` maps candidate ids to (chunk, block),
    /// `hot` brings a chunk to the hot form.
    fn gather(
        &self,
        query: &FineQuery,
        q: &Quantizer,
        locate: impl Fn(&[String]) -> Result<Vec<(usize, usize)>>,
        hot: impl Fn(usize) -> Result<HotChunk> + Sync,
    ) -> Result<FineResponse> {
        if self.dim != 1 {
            return Err(Error::InvalidArgument {
                reason: "the fine stage needs the context of a coefficient-layout gallery".into(),
            });
        }
        self.check_query(&query.key_id, (query.scale, query.metric), (q.scale, q.metric))?;
        let probes = query
            .probes
            .iter()
            .map(|fp| {
                let hp = self.prepare_probe(&fp.probe)?;
                let mut by_chunk: BTreeMap<usize, Vec<(String, usize)>> = BTreeMap::new();
                for (id, (chunk, block)) in fp.candidates.iter().zip(locate(&fp.candidates)?) {
                    by_chunk.entry(chunk).or_default().push((id.clone(), block));
                }
                let chunks = by_chunk
                    .into_par_iter()
                    .map_init(Accumulator::default, |acc, (ci, candidates)| {
                        Ok(GatheredChunk { candidates, scores: self.score_chunk(&hp, &hot(ci)?, acc)? })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((fp.probe_id.clone(), chunks))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FineResponse {
            key_id: self.public.key_id.clone(),
            degree: self.public.params.degree,
            modulus: self.public.params.response_modulus(),
            rows: q.rows(),
            scale: q.scale,
            metric: q.metric,
            probes,
        })
    }

    /// fhe's default multiplication strategy with relinearisation, for the HERS baseline.
    pub fn hers_multiplicator(&self, rk: &RelinearizationKey) -> Result<Multiplicator> {
        Ok(Multiplicator::default(rk)?)
    }

    /// The HERS algorithm, kept as a baseline: per dimension multiply, relinearise and add
    /// through fhe's public API (no lazy accumulation, no modulus switching).
    pub fn score_chunk_hers(
        &self,
        probe: &EncryptedProbe,
        chunk: &EncryptedChunk,
        m: &Multiplicator,
    ) -> Result<Ciphertext> {
        if probe.cts.len() != self.dim || chunk.cts.len() != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, actual: chunk.cts.len() });
        }
        let mut sum: Option<Ciphertext> = None;
        for (p, g) in probe.cts.iter().zip(&chunk.cts) {
            let prod = m.multiply(p, g)?;
            sum = Some(match sum {
                None => prod,
                Some(s) => &s + &prod,
            });
        }
        sum.ok_or_else(|| Error::InvalidArgument { reason: "dimension 0".into() })
    }
}
