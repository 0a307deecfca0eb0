//! Queries as received by the server: any bytes decode or error, never panic.
#![no_main]

use encsearch::Query;
use hers_fuzz::{DIM, sealed, server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Query::peek_key_id(data);
    let _ = Query::from_bytes(data, server().bfv(), DIM);
    let _ = Query::from_bytes(&sealed(data), server().bfv(), DIM);
});
