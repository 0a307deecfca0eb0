//! The wire: every message between client and server and its byte encoding (`messages.rs`),
//! over one framing (`frame.rs`: length-prefixed fields, a trailing CRC-32, bit-packing).
//! Every encoding starts with an 8-byte magic, carries the key id, and ends with a CRC-32;
//! decoders never panic on malformed bytes (each has a fuzz target in `fuzz/`).

mod frame;
mod messages;

pub(crate) use frame::{Reader, open_crc, put_bytes, seal_crc};
pub use messages::{
    ChunkScores, EncryptedChunk, EncryptedProbe, FineProbe, FineQuery, FineResponse, GatheredChunk, Query, Response,
};
