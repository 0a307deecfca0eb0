//! The real `hers` binary on real files: outputs, interop with pyarrow and numpy, errors.

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::Command as Bin;
use predicates::prelude::*;

fn hers() -> Bin {
    Bin::cargo_bin("hers").expect("binary built")
}

fn repo() -> PathBuf {
    // Read when the test runs (cargo sets it), not baked in when it was built: a build directory
    // shared between clones must not point a test at another clone.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .join("../..")
}

/// Runs one of the repository's python scripts; python3 with pyarrow and numpy is a test
/// prerequisite that `.ci/run` installs.
fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(repo().join("scripts").join(args[0]))
        .args(&args[1..])
        .output()
        .expect("python3 is installed (see .ci/run)");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).expect("json")
}

#[test]
fn synth_writes_what_pyarrow_reads_and_is_deterministic() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    for p in [&a, &b] {
        hers()
            .args([
                "synth",
                "--preset",
                "arcface",
                "--identities",
                "100",
                "--per-identity",
                "10",
                "--seed",
                "1",
                "--out",
            ])
            .arg(p)
            .assert()
            .success();
    }
    let info = json(&python(&["pyarrow_interop.py", "read", a.to_str().expect("utf8")]));
    assert_eq!(info["rows"], 1000);
    assert_eq!(info["dim"], 512);
    assert!(info["max_norm_error"].as_f64().expect("f64") < 1e-5);
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"), "same seed, same bytes");
}

#[test]
fn a_pyarrow_file_loads_and_evaluates() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("py.parquet");
    let wrote = json(&python(&["pyarrow_interop.py", "write", p.to_str().expect("utf8")]));
    let out = hers().args(["eval", "--json", "--input"]).arg(&p).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(r["rows"], wrote["rows"]);
    assert_eq!(r["dim"], wrote["dim"]);
    assert_eq!(r["probes"], 10);
}

#[test]
fn eval_rank1_agrees_with_numpy_on_the_shipped_test_set() {
    let dir = tempfile::tempdir().expect("tmp");
    let set = repo().join("data/bible-minilm-test.parquet");
    let split = dir.path().join("split.json");
    let out = hers()
        .args(["eval", "--json", "--seed", "3", "--input"])
        .arg(&set)
        .arg("--split-out")
        .arg(&split)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours = json(&String::from_utf8_lossy(&out.stdout))["rank1"].as_f64().expect("rank1");
    let theirs: f64 = python(&["rank1_numpy.py", set.to_str().expect("utf8"), split.to_str().expect("utf8")])
        .trim()
        .parse()
        .expect("float");
    assert!((ours - theirs).abs() < 5e-4, "hers {ours} vs numpy {theirs}");
    assert!(ours > 0.98 && ours < 1.0, "rank-1 {ours}");
}

#[test]
fn bad_input_exits_nonzero_with_a_message_and_no_panic() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("junk.parquet");
    std::fs::write(&p, b"this is not parquet").expect("write");
    hers().args(["eval", "--input"]).arg(&p).assert().failure().stderr(
        predicate::str::contains("not a readable parquet file").and(predicate::str::contains("panicked").not()),
    );
    hers()
        .args(["synth", "--preset", "resnet", "--identities", "2", "--out", "x.parquet"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown preset"));
}

#[test]
fn import_converts_npy_features() {
    use ndarray::{Array1, Array2};
    let dir = tempfile::tempdir().expect("tmp");
    let (f, l, o) = (dir.path().join("f.npy"), dir.path().join("l.npy"), dir.path().join("o.parquet"));
    ndarray_npy::write_npy(&f, &Array2::from_shape_fn((8, 3), |(i, j)| (i + j) as f32 + 1.0)).expect("f");
    ndarray_npy::write_npy(&l, &Array1::from(vec![0i64, 0, 1, 1, 2, 2, 3, 3])).expect("l");
    hers().args(["import", "--features"]).arg(&f).arg("--labels").arg(&l).arg("--out").arg(&o).assert().success();
    let info = json(&python(&["pyarrow_interop.py", "read", o.to_str().expect("utf8")]));
    assert_eq!((info["rows"].as_u64(), info["dim"].as_u64()), (Some(8), Some(3)));
}

#[test]
fn every_command_has_help_and_completions_work() {
    for cmd in ["synth", "import", "eval", "demo", "completions"] {
        hers().args([cmd, "--help"]).assert().success().stdout(predicate::str::contains("Usage"));
    }
    hers().args(["completions", "bash"]).assert().success().stdout(predicate::str::contains("hers"));
}
