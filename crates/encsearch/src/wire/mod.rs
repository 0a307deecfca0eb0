//! The wire: every message between client and server and its byte encoding (`messages.rs`),
//! the compact-answer key's encoding (`key.rs`), over one framing (`frame.rs`: length-prefixed fields, a trailing CRC-32, bit-packing), and
//! what a network service adds (`stream.rs`: the framed, streamed 1:N answer, the id table of a
//! gallery version, an enrolment of client-encrypted templates).
//! Every encoding starts with an 8-byte magic, carries the key id, and ends with a CRC-32;
//! decoders never panic on malformed bytes (each has a fuzz target in `fuzz/`).

mod frame;
mod key;
mod messages;
mod stream;

pub(crate) use frame::{Reader, open_crc, put_bytes, seal_crc};
pub use messages::{
    ChunkScores, EncryptedChunk, EncryptedProbe, FineProbe, FineQuery, FineResponse, GatheredChunk, Query, Response,
};
pub use stream::{Enrolment, IdTable, MAX_FRAME_BYTES, ScoreStream, StreamFrames, StreamHeader};
