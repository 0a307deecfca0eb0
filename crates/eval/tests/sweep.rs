//! Sweeps end to end on small synthetic data: outputs written, interrupted runs resumed
//! without redoing finished cells, encrypted cells exact.

use eval::{CellResult, SweepConfig, run_sweep};

fn config(out: &std::path::Path, modes: &str) -> SweepConfig {
    let text = format!(
        r#"
name = "tiny"
out_dir = "{}"
methods = ["none", "pca"]
dims = [8, 16]
modes = [{modes}]
max_encrypted_probes = 40

[[datasets]]
name = "synth"
[datasets.synthetic]
preset = "deepprint"
train_identities = 100
test_identities = 60
per_identity = 3
seed = 5
"#,
        out.display()
    );
    let c: SweepConfig = toml::from_str(&text).expect("config");
    c.check().expect("valid");
    c
}

fn read_cell(path: &std::path::Path) -> CellResult {
    serde_json::from_str(&std::fs::read_to_string(path).expect("cell")).expect("json")
}

#[test]
fn a_sweep_writes_tables_and_plots_and_resumes_without_redoing_cells() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = config(tmp.path(), r#""plaintext""#);
    let first = run_sweep(&c, false).expect("sweep");
    assert_eq!(first.results.len(), 3, "none + pca × 2 dims");
    assert_eq!(first.computed, 3);
    for f in [
        "config.toml",
        "results.parquet",
        "results.csv",
        "cmc.csv",
        "summary.md",
        "cmc-synth.png",
        "cmc-synth.svg",
        "rank1-vs-dim-synth.png",
        "rank1-vs-dim-synth.svg",
        "DONE",
    ] {
        assert!(first.dir.join(f).exists(), "{f} missing");
    }
    let none = first.results.iter().find(|r| r.method == "none").expect("none");
    assert_eq!(none.dim, 192);
    assert!(none.rank1 > 0.9, "{none:?}");
    let csv = std::fs::read_to_string(first.dir.join("results.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 4, "header + 3 rows");

    // Simulate an interruption: the run is not DONE, one cell is missing, one cell carries a
    // marker value that a recomputation would overwrite.
    std::fs::remove_file(first.dir.join("DONE")).expect("undone");
    let cells = first.dir.join("cells");
    let mut names: Vec<_> = std::fs::read_dir(&cells).expect("ls").map(|e| e.expect("entry").path()).collect();
    names.sort();
    std::fs::remove_file(&names[0]).expect("drop a cell");
    let mut kept = read_cell(&names[1]);
    kept.rank1 = 0.123;
    std::fs::write(&names[1], serde_json::to_string(&kept).expect("json")).expect("mark");

    let second = run_sweep(&c, false).expect("resume");
    assert_eq!(second.dir, first.dir, "resumed in the same run folder");
    assert_eq!(second.computed, 1, "only the missing cell is computed");
    assert_eq!(read_cell(&names[1]).rank1, 0.123, "finished cells are not redone");
    assert!(names[0].exists());
    assert!(second.results.iter().any(|r| r.rank1 == 0.123));

    // A finished run is not resumed: a new run folder starts.
    let third = run_sweep(&c, false).expect("fresh");
    assert_ne!(third.dir, first.dir);
    assert_eq!(third.computed, 3);
}

#[test]
fn encrypted_cells_match_plaintext_on_quantised_vectors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut c = config(tmp.path(), r#""encrypted", "two-stage""#);
    c.methods = vec!["pca".into()];
    c.dims = vec![8];
    c.candidates = 5;
    let out = run_sweep(&c, false).expect("sweep");
    let r = &out.results[0];
    assert_eq!((r.mode.as_str(), r.dim, r.probes), ("encrypted", 8, 40));
    assert!(r.exact, "decrypted scores equal integer inner products");
    assert!(r.rank1 > 0.2, "far above chance (1/60): {r:?}");
    assert!(r.hers_query_ms > r.score_ms, "{r:?}");
    // Two-stage: the 8-D stage keeps 5 candidates, the 192-D encrypted stage reranks them.
    let t = &out.results[1];
    assert_eq!((t.mode.as_str(), t.dim, t.probes), ("two-stage", 8, 40));
    assert!(t.exact, "both stages exact");
    assert!(t.rank1 >= r.rank1 && t.rank1 <= r.cmc[4], "between 8-D rank-1 and 8-D rank-5: {t:?} vs {r:?}");
    assert!(t.query_ms > r.query_ms && t.tar_far_1e3.is_nan());
}
