//! The whole pipeline through the real binary, small: synth → train → project → keygen →
//! enroll → search (one process and split roles, one and two stages) → results readable by pyarrow, plus the
//! errors a user meets first (wrong key, wrong dimension).

use std::path::Path;

use assert_cmd::Command as Bin;
use predicates::prelude::*;

fn hers() -> Bin {
    Bin::cargo_bin("hers").expect("binary built")
}

fn ok(args: &[&str], dir: &Path) {
    let out = hers().current_dir(dir).args(args).output().expect("run");
    assert!(out.status.success(), "hers {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn train_project_enroll_search_and_roles_agree() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(
        &[
            "synth",
            "--preset",
            "deepprint",
            "--identities",
            "150",
            "--per-identity",
            "4",
            "--seed",
            "1",
            "--out",
            "train.parquet",
        ],
        d,
    );
    ok(
        &[
            "synth",
            "--preset",
            "deepprint",
            "--identities",
            "60",
            "--per-identity",
            "4",
            "--seed",
            "2",
            "--out",
            "test.parquet",
        ],
        d,
    );
    std::fs::write(
        d.join("pca.toml"),
        "name = \"pca-test\"\n[data]\ntrain = \"train.parquet\"\n[model]\nstages = [64, 32, 16]\n[train]\nmethod = \"pca\"\n",
    )
    .expect("config");
    ok(&["train", "--config", "pca.toml", "--out", "model"], d);
    ok(&["project", "--model", "model", "--input", "test.parquet", "--out", "p16.parquet", "--dim", "16"], d);
    ok(&["keygen", "--out", "keys"], d);
    ok(&["enroll", "--keys", "keys", "--input", "p16.parquet", "--gallery", "g"], d);

    // All roles in one process.
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p16.parquet", "--top-k", "3", "--out", "r.csv"], d);
    // The same query with the roles split; the server step gets no key.
    let encrypt = ["query", "encrypt", "--keys", "keys", "--gallery", "g", "--probes", "p16.parquet"];
    ok(&[&encrypt[..], &["--out", "q.enc"]].concat(), d);
    ok(&["query", "score", "--gallery", "g", "--query", "q.enc", "--out", "r.enc"], d);
    ok(&["query", "decrypt", "--keys", "keys", "--response", "r.enc", "--top-k", "3", "--out", "r2.csv"], d);
    // A second server run maps the hot-form cache the first one wrote, and answers the same.
    hers()
        .current_dir(d)
        .args(["query", "score", "--gallery", "g", "--query", "q.enc", "--out", "r4.enc"])
        .assert()
        .success()
        .stderr(predicate::str::contains("mapped from disk"));
    ok(&["query", "decrypt", "--keys", "keys", "--response", "r4.enc", "--top-k", "3", "--out", "r4.csv"], d);
    assert_eq!(
        std::fs::read_to_string(d.join("r4.csv")).expect("r4"),
        std::fs::read_to_string(d.join("r2.csv")).expect("r2")
    );
    // The server scoring straight from the memory-mapped segments answers the same.
    ok(&["query", "score", "--gallery", "g", "--query", "q.enc", "--out", "r3.enc", "--stream"], d);
    ok(&["query", "decrypt", "--keys", "keys", "--response", "r3.enc", "--top-k", "3", "--out", "r3.csv"], d);
    // A query asking for compact answers: same results, about half the answer's bytes.
    ok(&[&encrypt[..], &["--compact", "--out", "qc.enc"]].concat(), d);
    ok(&["query", "score", "--gallery", "g", "--query", "qc.enc", "--out", "rc.enc"], d);
    ok(&["query", "decrypt", "--keys", "keys", "--response", "rc.enc", "--top-k", "3", "--out", "rc.csv"], d);
    let size = |f: &str| std::fs::metadata(d.join(f)).expect("answer").len() as f64;
    assert!(size("rc.enc") < 0.55 * size("r.enc"), "compact {} B, full {} B", size("rc.enc"), size("r.enc"));
    let one = std::fs::read_to_string(d.join("r.csv")).expect("r");
    let split = std::fs::read_to_string(d.join("r2.csv")).expect("r2");
    assert_eq!(std::fs::read_to_string(d.join("rc.csv")).expect("rc"), split, "compact answers give the same results");
    assert_eq!(one, split, "split roles give the same results");
    assert_eq!(
        std::fs::read_to_string(d.join("r3.csv")).expect("r3"),
        split,
        "streamed scoring gives the same results"
    );
    assert_eq!(one.lines().count(), 1 + 240 * 3, "header + 3 matches per probe");
    // Every probe is itself enrolled: its top match is itself, with the largest score.
    for line in one.lines().skip(1).filter(|l| l.split(',').nth(1) == Some("1")) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0], f[2], "{line}");
    }

    // 1:1 verification scores one chunk and agrees with the 1:N search: the rank-2 match of the
    // first probe has the same similarity, and the threshold decides.
    let second: Vec<&str> =
        one.lines().skip(1).find(|l| l.split(',').nth(1) == Some("2")).expect("a rank-2 row").split(',').collect();
    let verify = |claim: &str, threshold: &str| {
        let out = hers()
            .current_dir(d)
            .args([
                "verify",
                "--keys",
                "keys",
                "--gallery",
                "g",
                "--probe",
                "p16.parquet",
                "--probe-id",
                second[0],
                "--claim",
                claim,
                "--threshold",
                threshold,
            ])
            .output()
            .expect("run");
        assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let sim: f64 = second[4].parse().expect("similarity");
    let line = verify(second[2], "-1");
    let printed: f64 = line
        .split("similarity ")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("similarity");
    assert!(line.starts_with("accept") && (printed - sim).abs() < 1e-3, "1:1 {line} vs 1:N {sim}");
    assert!(verify(second[2], &format!("{}", sim + 0.01)).starts_with("reject"));
    assert!(verify(second[0], "0.99").starts_with("accept"), "a probe verifies against itself");
    hers()
        .current_dir(d)
        .args(["verify", "--keys", "keys", "--gallery", "g", "--probe", "p16.parquet", "--claim", "nobody"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nobody").and(predicate::str::contains("panicked").not()));

    // Two-stage: 16-D candidates rescored in a 192-D coefficient-layout gallery under its own key.
    ok(&["keygen", "--preset", "n8192", "--out", "fkeys"], d);
    ok(&["enroll", "--keys", "fkeys", "--input", "test.parquet", "--gallery", "fine", "--layout", "coefficient"], d);
    // Top-5 with the hot form, then streamed from the segments (no hot form held): the same
    // results, byte for byte.
    let top5 = ["search", "--keys", "keys", "--gallery", "g", "--probes", "p16.parquet", "--top-k", "5", "--out"];
    ok(&[&top5[..], &["r5.csv"]].concat(), d);
    ok(&[&top5[..], &["streamed.csv", "--stream"]].concat(), d);
    assert_eq!(
        std::fs::read_to_string(d.join("streamed.csv")).expect("streamed"),
        std::fs::read_to_string(d.join("r5.csv")).expect("r5"),
        "--stream gives the hot form's results"
    );
    ok(
        &[
            "search",
            "--keys",
            "keys",
            "--gallery",
            "g",
            "--probes",
            "p16.parquet",
            "--top-k",
            "3",
            "--out",
            "two.csv",
            "--two-stage",
            "--fine-gallery",
            "fine",
            "--fine-keys",
            "fkeys",
            "--fine-probes",
            "test.parquet",
            "--candidates",
            "5",
        ],
        d,
    );
    let first = std::fs::read_to_string(d.join("r5.csv")).expect("r5");
    let two = std::fs::read_to_string(d.join("two.csv")).expect("two");
    assert_eq!(two.lines().count(), 1 + 240 * 3, "header + 3 matches per probe");
    let mut last: Option<(String, f64)> = None;
    for line in two.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (probe, rank, id, sim) = (f[0], f[1], f[2], f[4].parse::<f64>().expect("similarity"));
        assert!(
            first.lines().any(|l| l.starts_with(&format!("{probe},")) && l.split(',').nth(2) == Some(id)),
            "{line}: not a first-stage candidate"
        );
        if rank == "1" {
            assert_eq!(probe, id, "a probe enrolled in both galleries finds itself");
            assert!((sim - 1.0).abs() < 0.01, "self-similarity at 192-D: {line}");
        } else if let Some((p, s)) = &last {
            assert!(p == probe && *s >= sim, "ranked best first: {line}");
        }
        last = Some((probe.to_string(), sim));
    }
    // The same two-stage search with the roles split: the first stage's decrypted top-5 are the
    // candidates; the server steps get no key.
    ok(&["query", "decrypt", "--keys", "keys", "--response", "r.enc", "--top-k", "5", "--out", "c5.parquet"], d);
    ok(
        &[
            "query",
            "fine-encrypt",
            "--keys",
            "fkeys",
            "--probes",
            "test.parquet",
            "--candidates",
            "c5.parquet",
            "--gallery",
            "fine",
            "--out",
            "fq.enc",
        ],
        d,
    );
    ok(&["query", "fine-score", "--gallery", "fine", "--query", "fq.enc", "--out", "fr.enc"], d);
    ok(
        &["query", "fine-decrypt", "--keys", "fkeys", "--response", "fr.enc", "--top-k", "3", "--out", "two-split.csv"],
        d,
    );
    assert_eq!(
        std::fs::read_to_string(d.join("two-split.csv")).expect("two-split"),
        two,
        "split roles give the same two-stage results"
    );
    // The fine query under the other key set is refused by the server step.
    hers()
        .current_dir(d)
        .args(["query", "fine-score", "--gallery", "g", "--query", "fq.enc", "--out", "x.enc"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("key").and(predicate::str::contains("panicked").not()));

    // A coefficient-layout gallery is not a 1:N gallery.
    hers()
        .current_dir(d)
        .args([
            "search",
            "--keys",
            "fkeys",
            "--gallery",
            "fine",
            "--probes",
            "test.parquet",
            "--top-k",
            "1",
            "--out",
            "x.csv",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("two-stage").and(predicate::str::contains("panicked").not()));

    // Parquet output by default.
    ok(
        &[
            "search",
            "--keys",
            "keys",
            "--gallery",
            "g",
            "--probes",
            "p16.parquet",
            "--top-k",
            "1",
            "--out",
            "r.parquet",
        ],
        d,
    );
    assert!(std::fs::read(d.join("r.parquet")).expect("parquet").starts_with(b"PAR1"));

    // Another key set cannot read this gallery; a full-dimension probe file is refused.
    ok(&["keygen", "--out", "other"], d);
    hers()
        .current_dir(d)
        .args([
            "search",
            "--keys",
            "other",
            "--gallery",
            "g",
            "--probes",
            "p16.parquet",
            "--top-k",
            "1",
            "--out",
            "x.csv",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("key").and(predicate::str::contains("panicked").not()));
    hers()
        .current_dir(d)
        .args([
            "search",
            "--keys",
            "keys",
            "--gallery",
            "g",
            "--probes",
            "test.parquet",
            "--top-k",
            "1",
            "--out",
            "x.csv",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("192").and(predicate::str::contains("16")));
}
