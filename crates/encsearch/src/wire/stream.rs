//! The messages a network service adds to the wire:
//!
//! * the streamed answer of a 1:N search ([`ScoreStream`]): a header frame, one frame per
//!   gallery chunk (in any order, each carrying its chunk index and the scores of every probe),
//!   an end frame with the chunk count — each frame `[u32 length][kind][payload][CRC-32]`, so a
//!   client checks every frame as it arrives and a cut stream is an error, never a partial
//!   result. The scores carry no gallery ids: the header names the gallery version they were
//!   computed on, and the client maps slots to ids with that version's [`IdTable`], fetched
//!   once per version;
//! * [`IdTable`]: the slot → id table of one gallery version;
//! * [`Enrolment`]: templates encrypted by the client with their ids, for a server to append.

use std::io::Read;
use std::sync::Arc;

use fhe::bfv::BfvParameters;
use rayon::prelude::*;

use super::frame::{Reader, open_crc, put_bytes, seal_crc};
use super::messages::{
    ChunkScores, EncryptedChunk, MAX_ID_BYTES, Response, peek_query_key, put_answer_header, put_scores, put_slot_ids,
    scores_len, take_answer_header, take_scores, take_slot_ids,
};
use crate::compact::ScoreForm;
use crate::error::{Error, Result};
use crate::keys::KeyId;
use crate::quantize::Metric;
use crate::seal::{ChunkSeal, Seal};

/// Full scores, no form in the header (written for full answers, as earlier versions did).
const STREAM_MAGIC_V1: &[u8; 8] = b"HERSSS01";
/// The header names its [`ScoreForm`] (compact answers).
const STREAM_MAGIC: &[u8; 8] = b"HERSSS02";
/// An id table of slot ids only (read from servers of earlier versions).
const IDS_MAGIC_V1: &[u8; 8] = b"HERSID01";
/// An id table with each chunk's used slots and digest, and the gallery's seal if it has one.
const IDS_MAGIC: &[u8; 8] = b"HERSID02";
/// An enrolment without a seal.
const ENROL_MAGIC_V1: &[u8; 8] = b"HERSEN01";
/// An enrolment with the key holder's seal of the state it makes.
const ENROL_MAGIC: &[u8; 8] = b"HERSEN02";
/// Largest frame a reader accepts: a chunk frame of 64 probes at N = 32768 and a 60-bit
/// response modulus is 47 MB.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// Most probes one streamed answer may carry (bounds a header's allocation).
const MAX_STREAM_PROBES: usize = 1 << 16;

const KIND_HEADER: u8 = 1;
const KIND_CHUNK: u8 = 2;
const KIND_END: u8 = 3;
const KIND_ERROR: u8 = 4;

/// What the first frame of a streamed answer says: whose key, which gallery version, how the
/// scores are encoded, and how many chunks and probes follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// Key the scores are encrypted under.
    pub key_id: KeyId,
    /// Ring degree N (slots per chunk).
    pub degree: usize,
    /// The response modulus q0 (see [`Response::modulus`]).
    pub modulus: u64,
    /// How the scores are encoded.
    pub form: ScoreForm,
    /// Quantisation scale of the gallery.
    pub scale: u32,
    /// Matching function of the gallery.
    pub metric: Metric,
    /// The gallery version the scores were computed on (see [`IdTable`]).
    pub version: u64,
    /// Chunk frames that follow.
    pub chunks: usize,
    /// Probe ids, as in the query; each chunk frame holds one score ciphertext per probe.
    pub probe_ids: Vec<String>,
}

/// Encoders of the frames of a streamed answer (the server's side).
#[derive(Debug, Clone, Copy)]
pub struct StreamFrames;

impl StreamFrames {
    /// The header frame.
    pub fn header(h: &StreamHeader) -> Vec<u8> {
        let mut p = open_frame(KIND_HEADER);
        let header = (h.key_id.clone(), h.degree, h.modulus, h.scale, h.metric);
        put_answer_header(&mut p, [STREAM_MAGIC_V1, STREAM_MAGIC], &header, h.form);
        p.extend_from_slice(&h.version.to_le_bytes());
        p.extend_from_slice(&(h.chunks as u64).to_le_bytes());
        p.extend_from_slice(&(h.probe_ids.len() as u32).to_le_bytes());
        for id in &h.probe_ids {
            put_bytes(&mut p, id.as_bytes());
        }
        frame(p)
    }

    /// The frame of chunk `index`: the score ciphertext of every probe, bit-packed at the
    /// width of its part's modulus (`modulus`: the response modulus q0).
    pub fn chunk(index: usize, scores: &[ChunkScores], modulus: u64) -> Vec<u8> {
        // Sized up front (the packer's 8 bytes of slack and the CRC included): growing a 61 KB
        // frame part by part copied it twice.
        let body: usize = scores.iter().map(|s| scores_len(s.form, modulus, s.polys.first().map_or(0, Vec::len))).sum();
        let mut p = Vec::with_capacity(5 + 8 + body + 8);
        p.extend_from_slice(&open_frame(KIND_CHUNK));
        p.extend_from_slice(&(index as u64).to_le_bytes());
        for s in scores {
            put_scores(&mut p, s, modulus);
        }
        frame(p)
    }

    /// The end frame: every one of `chunks` chunk frames was sent.
    pub fn end(chunks: usize) -> Vec<u8> {
        let mut p = open_frame(KIND_END);
        p.extend_from_slice(&(chunks as u64).to_le_bytes());
        frame(p)
    }

    /// An error frame: the server failed after the answer began; the client discards it.
    pub fn error(message: &str) -> Vec<u8> {
        let mut p = open_frame(KIND_ERROR);
        put_bytes(&mut p, message.as_bytes());
        frame(p)
    }
}

/// A frame under construction: room for its length, then its kind byte; the payload is
/// appended in place and [`frame`] seals it (no copy of a chunk's scores on the server's path).
fn open_frame(kind: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, kind]
}

/// Seals [`open_frame`]: `[u32 length of payload + CRC][payload][CRC-32 of payload]`.
fn frame(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out[4..]);
    out.extend_from_slice(&crc.to_le_bytes());
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// Reads one frame's checked payload from `r`; `Ok(None)` at a clean end of input (between
/// frames).
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Option<()>> {
    const W: &str = "score stream";
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(Error::malformed(W, "stream cut inside a frame length")),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::malformed(W, format!("reading the stream: {e}"))),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(5..=MAX_FRAME_BYTES).contains(&len) {
        return Err(Error::malformed(W, format!("frame of {len} bytes")));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).map_err(|e| Error::malformed(W, format!("stream cut inside a frame: {e}")))?;
    let body_len = open_crc(buf, W)?.len();
    buf.truncate(body_len);
    Ok(Some(()))
}

/// A complete streamed answer, checked: the header, then every chunk's scores exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreStream {
    /// The header frame.
    pub header: StreamHeader,
    /// `scores[probe][chunk]`.
    pub scores: Vec<Vec<ChunkScores>>,
}

impl ScoreStream {
    /// Reads a whole streamed answer from `r`, frame by frame. Fails closed: unless the header,
    /// every chunk exactly once and the end frame arrive intact, the answer is an error (an
    /// error frame from the server becomes [`Error::Server`]).
    pub fn read_from(r: &mut impl Read) -> Result<Self> {
        let mut frames = Vec::new();
        let header = read_stream(
            r,
            |_| Ok(()),
            |_, frame| {
                // The frame's buffer itself (kind byte first), not a copy of its payload.
                frames.push(std::mem::take(frame));
                Ok(())
            },
        )?;
        Self::assemble(header, &frames)
    }

    /// Reads a streamed answer from `r` and hands over each part as it arrives: the header to
    /// `on_header` (before any chunk), then each chunk's index and scores (one per probe) to
    /// `on_chunk`, so a client can decrypt while the rest of the answer is still in transit.
    /// Checked as [`ScoreStream::read_from`] checks: the call fails unless the whole answer
    /// arrived intact, and a caller must discard what it folded when it fails.
    pub fn for_each_chunk(
        r: &mut impl Read,
        on_header: impl FnOnce(&StreamHeader) -> Result<()>,
        mut on_chunk: impl FnMut(usize, Vec<ChunkScores>) -> Result<()>,
    ) -> Result<StreamHeader> {
        read_stream(r, on_header, |h, frame| {
            let (index, scores) = parse_chunk(h, frame)?;
            on_chunk(index, scores)
        })
    }

    /// Reads a whole streamed answer from `r` and checks it as [`ScoreStream::read_from`] does
    /// — every frame's CRC, the header, each chunk index exactly once, each chunk frame's size,
    /// the end frame — without unpacking the scores: what a load generator needs to know that
    /// an answer arrived whole, at a fraction of the client's CPU.
    pub fn verify_from(r: &mut impl Read) -> Result<StreamHeader> {
        read_stream(r, |_| Ok(()), |_, _| Ok(()))
    }

    /// Parses the chunk frames [`read_stream`] kept (on all cores) into `scores[probe][chunk]`;
    /// it has checked that each chunk index came exactly once.
    fn assemble(header: StreamHeader, frames: &[Vec<u8>]) -> Result<Self> {
        const W: &str = "score stream";
        let parsed = frames.par_iter().map(|f| parse_chunk(&header, f)).collect::<Result<Vec<_>>>()?;
        let mut by_index: Vec<Option<Vec<ChunkScores>>> = vec![None; header.chunks];
        for (index, per) in parsed {
            *by_index.get_mut(index).ok_or_else(|| Error::malformed(W, "chunk index out of range"))? = Some(per);
        }
        let mut scores: Vec<Vec<ChunkScores>> =
            (0..header.probe_ids.len()).map(|_| Vec::with_capacity(header.chunks)).collect();
        for per in by_index.into_iter().flatten() {
            for (p, s) in per.into_iter().enumerate() {
                scores[p].push(s);
            }
        }
        Ok(Self { header, scores })
    }

    /// Parses a whole streamed answer held in memory (see [`ScoreStream::read_from`]).
    pub fn from_bytes(mut bytes: &[u8]) -> Result<Self> {
        Self::read_from(&mut bytes)
    }

    /// The answer as a [`Response`], its slots named by `ids` (the [`IdTable`] of the header's
    /// version).
    pub fn into_response(self, ids: &IdTable) -> Result<Response> {
        ids.check_names(&self.header)?;
        let h = self.header;
        Ok(Response {
            key_id: h.key_id,
            degree: h.degree,
            modulus: h.modulus,
            form: h.form,
            scale: h.scale,
            metric: h.metric,
            slot_ids: ids.slot_ids.clone(),
            probe_ids: h.probe_ids,
            scores: self.scores,
        })
    }
}

/// A chunk frame (kind byte first) as its chunk index and the scores of every probe.
fn parse_chunk(header: &StreamHeader, frame: &[u8]) -> Result<(usize, Vec<ChunkScores>)> {
    const W: &str = "score stream";
    let mut rd = Reader::new(frame.get(1..).unwrap_or_default(), W);
    let index = rd.u64()? as usize;
    let per = (0..header.probe_ids.len())
        .map(|_| take_scores(&mut rd, header.degree, header.modulus, header.form, W))
        .collect::<Result<Vec<_>>>()?;
    rd.finish()?;
    Ok((index, per))
}

/// Reads frames up to and including the end frame: the header goes to `on_header`, each chunk
/// frame's buffer (kind byte and payload; the callback may take it) to `on_frame` as it arrives. Every frame's CRC, each chunk
/// index (exactly once) and each chunk frame's size are checked before it is handed over.
fn read_stream(
    r: &mut impl Read,
    on_header: impl FnOnce(&StreamHeader) -> Result<()>,
    mut on_frame: impl FnMut(&StreamHeader, &mut Vec<u8>) -> Result<()>,
) -> Result<StreamHeader> {
    const W: &str = "score stream";
    let mut buf = Vec::new();
    let mut header: Option<StreamHeader> = None;
    let mut on_header = Some(on_header);
    let mut seen: Vec<u64> = Vec::new();
    let mut received = 0usize;
    while read_frame(r, &mut buf)?.is_some() {
        let mut kept = false;
        let (&kind, payload) = buf.split_first().ok_or_else(|| Error::malformed(W, "empty frame"))?;
        let mut rd = Reader::new(payload, W);
        match (kind, &header) {
            (KIND_ERROR, _) => {
                let message = rd.string(MAX_ID_BYTES)?;
                return Err(Error::Server { message });
            }
            (KIND_HEADER, None) => {
                let h = take_header(&mut rd, payload.len())?;
                rd.finish()?;
                seen = vec![0; h.chunks.div_ceil(64)];
                if let Some(f) = on_header.take() {
                    f(&h)?;
                }
                header = Some(h);
            }
            (KIND_CHUNK, Some(h)) => {
                let index = rd.u64()? as usize;
                if index >= h.chunks {
                    return Err(Error::malformed(W, "chunk index out of range"));
                }
                if seen[index / 64] & (1 << (index % 64)) != 0 {
                    return Err(Error::malformed(W, format!("chunk {index} sent twice")));
                }
                seen[index / 64] |= 1 << (index % 64);
                let size = scores_len(h.form, h.modulus, h.degree) * h.probe_ids.len();
                if payload.len() != 8 + size {
                    return Err(Error::malformed(
                        W,
                        format!("chunk frame of {} bytes, expected {}", payload.len(), 8 + size),
                    ));
                }
                received += 1;
                kept = true;
            }
            (KIND_END, Some(h)) => {
                let n = rd.u64()? as usize;
                rd.finish()?;
                if n != h.chunks || received != h.chunks {
                    return Err(Error::malformed(
                        W,
                        format!("answer ended after {received} of {} chunks (end frame says {n})", h.chunks),
                    ));
                }
                if read_frame(r, &mut buf)?.is_some() {
                    return Err(Error::malformed(W, "frames after the end frame"));
                }
                return Ok(h.clone());
            }
            (KIND_HEADER, Some(_)) => return Err(Error::malformed(W, "second header frame")),
            (_, None) => return Err(Error::malformed(W, "frame before the header")),
            (k, Some(_)) => return Err(Error::malformed(W, format!("unknown frame kind {k}"))),
        }
        if kept && let Some(h) = &header {
            on_frame(h, &mut buf)?;
        }
    }
    Err(Error::malformed(W, format!("answer cut after {received} chunks, before its end frame")))
}

/// Reads a header frame's payload (after its kind byte) of `len` bytes.
fn take_header(r: &mut Reader<'_>, len: usize) -> Result<StreamHeader> {
    const W: &str = "score stream";
    let ((key_id, degree, modulus, scale, metric), form) = take_answer_header(r, [STREAM_MAGIC_V1, STREAM_MAGIC], W)?;
    let version = r.u64()?;
    let chunks = r.u64()? as usize;
    let nprobes = r.u32()? as usize;
    if nprobes > MAX_STREAM_PROBES || nprobes > len / 4 {
        return Err(Error::malformed(W, "probe count exceeds message"));
    }
    // Each chunk frame carries its scores: a chunk count beyond what frames of the largest size
    // could hold in 2^40 bytes is not an answer (and would make the reader allocate for it).
    let per_chunk = scores_len(form, modulus, degree) * nprobes.max(1);
    if chunks.saturating_mul(per_chunk) > 1 << 40 || chunks > 1 << 28 {
        return Err(Error::malformed(W, "chunk count out of range"));
    }
    let probe_ids = (0..nprobes).map(|_| r.string(MAX_ID_BYTES)).collect::<Result<Vec<_>>>()?;
    Ok(StreamHeader { key_id, degree, modulus, form, scale, metric, version, chunks, probe_ids })
}

/// The slot → id table of one gallery version (`None`: empty or removed slot). A client
/// fetches it once per version, checks it against its seal (`seal.rs`) and names the slots of
/// every streamed answer with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTable {
    /// The gallery version.
    pub version: u64,
    /// Gallery id of each global slot (`chunk · N + slot`).
    pub slot_ids: Arc<Vec<Option<String>>>,
    /// Each chunk's used slots and ciphertext digest (empty from servers of earlier versions).
    pub chunks: Arc<Vec<ChunkSeal>>,
    /// The key holder's seal of this state, if the gallery has one.
    pub seal: Option<Seal>,
}

impl IdTable {
    /// Checks that this table names the slots of the answer `header` begins: the same gallery
    /// version, a slot for every one of its chunks.
    pub fn check_names(&self, header: &StreamHeader) -> Result<()> {
        if self.version != header.version {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "scores of gallery version {:016x}, ids of version {:016x}",
                    header.version, self.version
                ),
            });
        }
        if self.slot_ids.len() != header.chunks * header.degree {
            return Err(Error::malformed("id table", "slot count is not chunks × degree"));
        }
        Ok(())
    }

    /// A table without chunk digests or seal (a cluster's merged view, tests).
    pub fn unsealed(version: u64, slot_ids: Arc<Vec<Option<String>>>) -> Self {
        Self { version, slot_ids, chunks: Arc::default(), seal: None }
    }

    /// Serialises the table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(IDS_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        put_slot_ids(&mut out, &self.slot_ids);
        out.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        for c in self.chunks.iter() {
            out.extend_from_slice(&c.used.to_le_bytes());
            out.extend_from_slice(&c.digest);
        }
        put_seal(&mut out, self.seal.as_ref());
        seal_crc(&mut out);
        out
    }

    /// Parses [`IdTable::to_bytes`] (and the tables of servers of earlier versions).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const W: &str = "id table";
        let body = open_crc(bytes, W)?;
        let mut r = Reader::new(body, W);
        let magic = r.take(8)?;
        let v1 = magic == IDS_MAGIC_V1;
        if !v1 && magic != IDS_MAGIC {
            return Err(Error::malformed(W, "bad magic"));
        }
        let version = r.u64()?;
        let slot_ids = take_slot_ids(&mut r, body.len(), W)?;
        let (mut chunks, mut seal) = (Vec::new(), None);
        if !v1 {
            let n = r.u64()? as usize;
            if n > body.len() / 36 {
                return Err(Error::malformed(W, "chunk count exceeds message"));
            }
            for _ in 0..n {
                let used = r.u32()?;
                let mut digest = [0u8; 32];
                digest.copy_from_slice(r.take(32)?);
                chunks.push(ChunkSeal { used, digest });
            }
            seal = take_seal(&mut r, W)?;
        }
        r.finish()?;
        Ok(Self { version, slot_ids: Arc::new(slot_ids), chunks: Arc::new(chunks), seal })
    }
}

/// Templates encrypted by the client, with their ids, for a server to append as one segment
/// (`ids[i]` is the template in global slot i of `chunks`). The server holds no key: it checks
/// the key id and the shape, and stores the ciphertexts as they came.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Key the templates are encrypted under.
    pub key_id: KeyId,
    /// Template ids, in slot order.
    pub ids: Vec<String>,
    /// The encrypted chunks (the gallery's layout and dimension).
    pub chunks: Vec<EncryptedChunk>,
    /// The key holder's seal of the gallery state this enrolment makes (required by a sealed
    /// gallery).
    pub seal: Option<Seal>,
}

impl Enrolment {
    /// Serialises the enrolment.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(if self.seal.is_some() { ENROL_MAGIC } else { ENROL_MAGIC_V1 });
        put_bytes(&mut out, self.key_id.0.as_bytes());
        out.extend_from_slice(&(self.ids.len() as u32).to_le_bytes());
        for id in &self.ids {
            put_bytes(&mut out, id.as_bytes());
        }
        out.extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
        for c in &self.chunks {
            put_bytes(&mut out, &c.to_bytes());
        }
        if self.seal.is_some() {
            put_seal(&mut out, self.seal.as_ref());
        }
        seal_crc(&mut out);
        out
    }

    /// Reads only the key id of an encoded enrolment.
    pub fn peek_key_id(bytes: &[u8]) -> Result<KeyId> {
        peek_query_key(bytes, ENROL_MAGIC, "enrolment").or_else(|_| peek_query_key(bytes, ENROL_MAGIC_V1, "enrolment"))
    }

    /// Parses [`Enrolment::to_bytes`]; every chunk must hold `rows` ciphertexts.
    pub fn from_bytes(bytes: &[u8], bfv: &Arc<BfvParameters>, rows: usize) -> Result<Self> {
        const W: &str = "enrolment";
        let body = open_crc(bytes, W)?;
        let key_id = Self::peek_key_id(body)?;
        let mut r = Reader::new(body, W);
        let sealed = r.take(8)? == ENROL_MAGIC;
        r.string(256)?;
        let n = r.u32()? as usize;
        if n > body.len() / 4 {
            return Err(Error::malformed(W, "id count exceeds message"));
        }
        let ids = (0..n).map(|_| r.string(MAX_ID_BYTES)).collect::<Result<Vec<_>>>()?;
        let nc = r.u32()? as usize;
        if nc > body.len() / 4 {
            return Err(Error::malformed(W, "chunk count exceeds message"));
        }
        let chunks = (0..nc)
            .map(|_| EncryptedChunk::from_bytes(r.bytes(MAX_FRAME_BYTES)?, bfv, rows))
            .collect::<Result<Vec<_>>>()?;
        let seal = if sealed { take_seal(&mut r, W)? } else { None };
        r.finish()?;
        Ok(Self { key_id, ids, chunks, seal })
    }
}

/// A seal: a flag byte, then the gallery id, counter and tag.
fn put_seal(out: &mut Vec<u8>, seal: Option<&Seal>) {
    match seal {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_bytes(out, s.gallery.as_bytes());
            out.extend_from_slice(&s.counter.to_le_bytes());
            put_bytes(out, s.tag.as_bytes());
        }
    }
}

/// Reads [`put_seal`].
fn take_seal(r: &mut Reader<'_>, what: &'static str) -> Result<Option<Seal>> {
    match r.take(1)?[0] {
        0 => Ok(None),
        1 => Ok(Some(Seal { gallery: r.string(256)?, counter: r.u64()?, tag: r.string(256)? })),
        _ => Err(Error::malformed(what, "bad seal flag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(chunks: &[usize], end: usize) -> Vec<u8> {
        answer_as(ScoreForm::Full, ScoreForm::Full, chunks, end)
    }

    /// An answer whose header says `form` and whose chunk frames hold scores of `sent`.
    fn answer_as(form: ScoreForm, sent: ScoreForm, chunks: &[usize], end: usize) -> Vec<u8> {
        let modulus = (1u64 << 40) - 87;
        let header = StreamHeader {
            key_id: KeyId("k".into()),
            degree: 8,
            modulus,
            form,
            scale: 3,
            metric: Metric::Cosine,
            version: 9,
            chunks: 3,
            probe_ids: vec!["p".into(), "q".into()],
        };
        let scores = |c: usize| {
            (0..2)
                .map(|p| ChunkScores {
                    polys: (0..sent.part_moduli(modulus).len())
                        .map(|i| vec![(c * 100 + p * 10 + i) as u64; 8])
                        .collect(),
                    form: sent,
                })
                .collect::<Vec<_>>()
        };
        let mut out = StreamFrames::header(&header);
        for &c in chunks {
            out.extend(StreamFrames::chunk(c, &scores(c), modulus));
        }
        out.extend(StreamFrames::end(end));
        out
    }

    #[test]
    fn compact_answers_round_trip_smaller_and_keep_their_form() {
        let form = ScoreForm::Compact { moduli: [(1 << 25) - 39, (1 << 35) - 31] };
        let (full, compact) = (answer(&[0, 1, 2], 3), answer_as(form, form, &[0, 1, 2], 3));
        assert!(compact.len() < full.len() * 2 / 3, "{} vs {} bytes", compact.len(), full.len());
        let s = ScoreStream::from_bytes(&compact).expect("compact answer");
        assert_eq!(s.header.form, form);
        assert!(s.scores.iter().flatten().all(|c| c.polys.len() == 2 && c.form == form));
        assert_eq!(s.scores[1][2].polys[1], vec![211; 8]);
        // Chunk frames of the other form than the header names fail, either way round.
        for (header, sent) in [(form, ScoreForm::Full), (ScoreForm::Full, form)] {
            let err = ScoreStream::from_bytes(&answer_as(header, sent, &[0, 1, 2], 3)).expect_err("mixed forms");
            assert!(err.to_string().contains("chunk frame of"), "{err}");
        }
    }

    #[test]
    fn chunks_in_any_order_assemble_by_index_and_anything_less_than_whole_fails() {
        let whole = answer(&[2, 0, 1], 3);
        let s = ScoreStream::from_bytes(&whole).expect("whole answer");
        assert_eq!(s.scores.len(), 2);
        assert_eq!(s.scores[1][2].polys[0][0], 210);
        assert_eq!(ScoreStream::verify_from(&mut &whole[..]).expect("verifies").chunks, 3);
        let bad = [
            answer(&[0, 1], 2),                                 // a chunk missing
            answer(&[0, 1, 1], 3),                              // a chunk twice
            answer(&[0, 1, 3], 3),                              // out of range
            whole[..whole.len() - 1].to_vec(),                  // cut inside the end frame
            answer(&[0, 1, 2], 3)[..whole.len() - 17].to_vec(), // end frame missing
        ];
        for (i, b) in bad.iter().enumerate() {
            assert!(ScoreStream::from_bytes(b).is_err(), "case {i} read");
            assert!(ScoreStream::verify_from(&mut &b[..]).is_err(), "case {i} verified");
        }
        let mut flipped = whole.clone();
        flipped[60] ^= 1;
        assert!(matches!(ScoreStream::from_bytes(&flipped), Err(Error::Checksum { .. })));
        let mut failed = answer(&[0], 3);
        failed.truncate(failed.len() - 17); // the end frame: length, kind, count, CRC
        failed.extend(StreamFrames::error("disk gone"));
        assert!(matches!(ScoreStream::from_bytes(&failed), Err(Error::Server { message }) if message == "disk gone"));
    }

    #[test]
    fn id_tables_round_trip_and_a_flipped_bit_fails() {
        let mut t = IdTable::unsealed(7, Arc::new(vec![Some("a".into()), None, Some("ü".into())]));
        assert_eq!(IdTable::from_bytes(&t.to_bytes()).expect("table"), t);
        t.chunks = Arc::new(vec![ChunkSeal { used: 2, digest: [7; 32] }]);
        t.seal = Some(Seal { gallery: "g".into(), counter: 3, tag: "ab".into() });
        assert_eq!(IdTable::from_bytes(&t.to_bytes()).expect("table"), t);
        let mut b = t.to_bytes();
        b[10] ^= 4;
        assert!(IdTable::from_bytes(&b).is_err());
    }
}
