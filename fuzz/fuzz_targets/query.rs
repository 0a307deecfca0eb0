//! Queries as received by the server: any bytes decode or error, never panic.
#![no_main]

use std::sync::OnceLock;

use encsearch::{ClientKeys, Preset, Query, ServerContext};
use libfuzzer_sys::fuzz_target;

fn server() -> &'static ServerContext {
    static S: OnceLock<ServerContext> = OnceLock::new();
    S.get_or_init(|| {
        let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rand::rng()).expect("keys");
        ServerContext::new(keys.public(), 2).expect("server")
    })
}

/// `data` followed by its CRC-32, so mutations reach the decoder behind the checksum.
fn sealed(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    b
}

fuzz_target!(|data: &[u8]| {
    let _ = Query::peek_key_id(data);
    let _ = Query::from_bytes(data, server().bfv(), 2);
    let _ = Query::from_bytes(&sealed(data), server().bfv(), 2);
});
