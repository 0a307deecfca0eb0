//! Helpers shared by the tests that drive the real binary: running `hers`, and deterministic
//! input files.
#![allow(dead_code, reason = "each test file uses its own subset")]

use std::path::{Path, PathBuf};

use assert_cmd::Command as Bin;
use embeddings::{EmbeddingSet, Ids, write_set};

pub const DIM: usize = 16;

pub fn hers() -> Bin {
    Bin::cargo_bin("hers").expect("binary built")
}

pub fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("hers")
}

pub fn ok(args: &[&str], dir: &Path) {
    let out = hers().current_dir(dir).args(args).output().expect("run");
    assert!(out.status.success(), "hers {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Deterministic pseudo-random unit vector of `DIM` for row `i` (distinct rows, distinct vectors).
pub fn row(i: i64) -> Vec<f32> {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    embeddings::l2_normalize(&mut v);
    v
}

/// An input file with ids `ids` (labels = ids).
pub fn input(path: &Path, ids: std::ops::Range<i64>) {
    let data: Vec<f32> = ids.clone().flat_map(row).collect();
    let set = EmbeddingSet::new(Ids::Int(ids.clone().collect()), ids.collect(), DIM, data).expect("set");
    write_set(path, &set).expect("write");
}

/// Writes a bearer token file readable by its owner only (servers and clients refuse others).
pub fn token_file(path: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, token).expect("token file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("token file mode");
}
