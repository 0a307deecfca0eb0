//! The service's other bodies: id tables (client side) and enrolments (server side) decode or
//! error, never panic.
#![no_main]

use encsearch::wire::{Enrolment, IdTable};
use hers_fuzz::{DIM, sealed, server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for bytes in [data.to_vec(), sealed(data)] {
        let _ = IdTable::from_bytes(&bytes);
        let _ = Enrolment::from_bytes(&bytes, server().bfv(), DIM);
    }
});
