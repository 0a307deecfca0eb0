//! Key files: `public.json` and `secret.key` bytes decode or error, never panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use encsearch::{ClientKeys, Preset, PublicParams};
use libfuzzer_sys::fuzz_target;

fn public() -> &'static PublicParams {
    static P: OnceLock<PublicParams> = OnceLock::new();
    P.get_or_init(|| {
        ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rand::rng()).expect("keys").public().clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = PublicParams::from_json(data, Path::new("public.json"));
    let _ = ClientKeys::from_secret_bytes(public().clone(), data, "secret.key");
    // Past the CRC: the same bytes framed as a secret-key file with a correct checksum.
    let mut framed = b"HERSSK01".to_vec();
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(data);
    framed.extend_from_slice(&crc32fast::hash(&framed).to_le_bytes());
    let _ = ClientKeys::from_secret_bytes(public().clone(), &framed, "secret.key");
});
