//! Gallery manifests: any bytes parse and validate or error, never panic.
#![no_main]

use std::path::Path;

use encsearch::store::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data, Path::new("manifest.json")) {
        let _ = m.templates_per_chunk();
    }
});
