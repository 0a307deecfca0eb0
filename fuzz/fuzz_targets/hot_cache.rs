//! Hot-form cache files (`seg-N.hot`) as read from disk: any bytes are accepted or refused,
//! never a panic. The fingerprint and counts are taken from the input's own header, so the
//! fuzzer reaches the size and CRC checks too.
#![no_main]

use encsearch::hot::check_hot_cache;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fp: [u8; 16] = data.get(8..24).and_then(|s| s.try_into().ok()).unwrap_or([0; 16]);
    let field = |at: usize| data.get(at..at + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes) as usize;
    let _ = check_hot_cache(data, &fp, field(24), field(32));
    let words = data.len().saturating_sub(64) / 8;
    let _ = check_hot_cache(data, &fp, 1, words);
    let _ = check_hot_cache(data, &fp, usize::MAX, usize::MAX);
});
