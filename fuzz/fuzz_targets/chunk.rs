//! Encrypted chunks as read from a segment: any bytes decode or error, never panic.
#![no_main]

use encsearch::wire::EncryptedChunk;
use hers_fuzz::{sealed, server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rows = data.first().map_or(1, |b| usize::from(*b % 4) + 1);
    let _ = EncryptedChunk::from_bytes(data, server().bfv(), rows);
    // Past the CRC: the same bytes resealed with a correct checksum.
    let _ = EncryptedChunk::from_bytes(&sealed(data), server().bfv(), rows);
});
