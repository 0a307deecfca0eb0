//! The gallery seal: integrity the key holder can check, where CRCs only catch accidents.
//!
//! Every write the key holder makes (an enrolment, a removal) carries a [`Seal`]: a MAC, keyed
//! from the secret key, over everything a client relies on to name and trust an answer — the
//! gallery's random id, a write counter that only grows, the key id, the quantiser, and for each
//! chunk its used-slot count, the BLAKE3 digest of its ciphertexts and the id of every slot. The
//! server stores the seal in the manifest and sends it with every id table ([`IdTable`]); it
//! cannot make one (it has no key) and checks only that a write's counter follows its own.
//!
//! A client holding the key recomputes the state from the table it received and checks the tag
//! ([`SealKey::check_table`]) before it names a single score: a permuted table, a chunk whose
//! ciphertexts are not the sealed ones, a table of another gallery, or a forged claim in a 1:1
//! verification fails. With the highest counter it has seen per gallery, it also refuses an older
//! version served again. What a seal cannot show is that the server scored the sealed
//! ciphertexts: forged scores need verifiable computation (`docs/security.md`).
//!
//! The server computes the same state from its files ([`state_hash`]) without the key: the
//! store's digests come from the bytes it memory-mapped, so a segment replaced on disk shows.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::KeyId;
use crate::quantize::Quantizer;
use crate::wire::{EncryptedChunk, IdTable};

/// Domain separation of the state hash (bumped if its encoding ever changes).
const STATE_CONTEXT: &[u8] = b"hers gallery state v1\0";
/// Key derivation context of the seal key (BLAKE3 `derive_key`).
const KEY_CONTEXT: &str = "hers 2026-12 gallery seal key v1";

/// What a table says of one chunk: its used slots (enrolled, removed ones included) and the
/// BLAKE3 digest of its at-rest ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSeal {
    /// Used slots; the rest of the chunk is empty and scores exactly 0.
    pub used: u32,
    /// BLAKE3 of the chunk's at-rest encoding ([`EncryptedChunk::to_bytes`]).
    pub digest: [u8; 32],
}

impl ChunkSeal {
    /// The seal entry of a chunk holding `used` templates, from its ciphertexts.
    pub fn of(chunk: &EncryptedChunk, used: usize) -> Self {
        Self { used: used as u32, digest: chunk_digest(&chunk.to_bytes()) }
    }
}

/// BLAKE3 of a chunk's at-rest bytes.
pub fn chunk_digest(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// The key holder's seal of one gallery state (stored in the manifest, sent with id tables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// The gallery's random id (hex), fixed by its first sealed write.
    pub gallery: String,
    /// Sealed writes so far: each write's is one more than the last.
    pub counter: u64,
    /// The MAC (hex) of the state.
    pub tag: String,
}

/// The hash of one chunk's part of a gallery state: its [`ChunkSeal`] and the id of each of its
/// slots (`None`: empty or removed; an id in a slot beyond `used` is malformed).
pub fn chunk_hash(c: &ChunkSeal, slot_ids: &[Option<String>]) -> Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    h.update(&c.used.to_le_bytes());
    h.update(&c.digest);
    h.update(&(slot_ids.len() as u64).to_le_bytes());
    for (s, id) in slot_ids.iter().enumerate() {
        match id {
            Some(id) if s < c.used as usize => {
                h.update(&(id.len() as u64).to_le_bytes());
                h.update(id.as_bytes());
            }
            None => {
                h.update(&u64::MAX.to_le_bytes());
            }
            Some(id) => return Err(Error::malformed("id table", format!("id {id:?} in an empty slot"))),
        }
    }
    Ok(*h.finalize().as_bytes())
}

/// The chunk hashes of every chunk `table` describes, in order.
pub fn table_chunk_hashes(table: &IdTable) -> Result<Vec<[u8; 32]>> {
    let n = slots_per_chunk(table)?;
    table.chunks.iter().zip(table.slot_ids.chunks(n.max(1))).map(|(c, ids)| chunk_hash(c, ids)).collect()
}

/// The hash of a gallery state: `gallery`, `counter`, `key_id`, the quantiser, the slots per
/// chunk and every chunk's [`chunk_hash`]. Server and client compute it the same way; only the
/// key holder can MAC it.
pub fn state_hash<'a>(
    gallery: &str,
    counter: u64,
    expect: Expect<'_>,
    per_chunk: usize,
    chunk_hashes: impl IntoIterator<Item = &'a [u8; 32]>,
) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    let text = |h: &mut blake3::Hasher, s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    h.update(STATE_CONTEXT);
    text(&mut h, gallery);
    h.update(&counter.to_le_bytes());
    text(&mut h, &expect.key_id.0);
    h.update(&(expect.quantizer.dim as u64).to_le_bytes());
    h.update(&expect.quantizer.scale.to_le_bytes());
    h.update(&[expect.quantizer.metric.code()]);
    h.update(&(per_chunk as u64).to_le_bytes());
    let mut count = 0u64;
    for c in chunk_hashes {
        h.update(c);
        count += 1;
    }
    h.update(&count.to_le_bytes());
    h.finalize()
}

/// The key holder's MAC key for seals, derived from the secret key (no file of its own: whoever
/// can decrypt can seal, and no one else).
pub struct SealKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SealKey {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<secret>)")
    }
}

/// What a table is checked against: the key id and quantiser the client works with.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The client's key id.
    pub key_id: &'a KeyId,
    /// The quantiser the client encrypts with.
    pub quantizer: &'a Quantizer,
}

impl SealKey {
    /// Derives the seal key from the secret key's coefficients.
    pub(crate) fn derive(secret: &[i64]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
        for c in secret {
            h.update(&c.to_le_bytes());
        }
        let mut key = Zeroizing::new([0u8; 32]);
        h.finalize_xof().fill(&mut key[..]);
        Self(key)
    }

    fn tag(&self, state: &blake3::Hash) -> blake3::Hash {
        blake3::keyed_hash(&self.0, state.as_bytes())
    }

    /// Checks `table`'s seal against its contents. `Ok(false)`: the table carries no seal (a
    /// gallery never written by a key holder of this version, or a cluster's merged table);
    /// an error names what does not match.
    pub fn check_table(&self, table: &IdTable, expect: Expect<'_>) -> Result<bool> {
        let Some(seal) = &table.seal else { return Ok(false) };
        // `slots_per_chunk` refuses a table whose slots are not whole chunks.
        let per_chunk = slots_per_chunk(table)?;
        let hashes = table_chunk_hashes(table)?;
        let state = state_hash(&seal.gallery, seal.counter, expect, per_chunk, &hashes);
        let given = blake3::Hash::from_hex(&seal.tag)
            .map_err(|_| Error::Integrity { what: format!("the seal of gallery {} is not a MAC", seal.gallery) })?;
        // blake3::Hash compares in constant time.
        if self.tag(&state) != given {
            return Err(Error::Integrity {
                what: format!(
                    "the id table of gallery {} (write {}) does not match its seal: its ids, slots, chunk \
                     digests or quantiser are not those the key holder sealed",
                    seal.gallery, seal.counter
                ),
            });
        }
        Ok(true)
    }

    /// The seal of the state after a write to a gallery sealed with `base` (`None`: a gallery
    /// without a seal, which gets a new random id), whose chunks then hash to `chunk_hashes`.
    pub fn seal<'a, R: rand::RngCore + rand::CryptoRng>(
        &self,
        base: Option<&Seal>,
        expect: Expect<'_>,
        per_chunk: usize,
        chunk_hashes: impl IntoIterator<Item = &'a [u8; 32]>,
        rng: &mut R,
    ) -> Seal {
        let (gallery, counter) = match base {
            Some(s) => (s.gallery.clone(), s.counter + 1),
            None => {
                let mut id = [0u8; 16];
                rng.fill_bytes(&mut id);
                (id.iter().map(|b| format!("{b:02x}")).collect(), 1)
            }
        };
        let state = state_hash(&gallery, counter, expect, per_chunk, chunk_hashes);
        Seal { gallery, counter, tag: self.tag(&state).to_hex().to_string() }
    }

    /// The seal of the state after appending `chunks` (holding `ids`, `per_chunk` slots each)
    /// to a gallery sealed with `base` whose chunks hash to `base_hashes`.
    #[allow(clippy::too_many_arguments, reason = "the state before, the write, and the randomness")]
    pub fn seal_append_to<R: rand::RngCore + rand::CryptoRng>(
        &self,
        base: Option<&Seal>,
        base_hashes: &[[u8; 32]],
        expect: Expect<'_>,
        ids: &[String],
        chunks: &[EncryptedChunk],
        per_chunk: usize,
        rng: &mut R,
    ) -> Result<Seal> {
        if ids.len() > chunks.len() * per_chunk || ids.len() + per_chunk <= chunks.len() * per_chunk {
            return Err(Error::InvalidArgument {
                reason: format!("{} ids for {} chunks of {per_chunk} slots", ids.len(), chunks.len()),
            });
        }
        let added = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let slots: Vec<Option<String>> =
                    (i * per_chunk..(i + 1) * per_chunk).map(|s| ids.get(s).cloned()).collect();
                chunk_hash(&ChunkSeal::of(c, ids.len().saturating_sub(i * per_chunk).min(per_chunk)), &slots)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.seal(base, expect, per_chunk, base_hashes.iter().chain(&added), rng))
    }

    /// [`SealKey::seal_append_to`] the gallery `table` describes.
    pub fn seal_append<R: rand::RngCore + rand::CryptoRng>(
        &self,
        table: &IdTable,
        expect: Expect<'_>,
        ids: &[String],
        chunks: &[EncryptedChunk],
        per_chunk: usize,
        rng: &mut R,
    ) -> Result<Seal> {
        if !table.chunks.is_empty() && slots_per_chunk(table)? != per_chunk {
            return Err(Error::malformed("id table", "its chunks hold another number of slots"));
        }
        let base = table_chunk_hashes(table)?;
        self.seal_append_to(table.seal.as_ref(), &base, expect, ids, chunks, per_chunk, rng)
    }

    /// The seal of the state after removing `removed` (each live in `table`) from the gallery
    /// `table` describes.
    pub fn seal_remove<R: rand::RngCore + rand::CryptoRng>(
        &self,
        table: &IdTable,
        expect: Expect<'_>,
        removed: &[String],
        rng: &mut R,
    ) -> Result<Seal> {
        let gone: std::collections::HashSet<&str> = removed.iter().map(String::as_str).collect();
        let slots: Vec<Option<String>> =
            table.slot_ids.iter().map(|id| id.clone().filter(|id| !gone.contains(id.as_str()))).collect();
        let after = IdTable { slot_ids: std::sync::Arc::new(slots), seal: None, ..table.clone() };
        let hashes = table_chunk_hashes(&after)?;
        Ok(self.seal(table.seal.as_ref(), expect, slots_per_chunk(table)?, &hashes, rng))
    }
}

/// Slots per chunk of `table` (0 chunks: any).
fn slots_per_chunk(table: &IdTable) -> Result<usize> {
    match table.chunks.len() {
        0 if table.slot_ids.is_empty() => Ok(0),
        0 => Err(Error::malformed("id table", "slots without chunks")),
        n if table.slot_ids.len().is_multiple_of(n) => Ok(table.slot_ids.len() / n),
        _ => Err(Error::malformed("id table", "slot count is not a multiple of the chunk count")),
    }
}
