//! Second-stage responses as received by the client: any bytes decode or error, never panic; a
//! decodable response is handed to the client's decryption, which must not panic either.
#![no_main]

use encsearch::wire::FineResponse;
use hers_fuzz::{client, sealed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for bytes in [data.to_vec(), sealed(data)] {
        if let Ok(r) = FineResponse::from_bytes(&bytes) {
            let _ = client().decrypt_fine(&r, 3);
        }
    }
});
