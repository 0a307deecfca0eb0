//! Second-stage queries as received by the server: any bytes decode or error, never panic.
#![no_main]

use encsearch::wire::FineQuery;
use hers_fuzz::{sealed, server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = FineQuery::peek_key_id(data);
    let _ = FineQuery::from_bytes(data, server().bfv());
    let _ = FineQuery::from_bytes(&sealed(data), server().bfv());
});
