//! Key files: `public.json` and `secret.key` bytes decode or error, never panic.
#![no_main]

use std::path::Path;

use encsearch::{ClientKeys, PublicParams};
use hers_fuzz::{public, sealed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = PublicParams::from_json(data, Path::new("public.json"));
    let _ = ClientKeys::from_secret_bytes(public().clone(), data, "secret.key");
    // Past the CRC: the same bytes framed as a secret-key file with a correct checksum.
    let mut framed = b"HERSSK01".to_vec();
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(data);
    let _ = ClientKeys::from_secret_bytes(public().clone(), &sealed(&framed), "secret.key");
});
