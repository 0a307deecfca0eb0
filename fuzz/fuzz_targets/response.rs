//! Responses as received by the client: any bytes decode or error, never panic; a decodable
//! response is handed to the client's decryption, which must not panic either.
#![no_main]

use std::sync::OnceLock;

use encsearch::{Client, ClientKeys, Preset, Response};
use libfuzzer_sys::fuzz_target;

fn client() -> &'static Client {
    static C: OnceLock<Client> = OnceLock::new();
    C.get_or_init(|| {
        let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rand::rng()).expect("keys");
        Client::new(keys, 2).expect("client")
    })
}

/// `data` followed by its CRC-32, so mutations reach the decoder behind the checksum.
fn sealed(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    b
}

fuzz_target!(|data: &[u8]| {
    for bytes in [data.to_vec(), sealed(data)] {
        if let Ok(r) = Response::from_bytes(&bytes) {
            let _ = client().decrypt_top_k(&r, 3);
        }
    }
});
