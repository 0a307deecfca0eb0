//! The client (gallery owner): quantises, packs and encrypts templates and probes; decrypts
//! the degree-2 score ciphertexts with `s²` and takes the top-k.

use fhe::bfv::{Ciphertext, Encoding, Plaintext, RelinearizationKey};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Poly, Representation};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use ndarray::Array2;
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::sync::OnceLock;
use zeroize::Zeroizing;

use crate::compact::{CompactKey, ScoreForm, compact_moduli};
use crate::decrypt::{Read, ScoreDecryptor};
use crate::error::{Error, Result};
use crate::kernel::Simd;
use crate::keys::{ClientKeys, KeyId};
use crate::pack::{Layout, pack_chunk, pack_coefficients, pack_probe_coefficients};
use crate::quantize::{Metric, Quantizer};
use crate::ranking::Ranking;
use crate::topk::TopK;
use crate::wire::{ChunkScores, EncryptedChunk, EncryptedProbe, FineProbe, FineQuery, FineResponse, Query, Response};
use embeddings::Match;

/// The client side of the protocol.
#[derive(Debug)]
pub struct Client {
    keys: ClientKeys,
    quantizer: Quantizer,
    /// The vector builds decryption may use.
    simd: Simd,
    /// Decryption tables (`s`, `s²` in NTT form), made on first use.
    decryptor: OnceLock<ScoreDecryptor>,
}

impl Client {
    /// A client for `dim`-dimensional templates, cosine metric, default scale.
    pub fn new(keys: ClientKeys, dim: usize) -> Result<Self> {
        let quantizer = Quantizer::new(&keys.public().params, dim)?;
        Ok(Self { keys, quantizer, simd: Simd::detect(), decryptor: OnceLock::new() })
    }

    /// A client with an explicit quantiser (e.g. a gallery's recorded scale).
    pub fn with_quantizer(keys: ClientKeys, quantizer: Quantizer) -> Result<Self> {
        if quantizer.metric == Metric::Cosine {
            keys.public().params.check_capacity(quantizer.dim, quantizer.scale)?;
        }
        Ok(Self { keys, quantizer, simd: Simd::detect(), decryptor: OnceLock::new() })
    }

    /// Decrypts with the vector builds `simd` allows (default: every build the CPU has).
    pub fn with_simd(mut self, simd: Simd) -> Self {
        self.simd = simd;
        self.decryptor = OnceLock::new();
        self
    }

    /// The decryption tables, made on first use.
    fn decryptor(&self) -> Result<&ScoreDecryptor> {
        if let Some(d) = self.decryptor.get() {
            return Ok(d);
        }
        let d = ScoreDecryptor::new(&self.keys, self.simd)?;
        Ok(self.decryptor.get_or_init(|| d))
    }

    /// The key set.
    pub fn keys(&self) -> &ClientKeys {
        &self.keys
    }

    /// Gives the key set back (e.g. to serve a second gallery with another quantiser).
    pub fn into_keys(self) -> ClientKeys {
        self.keys
    }

    /// The quantiser.
    pub fn quantizer(&self) -> &Quantizer {
        &self.quantizer
    }

    /// Slots per chunk (the ring degree).
    pub fn chunk_size(&self) -> usize {
        self.keys.public().params.degree
    }

    /// Encrypts up to N packed template rows (see [`Quantizer::template_row`]) as one chunk
    /// (dimension-wise SIMD packing).
    pub fn encrypt_chunk<R: RngCore + CryptoRng>(&self, templates: &[Vec<i64>], rng: &mut R) -> Result<EncryptedChunk> {
        let n = self.chunk_size();
        let cols = pack_chunk(templates, self.quantizer.rows(), n)?;
        let bfv = self.keys.bfv();
        let cts = cols
            .iter()
            .map(|col| {
                let pt = Plaintext::try_encode(col.as_slice(), Encoding::simd(), bfv)?;
                Ok(self.keys.secret().try_encrypt(&pt, rng)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedChunk { cts })
    }

    /// Quantises and encrypts row-major templates into chunks, on all cores.
    pub fn encrypt_templates<R: RngCore + CryptoRng>(&self, rows: &[f32], rng: &mut R) -> Result<Vec<EncryptedChunk>> {
        let q = self.quantizer.template_rows(rows)?;
        self.encrypt_quantized(&q, rng)
    }

    /// Quantises and encrypts row-major templates into chunks of the given layout, on all cores.
    pub fn encrypt_templates_as<R: RngCore + CryptoRng>(
        &self,
        layout: Layout,
        rows: &[f32],
        rng: &mut R,
    ) -> Result<Vec<EncryptedChunk>> {
        let q = self.quantizer.template_rows(rows)?;
        match layout {
            Layout::DimensionWise => self.encrypt_quantized(&q, rng),
            Layout::Coefficient => self.encrypt_coefficient_chunks(&q, rng),
        }
    }

    /// Coefficient layout: encrypts packed template rows, ⌊N/R⌋ per chunk of one ciphertext.
    pub fn encrypt_coefficient_chunks<R: RngCore + CryptoRng>(
        &self,
        q: &[Vec<i64>],
        rng: &mut R,
    ) -> Result<Vec<EncryptedChunk>> {
        let n = self.chunk_size();
        let rows = self.quantizer.rows();
        let per = Layout::Coefficient.templates_per_chunk(n, rows);
        if per == 0 {
            return Err(Error::InvalidArgument { reason: format!("{rows} rows do not fit one ciphertext of N = {n}") });
        }
        let bfv = self.keys.bfv();
        let seeds = self.chunk_seeds(q.len().div_ceil(per), rng);
        q.par_chunks(per)
            .zip(seeds)
            .map(|(c, s)| {
                let pt = Plaintext::try_encode(pack_coefficients(c, rows, n)?.as_slice(), Encoding::poly(), bfv)?;
                Ok(EncryptedChunk { cts: vec![self.keys.secret().try_encrypt(&pt, &mut ChaCha20Rng::from_seed(s))?] })
            })
            .collect()
    }

    fn chunk_seeds<R: RngCore + CryptoRng>(&self, count: usize, rng: &mut R) -> Vec<[u8; 32]> {
        (0..count)
            .map(|_| {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                s
            })
            .collect()
    }

    /// Encrypts packed template rows into chunks, on all cores.
    pub fn encrypt_quantized<R: RngCore + CryptoRng>(
        &self,
        q: &[Vec<i64>],
        rng: &mut R,
    ) -> Result<Vec<EncryptedChunk>> {
        let n = self.chunk_size();
        let seeds = self.chunk_seeds(q.len().div_ceil(n), rng);
        q.par_chunks(n).zip(seeds).map(|(c, s)| self.encrypt_chunk(c, &mut ChaCha20Rng::from_seed(s))).collect()
    }

    /// Encrypts one packed probe row (see [`Quantizer::probe_row`]): ciphertext j holds `p[j]`
    /// in every slot (a constant polynomial).
    pub fn encrypt_probe<R: RngCore + CryptoRng>(&self, probe: &[i64], rng: &mut R) -> Result<EncryptedProbe> {
        if probe.len() != self.quantizer.rows() {
            return Err(Error::DimensionMismatch { expected: self.quantizer.rows(), actual: probe.len() });
        }
        let bfv = self.keys.bfv();
        // One ChaCha20 stream per ciphertext, seeded from `rng`, so the dimensions encrypt on all cores.
        let seeds = self.chunk_seeds(probe.len(), rng);
        let cts = probe
            .par_iter()
            .zip(seeds)
            .map(|(&v, seed)| {
                // The constant polynomial v decodes to v in every SIMD slot.
                let pt = Plaintext::try_encode(&[v][..], Encoding::poly(), bfv)?;
                Ok(self.keys.secret().try_encrypt(&pt, &mut ChaCha20Rng::from_seed(seed))?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedProbe { cts })
    }

    /// A query of already encrypted probes (from [`Client::encrypt_probe`]), under this
    /// client's key and quantiser.
    pub fn query_of(&self, probe_ids: Vec<String>, probes: Vec<EncryptedProbe>) -> Result<Query> {
        if probe_ids.len() != probes.len() {
            return Err(Error::InvalidArgument {
                reason: format!("{} ids for {} probes", probe_ids.len(), probes.len()),
            });
        }
        Ok(Query {
            key_id: self.keys.key_id().clone(),
            scale: self.quantizer.scale,
            metric: self.quantizer.metric,
            probe_ids,
            probes,
            compact: None,
        })
    }

    /// [`Client::encrypt_query`], with a fresh compact-answer key when `compact` (the server
    /// then answers in the compact form).
    pub fn encrypt_query_as<R: RngCore + CryptoRng>(
        &self,
        probe_ids: Vec<String>,
        rows: &[f32],
        compact: bool,
        rng: &mut R,
    ) -> Result<Query> {
        let mut query = self.encrypt_query(probe_ids, rows, rng)?;
        if compact {
            query.compact = Some(self.compact_key(rng)?);
        }
        Ok(query)
    }

    /// A fresh key for compact answers ([`Query::compact`]): the server relinearises each
    /// chunk's scores with it and sends ≈ half the bytes.
    pub fn compact_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<CompactKey> {
        CompactKey::generate(&self.keys, rng)
    }

    /// Quantises and encrypts probes (row-major `f32`) into one query.
    pub fn encrypt_query<R: RngCore + CryptoRng>(
        &self,
        probe_ids: Vec<String>,
        rows: &[f32],
        rng: &mut R,
    ) -> Result<Query> {
        let q = self.quantizer.probe_rows(rows)?;
        if q.len() != probe_ids.len() {
            return Err(Error::InvalidArgument { reason: format!("{} ids for {} probes", probe_ids.len(), q.len()) });
        }
        let probes = q.iter().map(|p| self.encrypt_probe(p, rng)).collect::<Result<Vec<_>>>()?;
        self.query_of(probe_ids, probes)
    }

    /// Encrypts the second-stage query of a two-stage search: each full-dimension probe (row-major
    /// `rows`) as one coefficient-layout ciphertext, with the candidate ids the first stage kept.
    pub fn encrypt_fine_query<R: RngCore + CryptoRng>(
        &self,
        probe_ids: Vec<String>,
        rows: &[f32],
        candidates: Vec<Vec<String>>,
        rng: &mut R,
    ) -> Result<FineQuery> {
        let q = self.quantizer.probe_rows(rows)?;
        if q.len() != probe_ids.len() || q.len() != candidates.len() {
            return Err(Error::InvalidArgument {
                reason: format!("{} probes, {} ids, {} candidate lists", q.len(), probe_ids.len(), candidates.len()),
            });
        }
        let n = self.chunk_size();
        let bfv = self.keys.bfv();
        let probes = q
            .iter()
            .zip(probe_ids)
            .zip(candidates)
            .map(|((p, probe_id), candidates)| {
                let pt = Plaintext::try_encode(pack_probe_coefficients(p, n)?.as_slice(), Encoding::poly(), bfv)?;
                let probe = EncryptedProbe { cts: vec![self.keys.secret().try_encrypt(&pt, rng)?] };
                Ok(FineProbe { probe_id, probe, candidates })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FineQuery {
            key_id: self.keys.key_id().clone(),
            scale: self.quantizer.scale,
            metric: self.quantizer.metric,
            probes,
        })
    }

    /// Encrypts one quantised probe row (see [`Quantizer::probe_row`]) as the second stage
    /// encrypts its probes: one coefficient-layout ciphertext (`p(x⁻¹)`, see [`Layout`]).
    pub fn encrypt_fine_probe<R: RngCore + CryptoRng>(&self, probe: &[i64], rng: &mut R) -> Result<EncryptedProbe> {
        let pt = Plaintext::try_encode(
            pack_probe_coefficients(probe, self.chunk_size())?.as_slice(),
            Encoding::poly(),
            self.keys.bfv(),
        )?;
        Ok(EncryptedProbe { cts: vec![self.keys.secret().try_encrypt(&pt, rng)?] })
    }

    /// Decrypts a second-stage response and ranks each probe's candidates (best first, at most
    /// `k` per probe).
    pub fn decrypt_fine(&self, response: &FineResponse, k: usize) -> Result<Vec<Match>> {
        self.check_response(&response.key_id, response.degree, response.modulus, ScoreForm::Full, "fine response")?;
        let sign = better_sign(response.metric);
        let mut out = Vec::new();
        for (probe_id, chunks) in &response.probes {
            let scored = chunks
                .par_iter()
                .map(|c| {
                    let coeffs = self.decrypt_scores(&c.scores, Read::Coefficients)?;
                    c.candidates
                        .iter()
                        .map(|(id, b)| {
                            let v = coeffs.get(b * response.rows).copied().ok_or_else(|| {
                                Error::malformed("fine response", format!("block {b} outside the ciphertext"))
                            })?;
                            Ok((id.clone(), v))
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            let mut all: Vec<(String, i64)> = scored.into_iter().flatten().collect();
            // Ties go to the lower index, so index the candidates in id order: the ranking is
            // reproducible whatever order the chunks were gathered in.
            all.sort_by(|a, b| a.0.cmp(&b.0));
            let best = TopK::of(all.iter().map(|c| sign * c.1), k);
            out.extend(best.into_iter().enumerate().map(|(rank, h)| {
                let (gallery_id, score) = all[h.index as usize].clone();
                Match {
                    probe_id: probe_id.clone(),
                    rank: rank + 1,
                    gallery_id,
                    score,
                    similarity: similarity(score, response.scale),
                }
            }));
        }
        Ok(out)
    }

    /// Checks that a response (`what`) was made for this key: key id, ring degree, modulus,
    /// and for compact scores the two primes.
    pub(crate) fn check_response(
        &self,
        key_id: &KeyId,
        degree: usize,
        modulus: u64,
        form: ScoreForm,
        what: &'static str,
    ) -> Result<()> {
        self.keys.key_id().ensure_eq(key_id)?;
        let params = &self.keys.public().params;
        if degree != params.degree || modulus != params.response_modulus() {
            return Err(Error::malformed(what, "degree or modulus differs from the key's"));
        }
        if let ScoreForm::Compact { moduli } = form
            && moduli != compact_moduli(params)?
        {
            return Err(Error::malformed(what, "compact moduli differ from the key's"));
        }
        Ok(())
    }

    /// Decrypts one chunk's scores (N slot values, centred mod t).
    pub fn decrypt_chunk(&self, scores: &ChunkScores) -> Result<Vec<i64>> {
        self.decrypt_scores(scores, Read::Slots)
    }

    /// Decrypts a score ciphertext and decodes it with `encoding` (values centred mod t).
    /// Compact scores are first lifted from their small primes to q0: `round(q0·c/p)`, in
    /// double precision (off by at most a unit of q0 for q0 < 2^53, a few beyond: far inside
    /// the noise budget either way).
    fn decrypt_scores(&self, scores: &ChunkScores, read: Read) -> Result<Vec<i64>> {
        let mut out = vec![0i64; self.keys.public().params.degree];
        self.decrypt_into(scores, read, &mut out)?;
        Ok(out)
    }

    /// [`Client::decrypt_chunk`] into `out` (N values, slot order).
    pub(crate) fn decrypt_chunk_into(&self, scores: &ChunkScores, out: &mut [i64]) -> Result<()> {
        self.decrypt_into(scores, Read::Slots, out)
    }

    /// Decrypts a chunk's scores, read as `read` says, value i to `out[i]`.
    fn decrypt_into(&self, scores: &ChunkScores, read: Read, out: &mut [i64]) -> Result<()> {
        let parts = self.score_parts(scores)?;
        let parts: Vec<&[u64]> = parts.iter().map(|p| p.as_ref()).collect();
        self.decryptor()?.decrypt_into(&parts, read, out)
    }

    /// A chunk's score parts as polynomials modulo q0 (compact parts lifted: `round(q0·c/p)`).
    fn score_parts<'s>(&self, scores: &'s ChunkScores) -> Result<Vec<std::borrow::Cow<'s, [u64]>>> {
        let q0 = self.keys.public().params.response_modulus();
        let expected = scores.form.part_moduli(q0);
        if scores.polys.len() != expected.len() {
            return Err(Error::malformed("response", "part count differs from the score form"));
        }
        Ok(scores
            .polys
            .iter()
            .zip(expected)
            .map(|(c, p)| match p == q0 {
                true => std::borrow::Cow::Borrowed(c.as_slice()),
                false => {
                    // v < p, so round(q0·v/p) ≤ q0: one subtraction reduces it.
                    let f = q0 as f64 / p as f64;
                    let lift = |v: u64| {
                        let r = (v as f64 * f + 0.5) as u64;
                        if r >= q0 { r - q0 } else { r }
                    };
                    std::borrow::Cow::Owned(c.iter().map(|&v| lift(v)).collect())
                }
            })
            .collect())
    }

    /// A chunk's scores as an fhe ciphertext modulo q0 (compact parts lifted), for measuring
    /// its noise.
    fn score_ciphertext(&self, scores: &ChunkScores) -> Result<Ciphertext> {
        let bfv = self.keys.bfv();
        let ctx = bfv.context_at_level(bfv.max_level())?;
        let n = bfv.degree();
        let polys = self
            .score_parts(scores)?
            .into_iter()
            .map(|c| {
                let arr = Array2::from_shape_vec((1, n), c.into_owned())
                    .map_err(|_| Error::malformed("response", "polynomial of wrong length"))?;
                let mut p = Poly::try_convert_from(arr, ctx, false, Representation::PowerBasis)?;
                p.change_representation(Representation::Ntt);
                Ok(p)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Ciphertext::new(polys, bfv)?)
    }

    /// [`Client::noise_margin_bits`] of a chunk's scores as the server sent them, full or
    /// compact: what is left of the decryption bound after the rounding of every part.
    pub fn score_noise_margin_bits(&self, scores: &ChunkScores) -> Result<(usize, f64)> {
        self.noise_margin_bits(&self.score_ciphertext(scores)?)
    }

    /// The decryption noise of every coefficient of a chunk's scores as the server sent them,
    /// full or compact (lifted to q0), in units of q0: `[t·x]_{q0} / t` for the phase
    /// `x = c0 + c1·s (+ c2·s²) mod q0`, the distance of `x` from the nearest multiple of
    /// `q0/t`. A coefficient decrypts exactly while this stays below
    /// `(q0/t)·(1/2 − 2^-20)` in magnitude ([`crate::SearchParams::noise_budget`] bounds it).
    /// The noise depends on the secret key: this is for the key holder's tests and checks.
    pub fn score_noise(&self, scores: &ChunkScores) -> Result<Vec<f64>> {
        let ct = self.score_ciphertext(scores)?;
        let ctx = ct[0].ctx();
        let mut s = Zeroizing::new(Poly::try_convert_from(
            self.keys.secret_coefficients()?,
            ctx,
            false,
            Representation::PowerBasis,
        )?);
        s.change_representation(Representation::Ntt);
        let mut power = Zeroizing::new(s.as_ref().clone());
        let mut x = Zeroizing::new(ct[0].clone());
        for part in ct.iter().skip(1) {
            *x.as_mut() += Zeroizing::new(part * power.as_ref()).as_ref();
            *power.as_mut() *= s.as_ref();
        }
        x.change_representation(Representation::PowerBasis);
        let params = &self.keys.public().params;
        let (q0, t) = (u128::from(params.response_modulus()), u128::from(params.plaintext));
        Ok(x.coefficients()
            .row(0)
            .iter()
            .map(|&v| {
                let r = u128::from(v) * t % q0;
                let centred = if r > q0 / 2 { r as f64 - q0 as f64 } else { r as f64 };
                centred / t as f64
            })
            .collect())
    }

    /// Decrypts a response and keeps the `k` best live slots of every probe (highest score
    /// for cosine, lowest squared distance for the Euclidean metric).
    pub fn decrypt_top_k(&self, response: &Response, k: usize) -> Result<Vec<Match>> {
        let ranking = Ranking::for_response(self, response, k)?;
        let chunks = response.scores.first().map_or(0, Vec::len);
        if response.scores.iter().any(|p| p.len() != chunks) {
            return Err(Error::malformed("response", "probes with different chunk counts"));
        }
        (0..chunks).into_par_iter().try_for_each(|c| {
            let per: Vec<&ChunkScores> = response.scores.iter().map(|p| &p[c]).collect();
            ranking.fold(c, &per)
        })?;
        Ok(ranking.into_matches())
    }

    /// Decrypts a ciphertext produced by the HERS baseline (for tests and benches).
    pub fn decrypt_slots(&self, ct: &Ciphertext) -> Result<Vec<i64>> {
        let pt = self.keys.secret().try_decrypt(ct)?;
        Ok(Vec::<i64>::try_decode(&pt, Encoding::simd())?)
    }

    /// log2 of the largest noise coefficient of `ct` and the bits left before decryption fails
    /// (`log2(q / 2t)` minus the noise bits): how far a parameter set is from its limit.
    pub fn noise_margin_bits(&self, ct: &Ciphertext) -> Result<(usize, f64)> {
        // SAFETY: not memory-unsafe; fhe marks it `unsafe` because the noise leaks information
        // about the secret, which is the key holder's own business here.
        #[allow(unsafe_code, reason = "fhe marks noise measurement unsafe as a secret-leak warning only")]
        let noise = unsafe { self.keys.secret().measure_noise(ct)? };
        let q = ct[0].ctx().modulus().bits() as f64;
        let t = (self.keys.public().params.plaintext as f64).log2();
        Ok((noise, q - 1.0 - t - 1.0 - noise as f64))
    }

    /// A relinearisation key (public evaluation material), needed only by the HERS baseline.
    pub fn relinearization_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<RelinearizationKey> {
        Ok(RelinearizationKey::new(self.keys.secret(), rng)?)
    }
}

/// `1` when higher scores are better (cosine), `-1` when lower are (squared distance).
pub(crate) fn better_sign(metric: Metric) -> i64 {
    if metric == Metric::SquaredEuclidean { -1 } else { 1 }
}

/// A decrypted integer score divided by `s²`: cosine similarity or squared distance.
pub(crate) fn similarity(score: i64, scale: u32) -> f64 {
    score as f64 / (f64::from(scale) * f64::from(scale)).max(1.0)
}
