//! Streamed search answers as received by a client: any bytes read frame by frame decode or
//! error, never panic; a complete answer named by an id table is handed to decryption, which
//! must not panic either.
#![no_main]

use std::sync::Arc;

use encsearch::wire::{IdTable, ScoreStream};
use hers_fuzz::{client, framed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for bytes in [data.to_vec(), framed(data)] {
        if let Ok(s) = ScoreStream::from_bytes(&bytes) {
            let slots = s.header.chunks.saturating_mul(s.header.degree).min(1 << 20);
            let table = IdTable {
                version: s.header.version,
                slot_ids: Arc::new(vec![Some("a".into()); slots]),
                chunks: Arc::new(Vec::new()),
                seal: None,
            };
            if let Ok(r) = s.into_response(&table) {
                let _ = client().decrypt_top_k(&r, 3);
            }
        }
    }
});
