//! Messages between client and server, and their byte encodings.
//!
//! Every encoding starts with an 8-byte magic, carries the key id, and ends with a CRC-32;
//! decoders never panic on malformed bytes.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe_traits::{DeserializeParametrized, Serialize as _};
use rayon::prelude::*;

use super::frame::{Reader, open_crc, pack_bits, packed_len, put_bytes, seal_crc, unpack_bits};
use crate::compact::{CompactKey, ScoreForm};
use crate::error::{Error, Result};
use crate::keys::KeyId;
use crate::quantize::Metric;

const CHUNK_MAGIC: &[u8; 8] = b"HERSCK01";
/// A query without a compact-answer key (the encoding of earlier versions, still written for
/// such queries so that older servers read them).
const QUERY_MAGIC_V1: &[u8; 8] = b"HERSQY01";
/// A query with a flag byte after its probes and, when set, a [`CompactKey`].
const QUERY_MAGIC: &[u8; 8] = b"HERSQY02";
/// The flag byte of a query with a compact-answer key (digits of one prime, errors of
/// variance 1); earlier keys, which servers refuse with the fix: `1`, RNS digits of Q; `2`,
/// digits of one prime with the ciphertexts' error variance (four at N = 4096).
const COMPACT_KEY_FLAG: u8 = 3;
/// A response of full (3-part) scores (written for full answers, as earlier versions did).
const RESPONSE_MAGIC_V1: &[u8; 8] = b"HERSRS01";
/// A response whose header names its [`ScoreForm`] (compact answers).
const RESPONSE_MAGIC: &[u8; 8] = b"HERSRS02";
const FINE_QUERY_MAGIC: &[u8; 8] = b"HERSFQ01";
const FINE_RESPONSE_MAGIC: &[u8; 8] = b"HERSFR01";
/// Upper bound on one serialised ciphertext (N = 32768, 16 moduli).
pub(super) const MAX_CT_BYTES: usize = 32768 * 8 * 16 * 3;
pub(super) const MAX_ID_BYTES: usize = 1 << 16;

pub(super) fn decode_ct(bytes: &[u8], bfv: &Arc<BfvParameters>, what: &'static str) -> Result<Ciphertext> {
    let ct = Ciphertext::from_bytes(bytes, bfv).map_err(|e| Error::malformed(what, e.to_string()))?;
    let top = bfv.context_at_level(0)?;
    if ct.len() != 2 || ct[0].ctx() != top {
        return Err(Error::malformed(what, "expected a fresh 2-part ciphertext at level 0"));
    }
    Ok(ct)
}

/// [`decode_ct`] of each of `bytes` (a query's ciphertexts), in order, on up to as many
/// threads as the machine has cores (one when there are only a few): the calling thread
/// decodes the first part itself, so it keeps its core while the scoped threads take the
/// others (spawned threads that all wait in a join start on the cores left idle, two on one).
fn decode_cts_threaded(bytes: &[&[u8]], bfv: &Arc<BfvParameters>) -> Result<Vec<Ciphertext>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(bytes.len() / 4).max(1);
    let decode = |part: &[&[u8]]| part.iter().map(|b| decode_ct(b, bfv, "query")).collect::<Result<Vec<_>>>();
    if threads == 1 {
        return decode(bytes);
    }
    let per = bytes.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut parts = bytes.chunks(per);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts.map(|part| s.spawn(move || decode(part))).collect();
        let mine = decode(first);
        // Every thread joined before any error returns.
        let theirs: Vec<Result<Vec<Ciphertext>>> = others
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::malformed("query", "a decoding thread panicked"))))
            .collect();
        let mut all = mine?;
        for part in theirs {
            all.extend(part?);
        }
        Ok(all)
    })
}

/// Writes a count and the seeded bytes of each ciphertext of a probe or chunk.
pub(super) fn put_cts(out: &mut Vec<u8>, cts: &[Ciphertext]) {
    out.extend_from_slice(&(cts.len() as u32).to_le_bytes());
    // fhe's encoding takes ≈ 0.2 ms per query ciphertext at N = 4096: on all cores, since a
    // client's query waits for it.
    let encoded: Vec<Vec<u8>> = cts.par_iter().map(|ct| ct.to_bytes()).collect();
    for bytes in &encoded {
        put_bytes(out, bytes);
    }
}

/// Reads the key id that follows the 8-byte magic of a query (`what`) without decoding the rest.
pub(super) fn peek_query_key(bytes: &[u8], magic: &[u8; 8], what: &'static str) -> Result<KeyId> {
    let mut r = Reader::new(bytes, what);
    if r.take(8)? != magic {
        return Err(Error::malformed(what, "bad magic"));
    }
    Ok(KeyId(r.string(256)?))
}

/// One chunk of the gallery as stored at rest: `dim` seeded ciphertexts, the j-th holding
/// dimension j of the chunk's N templates in its slots.
#[derive(Debug, Clone)]
pub struct EncryptedChunk {
    pub(crate) cts: Vec<Ciphertext>,
}

impl EncryptedChunk {
    /// Number of packed rows (the dimension).
    pub fn rows(&self) -> usize {
        self.cts.len()
    }

    /// Serialises (seeded ciphertexts: the random half is a 32-byte seed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(CHUNK_MAGIC);
        put_cts(&mut out, &self.cts);
        seal_crc(&mut out);
        out
    }

    /// Parses [`EncryptedChunk::to_bytes`], expecting `rows` ciphertexts.
    pub fn from_bytes(bytes: &[u8], bfv: &Arc<BfvParameters>, rows: usize) -> Result<Self> {
        let body = open_crc(bytes, "encrypted chunk")?;
        let mut r = Reader::new(body, "encrypted chunk");
        if r.take(8)? != CHUNK_MAGIC {
            return Err(Error::malformed("encrypted chunk", "bad magic"));
        }
        let n = r.u32()? as usize;
        if n != rows {
            return Err(Error::DimensionMismatch { expected: rows, actual: n });
        }
        let cts =
            (0..n).map(|_| decode_ct(r.bytes(MAX_CT_BYTES)?, bfv, "encrypted chunk")).collect::<Result<Vec<_>>>()?;
        r.finish()?;
        Ok(Self { cts })
    }
}

/// One encrypted probe: `dim` ciphertexts, the j-th holding `p[j]` in every slot.
#[derive(Debug, Clone)]
pub struct EncryptedProbe {
    pub(crate) cts: Vec<Ciphertext>,
}

impl EncryptedProbe {
    /// The probe's dimension.
    pub fn dim(&self) -> usize {
        self.cts.len()
    }
}

/// A query: one or more encrypted probes under one key.
#[derive(Debug, Clone)]
pub struct Query {
    /// Key the probes are encrypted under.
    pub key_id: KeyId,
    /// Quantisation scale the probes were quantised at (must be the gallery's).
    pub scale: u32,
    /// Matching function the probes were packed for (must be the gallery's).
    pub metric: Metric,
    /// Probe ids (plaintext labels chosen by the client, echoed in the response).
    pub probe_ids: Vec<String>,
    /// The encrypted probes.
    pub probes: Vec<EncryptedProbe>,
    /// The key for compact answers (see `compact/`); without one the answer is the full
    /// degree-2 ciphertext.
    pub compact: Option<CompactKey>,
}

impl Query {
    /// Serialises the query.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(if self.compact.is_some() { QUERY_MAGIC } else { QUERY_MAGIC_V1 });
        put_bytes(&mut out, self.key_id.0.as_bytes());
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.push(self.metric.code());
        out.extend_from_slice(&(self.probes.len() as u32).to_le_bytes());
        for (id, p) in self.probe_ids.iter().zip(&self.probes) {
            put_bytes(&mut out, id.as_bytes());
            put_cts(&mut out, &p.cts);
        }
        if let Some(key) = &self.compact {
            out.push(COMPACT_KEY_FLAG);
            key.put(&mut out);
        }
        seal_crc(&mut out);
        out
    }

    /// Reads only the key id of an encoded query (to pick or check the key before decoding).
    pub fn peek_key_id(bytes: &[u8]) -> Result<KeyId> {
        peek_query_key(bytes, QUERY_MAGIC, "query").or_else(|_| peek_query_key(bytes, QUERY_MAGIC_V1, "query"))
    }

    /// Parses [`Query::to_bytes`]; `dim` is the number of packed rows of the gallery.
    pub fn from_bytes(bytes: &[u8], bfv: &Arc<BfvParameters>, dim: usize) -> Result<Self> {
        Self::from_bytes_within(bytes, bfv, dim, usize::MAX)
    }

    /// [`Query::from_bytes`] of a query of 1 to `max_probes` probes: the count is checked as
    /// soon as it is read, before any ciphertext is decoded (a server's bound on the work one
    /// request can cause).
    pub fn from_bytes_within(bytes: &[u8], bfv: &Arc<BfvParameters>, dim: usize, max_probes: usize) -> Result<Self> {
        let body = open_crc(bytes, "query")?;
        let key_id = Self::peek_key_id(body)?;
        let mut r = Reader::new(body, "query");
        let v1 = r.take(8)? == QUERY_MAGIC_V1;
        r.string(256)?;
        let scale = r.u32()?;
        let metric = Metric::from_code(r.take(1)?[0])?;
        let n = r.u32()? as usize;
        if n == 0 || n > max_probes {
            return Err(Error::TooMany { what: "probes in a query", limit: max_probes, count: n });
        }
        let mut probe_ids = Vec::with_capacity(n.min(1 << 16));
        let mut encoded = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            probe_ids.push(r.string(MAX_ID_BYTES)?);
            let d = r.u32()? as usize;
            if d != dim {
                return Err(Error::DimensionMismatch { expected: dim, actual: d });
            }
            encoded.push((0..d).map(|_| r.bytes(MAX_CT_BYTES)).collect::<Result<Vec<_>>>()?);
        }
        // Decoding expands each ciphertext's seeded half: the serial start of every query on
        // a server, so on threads of its own (not the rayon pool, which may be busy scoring
        // the previous batch and would take this only after it).
        let flat: Vec<&[u8]> = encoded.iter().flatten().copied().collect();
        let mut decoded = decode_cts_threaded(&flat, bfv)?.into_iter();
        let probes =
            encoded.iter().map(|cts| EncryptedProbe { cts: decoded.by_ref().take(cts.len()).collect() }).collect();
        let compact = match v1 {
            true => None,
            false => match r.take(1)?[0] {
                0 => None,
                COMPACT_KEY_FLAG => Some(CompactKey::take(&mut r, bfv, "query")?),
                1 | 2 => {
                    return Err(Error::malformed(
                        "query",
                        "a compact-answer key of an earlier hers version: update hers on the client, or ask for full \
                         answers (hers client --full-answers)",
                    ));
                }
                _ => return Err(Error::malformed("query", "bad compact-key flag")),
            },
        };
        r.finish()?;
        Ok(Self { key_id, scale, metric, probe_ids, probes, compact })
    }
}

/// The encrypted scores of one chunk for one probe, in coefficient form: a degree-2 ciphertext
/// switched down to the response modulus `q0` ([`ScoreForm::Full`]), or a relinearised one
/// over two small primes ([`ScoreForm::Compact`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkScores {
    /// `c0, c1[, c2]` coefficients (each N values below its part's modulus).
    pub(crate) polys: Vec<Vec<u64>>,
    /// Which form, so which modulus each part has.
    pub(crate) form: ScoreForm,
}

impl ChunkScores {
    /// The form of these scores.
    pub fn form(&self) -> ScoreForm {
        self.form
    }
}

/// Everything the server returns for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Key the scores are encrypted under.
    pub key_id: KeyId,
    /// Ring degree N (slots per chunk).
    pub degree: usize,
    /// The response modulus q0 (full scores live in it; compact ones are lifted to it).
    pub modulus: u64,
    /// How the scores are encoded.
    pub form: ScoreForm,
    /// Quantisation scale of the gallery (scores are `s²` × cosine or × squared distance).
    pub scale: u32,
    /// Matching function (decides whether higher or lower scores are better).
    pub metric: Metric,
    /// Gallery id of each global slot (`chunk · N + slot`), `None` for empty or removed slots.
    pub slot_ids: Arc<Vec<Option<String>>>,
    /// Probe ids, as in the query.
    pub probe_ids: Vec<String>,
    /// `scores[probe][chunk]`.
    pub scores: Vec<Vec<ChunkScores>>,
}

impl Response {
    /// Bytes of encrypted scores per gallery slot (the part that grows with the gallery).
    pub fn score_bytes_per_slot(&self) -> f64 {
        self.form.bytes_per_slot(self.modulus)
    }

    /// Serialises the response (coefficients bit-packed at the width of their part's modulus).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let header = (self.key_id.clone(), self.degree, self.modulus, self.scale, self.metric);
        put_answer_header(&mut out, [RESPONSE_MAGIC_V1, RESPONSE_MAGIC], &header, self.form);
        put_slot_ids(&mut out, &self.slot_ids);
        let chunks = self.scores.first().map_or(0, Vec::len);
        out.extend_from_slice(&(self.scores.len() as u32).to_le_bytes());
        out.extend_from_slice(&(chunks as u32).to_le_bytes());
        for (pid, per_probe) in self.probe_ids.iter().zip(&self.scores) {
            put_bytes(&mut out, pid.as_bytes());
            for cs in per_probe {
                put_scores(&mut out, cs, self.modulus);
            }
        }
        seal_crc(&mut out);
        out
    }

    /// Parses [`Response::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const W: &str = "response";
        let body = open_crc(bytes, W)?;
        let mut r = Reader::new(body, W);
        let ((key_id, degree, modulus, scale, metric), form) =
            take_answer_header(&mut r, [RESPONSE_MAGIC_V1, RESPONSE_MAGIC], W)?;
        let slot_ids = take_slot_ids(&mut r, body.len(), W)?;
        let nslots = slot_ids.len();
        let nprobes = r.u32()? as usize;
        let chunks = r.u32()? as usize;
        if chunks * degree != nslots {
            return Err(Error::malformed(W, "slot count is not chunks × degree"));
        }
        let plen = scores_len(form, modulus, degree);
        // Every probe takes at least its 4-byte id length (found by cargo fuzz: a probe count
        // of 2^28 with zero chunks passed the score-size check and reserved gigabytes).
        if nprobes.saturating_mul(chunks).saturating_mul(plen) > body.len() || nprobes > body.len() / 4 {
            return Err(Error::malformed(W, "score count exceeds message"));
        }
        let mut probe_ids = Vec::with_capacity(nprobes);
        let mut scores = Vec::with_capacity(nprobes);
        for _ in 0..nprobes {
            probe_ids.push(r.string(MAX_ID_BYTES)?);
            let mut per = Vec::with_capacity(chunks);
            for _ in 0..chunks {
                per.push(take_scores(&mut r, degree, modulus, form, W)?);
            }
            scores.push(per);
        }
        r.finish()?;
        Ok(Self { key_id, degree, modulus, form, scale, metric, slot_ids: Arc::new(slot_ids), probe_ids, scores })
    }
}

/// One probe of the second (fine) stage: its full-dimension encryption (coefficient layout, one
/// ciphertext) and the candidate ids the first stage kept for it.
#[derive(Debug, Clone)]
pub struct FineProbe {
    /// Probe id.
    pub probe_id: String,
    /// The probe as one ciphertext of `p(x⁻¹)` (see `pack.rs`).
    pub probe: EncryptedProbe,
    /// Gallery ids to rescore. The server learns these ids (which templates were candidates),
    /// never a score.
    pub candidates: Vec<String>,
}

/// The second-stage query of a two-stage search.
#[derive(Debug, Clone)]
pub struct FineQuery {
    /// Key the probes are encrypted under.
    pub key_id: KeyId,
    /// Quantisation scale of the probes (must be the fine gallery's).
    pub scale: u32,
    /// Matching function (must be the fine gallery's).
    pub metric: Metric,
    /// One entry per probe.
    pub probes: Vec<FineProbe>,
}

/// One gathered chunk: which candidates it holds (id, block) and their encrypted scores.
#[derive(Debug, Clone)]
pub struct GatheredChunk {
    /// Candidate ids in this chunk with their block index: the score of block b is coefficient
    /// `b·R` of the decrypted polynomial.
    pub candidates: Vec<(String, usize)>,
    /// Degree-2 ciphertext switched down to `q0`.
    pub scores: ChunkScores,
}

/// The server's answer to a [`FineQuery`].
#[derive(Debug, Clone)]
pub struct FineResponse {
    /// Key the scores are encrypted under.
    pub key_id: KeyId,
    /// Ring degree N (coefficients per score polynomial).
    pub degree: usize,
    /// The response modulus q0 the scores are switched down to.
    pub modulus: u64,
    /// Packed rows per template R (coefficient stride).
    pub rows: usize,
    /// Quantisation scale of the fine gallery.
    pub scale: u32,
    /// Matching function.
    pub metric: Metric,
    /// `(probe id, gathered chunks)` per probe.
    pub probes: Vec<(String, Vec<GatheredChunk>)>,
}

impl FineResponse {
    /// Ciphertexts returned (one per distinct chunk per probe: at most the candidate count).
    pub fn ciphertexts(&self) -> usize {
        self.probes.iter().map(|(_, c)| c.len()).sum()
    }
}

/// The header both responses start with after their magic: key id, ring degree, response
/// modulus, quantisation scale and metric.
pub(super) fn put_response_header(
    out: &mut Vec<u8>,
    key_id: &KeyId,
    degree: usize,
    modulus: u64,
    scale: u32,
    metric: Metric,
) {
    put_bytes(out, key_id.0.as_bytes());
    out.extend_from_slice(&(degree as u64).to_le_bytes());
    out.extend_from_slice(&modulus.to_le_bytes());
    out.extend_from_slice(&scale.to_le_bytes());
    out.push(metric.code());
}

/// Reads [`put_response_header`], checking the degree and modulus can describe scores.
pub(super) fn take_response_header(r: &mut Reader<'_>, what: &'static str) -> Result<(KeyId, usize, u64, u32, Metric)> {
    let key_id = KeyId(r.string(256)?);
    let degree = r.u64()? as usize;
    let modulus = r.u64()?;
    let scale = r.u32()?;
    let metric = Metric::from_code(r.take(1)?[0])?;
    // Every ciphertext modulus is a 21- to 60-bit prime (`SearchParams::validate`): a tiny
    // modulus would let a short message unpack into many coefficients.
    if !degree.is_power_of_two() || !(8..=1 << 17).contains(&degree) || !(1 << 20..1 << 60).contains(&modulus) {
        return Err(Error::malformed(what, "bad degree or modulus"));
    }
    Ok((key_id, degree, modulus, scale, metric))
}

/// The score polynomials of a chunk, each bit-packed at its part's width (`q0`: the response
/// modulus).
pub(super) fn put_scores(out: &mut Vec<u8>, scores: &ChunkScores, q0: u64) {
    for (p, bits) in scores.polys.iter().zip(scores.form.part_bits(q0)) {
        pack_bits(p, bits, out);
    }
}

/// Bytes of one chunk's scores in `form`.
pub(super) fn scores_len(form: ScoreForm, q0: u64, degree: usize) -> usize {
    form.part_bits(q0).into_iter().map(|b| packed_len(degree, b)).sum()
}

/// Reads [`put_scores`], checking every coefficient is reduced.
pub(super) fn take_scores(
    r: &mut Reader<'_>,
    degree: usize,
    q0: u64,
    form: ScoreForm,
    what: &'static str,
) -> Result<ChunkScores> {
    let polys = form
        .part_moduli(q0)
        .into_iter()
        .map(|modulus| {
            let bits = 64 - modulus.leading_zeros();
            let p = unpack_bits(r.take(packed_len(degree, bits))?, bits, degree)?;
            if p.iter().any(|&c| c >= modulus) {
                return Err(Error::malformed(what, "coefficient not reduced"));
            }
            Ok(p)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ChunkScores { polys, form })
}

/// What [`put_response_header`] writes: key id, ring degree, response modulus, scale, metric.
pub(super) type ResponseHeader = (KeyId, usize, u64, u32, Metric);

/// The start of a 1:N answer (a response or a stream's header frame), in one of two versions
/// `magics = [v1, v2]`: v1, the encoding of earlier versions, for full answers (so that older
/// readers still read them), and v2, whose form follows the response header, for compact ones.
pub(super) fn put_answer_header(out: &mut Vec<u8>, magics: [&[u8; 8]; 2], h: &ResponseHeader, form: ScoreForm) {
    let full = form == ScoreForm::Full;
    out.extend_from_slice(magics[usize::from(!full)]);
    put_response_header(out, &h.0, h.1, h.2, h.3, h.4);
    if !full {
        put_form(out, form);
    }
}

/// Reads [`put_answer_header`] in either version.
pub(super) fn take_answer_header(
    r: &mut Reader<'_>,
    magics: [&[u8; 8]; 2],
    what: &'static str,
) -> Result<(ResponseHeader, ScoreForm)> {
    let magic = r.take(8)?;
    let v1 = magic == magics[0];
    if !v1 && magic != magics[1] {
        return Err(Error::malformed(what, "bad magic"));
    }
    let header = take_response_header(r, what)?;
    let form = if v1 { ScoreForm::Full } else { take_form(r, header.2, what)? };
    Ok((header, form))
}

/// The score form after a response header: 0 (full), or 1 and the two compact moduli.
fn put_form(out: &mut Vec<u8>, form: ScoreForm) {
    match form {
        ScoreForm::Full => out.push(0),
        ScoreForm::Compact { moduli } => {
            out.push(1);
            moduli.iter().for_each(|m| out.extend_from_slice(&m.to_le_bytes()));
        }
    }
}

/// Reads [`put_form`]; compact moduli must lie between 2^16 and the response modulus `q0`.
fn take_form(r: &mut Reader<'_>, q0: u64, what: &'static str) -> Result<ScoreForm> {
    match r.take(1)?[0] {
        0 => Ok(ScoreForm::Full),
        1 => {
            let moduli = [r.u64()?, r.u64()?];
            if moduli.iter().any(|m| !(1 << 16..q0).contains(m)) {
                return Err(Error::malformed(what, "bad compact moduli"));
            }
            Ok(ScoreForm::Compact { moduli })
        }
        _ => Err(Error::malformed(what, "unknown score form")),
    }
}

/// The gallery id of every slot: a count, then each id length-prefixed (`u32::MAX`: no id).
pub(super) fn put_slot_ids(out: &mut Vec<u8>, slot_ids: &[Option<String>]) {
    out.extend_from_slice(&(slot_ids.len() as u64).to_le_bytes());
    for id in slot_ids {
        match id {
            Some(s) => put_bytes(out, s.as_bytes()),
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }
}

/// Reads [`put_slot_ids`] from a message of `len` bytes.
pub(super) fn take_slot_ids(r: &mut Reader<'_>, len: usize, what: &'static str) -> Result<Vec<Option<String>>> {
    let nslots = r.u64()? as usize;
    // Every slot takes at least its 4-byte length.
    if nslots > len / 4 {
        return Err(Error::malformed(what, "slot count exceeds message"));
    }
    let mut slot_ids = Vec::with_capacity(nslots);
    for _ in 0..nslots {
        let len = r.u32()?;
        if len == u32::MAX {
            slot_ids.push(None);
        } else {
            let b = r.take(len as usize)?;
            slot_ids.push(Some(String::from_utf8(b.to_vec()).map_err(|_| Error::malformed(what, "invalid utf-8"))?));
        }
    }
    Ok(slot_ids)
}

impl FineQuery {
    /// Serialises the second-stage query.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(FINE_QUERY_MAGIC);
        put_bytes(&mut out, self.key_id.0.as_bytes());
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.push(self.metric.code());
        out.extend_from_slice(&(self.probes.len() as u32).to_le_bytes());
        for p in &self.probes {
            put_bytes(&mut out, p.probe_id.as_bytes());
            out.extend_from_slice(&(p.candidates.len() as u32).to_le_bytes());
            for c in &p.candidates {
                put_bytes(&mut out, c.as_bytes());
            }
            put_cts(&mut out, &p.probe.cts);
        }
        seal_crc(&mut out);
        out
    }

    /// Reads only the key id of an encoded second-stage query.
    pub fn peek_key_id(bytes: &[u8]) -> Result<KeyId> {
        peek_query_key(bytes, FINE_QUERY_MAGIC, "fine query")
    }

    /// Parses [`FineQuery::to_bytes`]; each probe must be one ciphertext (the coefficient layout).
    pub fn from_bytes(bytes: &[u8], bfv: &Arc<BfvParameters>) -> Result<Self> {
        Self::from_bytes_within(bytes, bfv, usize::MAX, usize::MAX)
    }

    /// [`FineQuery::from_bytes`] of a query of 1 to `max_probes` probes with at most
    /// `max_candidates` candidates each: every count is checked as soon as it is read, and
    /// no ciphertext is decoded before all of them passed.
    pub fn from_bytes_within(
        bytes: &[u8],
        bfv: &Arc<BfvParameters>,
        max_probes: usize,
        max_candidates: usize,
    ) -> Result<Self> {
        const W: &str = "fine query";
        let body = open_crc(bytes, W)?;
        let key_id = Self::peek_key_id(body)?;
        let mut r = Reader::new(body, W);
        r.take(8)?;
        r.string(256)?;
        let scale = r.u32()?;
        let metric = Metric::from_code(r.take(1)?[0])?;
        let n = r.u32()? as usize;
        // Every probe takes at least 12 bytes (id, candidate and ciphertext counts).
        if n > body.len() / 12 {
            return Err(Error::malformed(W, "probe count exceeds message"));
        }
        if n == 0 || n > max_probes {
            return Err(Error::TooMany { what: "probes in a query", limit: max_probes, count: n });
        }
        let mut read = Vec::with_capacity(n);
        for _ in 0..n {
            let probe_id = r.string(MAX_ID_BYTES)?;
            let nc = r.u32()? as usize;
            if nc > body.len() / 4 {
                return Err(Error::malformed(W, "candidate count exceeds message"));
            }
            if nc > max_candidates {
                return Err(Error::TooMany { what: "candidates of one probe", limit: max_candidates, count: nc });
            }
            let candidates = (0..nc).map(|_| r.string(MAX_ID_BYTES)).collect::<Result<Vec<_>>>()?;
            if r.u32()? != 1 {
                return Err(Error::malformed(W, "a fine probe is one ciphertext"));
            }
            read.push((probe_id, candidates, r.bytes(MAX_CT_BYTES)?));
        }
        r.finish()?;
        let probes = read
            .into_iter()
            .map(|(probe_id, candidates, ct)| {
                Ok(FineProbe { probe_id, probe: EncryptedProbe { cts: vec![decode_ct(ct, bfv, W)?] }, candidates })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { key_id, scale, metric, probes })
    }
}

impl FineResponse {
    /// Serialises the second-stage response (scores bit-packed at the modulus' width).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(FINE_RESPONSE_MAGIC);
        put_response_header(&mut out, &self.key_id, self.degree, self.modulus, self.scale, self.metric);
        out.extend_from_slice(&(self.rows as u64).to_le_bytes());
        out.extend_from_slice(&(self.probes.len() as u32).to_le_bytes());
        for (id, chunks) in &self.probes {
            put_bytes(&mut out, id.as_bytes());
            out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
            for c in chunks {
                out.extend_from_slice(&(c.candidates.len() as u32).to_le_bytes());
                for (cid, block) in &c.candidates {
                    put_bytes(&mut out, cid.as_bytes());
                    out.extend_from_slice(&(*block as u32).to_le_bytes());
                }
                put_scores(&mut out, &c.scores, self.modulus);
            }
        }
        seal_crc(&mut out);
        out
    }

    /// Parses [`FineResponse::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const W: &str = "fine response";
        let body = open_crc(bytes, W)?;
        let mut r = Reader::new(body, W);
        if r.take(8)? != FINE_RESPONSE_MAGIC {
            return Err(Error::malformed(W, "bad magic"));
        }
        let (key_id, degree, modulus, scale, metric) = take_response_header(&mut r, W)?;
        let rows = r.u64()? as usize;
        if !(1..=degree).contains(&rows) {
            return Err(Error::malformed(W, "bad row count"));
        }
        let score_bytes = scores_len(ScoreForm::Full, modulus, degree);
        let n = r.u32()? as usize;
        if n > body.len() / 8 {
            return Err(Error::malformed(W, "probe count exceeds message"));
        }
        let mut probes = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.string(MAX_ID_BYTES)?;
            let nchunks = r.u32()? as usize;
            // Every chunk carries its scores: the count is bounded by the message.
            if nchunks.saturating_mul(score_bytes) > body.len() {
                return Err(Error::malformed(W, "chunk count exceeds message"));
            }
            let mut chunks = Vec::with_capacity(nchunks);
            for _ in 0..nchunks {
                let nc = r.u32()? as usize;
                if nc > body.len() / 8 {
                    return Err(Error::malformed(W, "candidate count exceeds message"));
                }
                let candidates =
                    (0..nc).map(|_| Ok((r.string(MAX_ID_BYTES)?, r.u32()? as usize))).collect::<Result<Vec<_>>>()?;
                let scores = take_scores(&mut r, degree, modulus, ScoreForm::Full, W)?;
                chunks.push(GatheredChunk { candidates, scores });
            }
            probes.push((id, chunks));
        }
        r.finish()?;
        Ok(Self { key_id, degree, modulus, rows, scale, metric, probes })
    }
}
