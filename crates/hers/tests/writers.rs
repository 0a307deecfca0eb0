//! Gallery writers through the real binary: two enrolments at once, a killed enrolment resumed,
//! duplicate ids, a world-readable secret key, and `hers gallery check [--repair]`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DIM, exe, hers, input, ok, row};
use embeddings::{EmbeddingSet, Ids, write_set};
use encsearch::Gallery;
use predicates::prelude::*;

fn segments(gallery: &Path) -> usize {
    std::fs::read(gallery.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["segments"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn concurrent_enrolments_never_lose_an_acknowledged_batch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("c.parquet"), 0..2500);
    input(&d.join("e.parquet"), 100_000..102_500);
    input(&d.join("seed.parquet"), 900_000..900_010);
    for round in 0..6 {
        let g = d.join(format!("g{round}"));
        // Odd rounds: the gallery exists already; even rounds: both processes race to create it.
        if round % 2 == 1 {
            ok(&["enroll", "--keys", "keys", "--input", "seed.parquet", "--gallery", g.to_str().expect("utf8")], d);
        }
        let spawn = |file: &str| {
            Command::new(exe())
                .current_dir(d)
                .args(["enroll", "--keys", "keys", "--chunks-per-segment", "1", "--input", file, "--gallery"])
                .arg(&g)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        let (a, b) = (spawn("c.parquet"), spawn("e.parquet"));
        let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
        let gallery = Gallery::open(&g).expect("gallery opens");
        let mut expected = if round % 2 == 1 { 10 } else { 0 };
        // Without --no-wait the second writer waits: both must succeed, and both batches stay.
        for (out, first) in [(&a, 0i64), (&b, 100_000)] {
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
            expected += 2500;
            assert!(gallery.locate(&first.to_string()).is_ok(), "round {round}: exit 0 but its rows are missing");
            assert!(gallery.locate(&(first + 2499).to_string()).is_ok());
        }
        assert_eq!(gallery.len(), expected, "round {round}");
    }
}

#[test]
fn no_wait_names_the_holder_and_adds_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("a.parquet"), 0..10);
    input(&d.join("b.parquet"), 10..20);
    ok(&["enroll", "--keys", "keys", "--input", "a.parquet", "--gallery", "g"], d);
    let held =
        encsearch::store::WriterLock::acquire(&d.join("g"), encsearch::store::LockWait::NoWait, |_| {}).expect("lock");
    let pid = format!("pid {}", std::process::id());
    for args in [
        &["enroll", "--keys", "keys", "--input", "b.parquet", "--gallery", "g", "--no-wait"][..],
        &["remove", "--gallery", "g", "--ids", "3", "--no-wait"][..],
        &["gallery", "check", "g", "--repair", "--no-wait"][..],
    ] {
        hers().current_dir(d).args(args).assert().failure().stderr(predicate::str::contains(pid.as_str()));
    }
    // Readers are not blocked.
    ok(&["gallery", "check", "g"], d);
    drop(held);
    assert_eq!(Gallery::open(&d.join("g")).expect("open").len(), 10);
}

#[test]
fn a_killed_enrolment_resumes_to_exactly_the_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    // 12 chunks of 4096 templates, one segment each.
    let rows = 12 * 4096;
    input(&d.join("big.parquet"), 0..rows);
    let mut killed = None;
    for attempt in 0..4 {
        let g = d.join(format!("g{attempt}"));
        let mut child = Command::new(exe())
            .current_dir(d)
            .args(["enroll", "--keys", "keys", "--chunks-per-segment", "1", "--input", "big.parquet", "--gallery"])
            .arg(&g)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let start = Instant::now();
        while segments(&g) == 0 && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        let committed = segments(&g);
        if (1..12).contains(&committed) {
            killed = Some((g, committed));
            break;
        }
    }
    let (g, committed) = killed.expect("an enrolment was killed part-way in one of 4 attempts");
    let gs = g.to_str().expect("utf8");
    // A plain rerun says how much is there and suggests --resume; it adds nothing.
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "big.parquet", "--gallery", gs])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already holds").and(predicate::str::contains("--resume")));
    assert_eq!(segments(&g), committed);
    ok(&["enroll", "--keys", "keys", "--input", "big.parquet", "--gallery", gs, "--resume"], d);
    let gallery = Gallery::open(&g).expect("open");
    assert_eq!(gallery.len(), rows as usize, "every row once");
    let all: Vec<String> = (0..rows).map(|i| i.to_string()).collect();
    assert_eq!(gallery.locate_many(&all).expect("every id present").len(), rows as usize);
    // A search finds a template of the killed run's part and one of the resumed part.
    let first_part = 0i64;
    let resumed_part = rows - 1;
    let probes: Vec<f32> = [first_part, resumed_part].into_iter().flat_map(row).collect();
    let set = EmbeddingSet::new(Ids::Int(vec![-1, -2]), vec![0, 1], DIM, probes).expect("probes");
    write_set(d.join("probes.parquet"), &set).expect("write");
    ok(
        &["search", "--keys", "keys", "--gallery", gs, "--probes", "probes.parquet", "--top-k", "1", "--out", "r.csv"],
        d,
    );
    let csv = std::fs::read_to_string(d.join("r.csv")).expect("results");
    let top: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(2).expect("gallery_id")).collect();
    assert_eq!(top, vec![first_part.to_string(), resumed_part.to_string()], "{csv}");
    // Resuming a finished enrolment enrols nothing more.
    ok(&["enroll", "--keys", "keys", "--input", "big.parquet", "--gallery", gs, "--resume"], d);
    assert_eq!(Gallery::open(&g).expect("open").len(), rows as usize);
}

#[test]
fn duplicate_ids_name_the_file_the_row_and_the_other_copy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("a.parquet"), 0..100);
    input(&d.join("b.parquet"), 50..150);
    ok(&["enroll", "--keys", "keys", "--input", "a.parquet", "--gallery", "g"], d);
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "b.parquet", "--gallery", "g"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("b.parquet")
                .and(predicate::str::contains("row 0"))
                .and(predicate::str::contains("id 50"))
                .and(predicate::str::contains("already in the gallery"))
                .and(predicate::str::contains("seg-00000001.bin"))
                .and(predicate::str::contains("49 more rows")),
        );
    // --resume does not let another input's ids in either.
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "b.parquet", "--gallery", "g", "--resume"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already in the gallery"));
    assert_eq!(Gallery::open(&d.join("g")).expect("open").len(), 100);
    // Twice in one file: both rows named.
    let mut dup =
        EmbeddingSet::new(Ids::Int(vec![7, 8, 9]), vec![7, 8, 9], DIM, [7, 8, 9].into_iter().flat_map(row).collect())
            .expect("set");
    dup.ids = Ids::Int(vec![7, 8, 7]);
    write_set(d.join("dup.parquet"), &dup).expect("write");
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "dup.parquet", "--gallery", "g2"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("dup.parquet").and(predicate::str::contains("7")).and(
                predicate::str::contains("rows 0 and 2")
                    .or(predicate::str::contains("row 2").and(predicate::str::contains("row 0"))),
            ),
        );
}

#[cfg(unix)]
#[test]
fn a_world_readable_secret_key_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("a.parquet"), 0..10);
    let key = d.join("keys").join(encsearch::keys::SECRET_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "a.parquet", "--gallery", "g"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("chmod 600").and(predicate::str::contains("644")));
    assert!(!d.join("g").exists(), "nothing written with a refused key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    ok(&["enroll", "--keys", "keys", "--input", "a.parquet", "--gallery", "g"], d);
}

#[test]
fn gallery_check_finds_debris_and_corruption_and_repair_removes_only_debris() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("a.parquet"), 0..100);
    ok(&["enroll", "--keys", "keys", "--input", "a.parquet", "--gallery", "g"], d);
    hers().current_dir(d).args(["gallery", "check", "g"]).assert().success().stdout(predicate::str::contains("ok"));
    // What a crash between writing a segment and committing it leaves.
    let g = d.join("g");
    std::fs::copy(g.join("seg-00000001.bin"), g.join("seg-00000002.bin")).expect("copy");
    std::fs::write(g.join(".hers-tmp-abc123"), b"half").expect("tmp");
    hers().current_dir(d).args(["gallery", "check", "g"]).assert().success().stdout(
        predicate::str::contains("unlisted")
            .and(predicate::str::contains("seg-00000002.bin"))
            .and(predicate::str::contains(".hers-tmp-abc123")),
    );
    hers().current_dir(d).args(["gallery", "check", "g", "--repair"]).assert().success();
    assert!(!g.join("seg-00000002.bin").exists() && !g.join(".hers-tmp-abc123").exists());
    assert!(g.join("seg-00000001.bin").exists(), "a committed segment is never removed");
    assert_eq!(Gallery::open(&g).expect("open").len(), 100);
    // A flipped byte in a committed segment is a problem: non-zero exit, the file named.
    let seg = g.join("seg-00000001.bin");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[100] ^= 0xff;
    std::fs::write(&seg, &bytes).expect("write");
    hers()
        .current_dir(d)
        .args(["gallery", "check", "g", "--repair"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("seg-00000001.bin").and(predicate::str::contains("checksum")));
    assert!(seg.exists(), "repair never removes a committed segment, even a corrupt one");
}

#[test]
fn a_streamed_enrolment_searches_like_a_whole_file_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("g.parquet"), 0..9000);
    input(&d.join("p.parquet"), 40..46);
    let enrol = ["enroll", "--keys", "keys", "--input", "g.parquet", "--chunks-per-segment", "1"];
    ok(&[&enrol[..], &["--gallery", "whole"]].concat(), d);
    ok(&[&enrol[..], &["--gallery", "streamed", "--stream"]].concat(), d);
    // One segment per chunk either way, and the same templates under the same slots.
    assert_eq!(segments(&d.join("streamed")), 3);
    assert_eq!(segments(&d.join("whole")), 3);
    let (w, s) = (Gallery::open(&d.join("whole")).expect("open"), Gallery::open(&d.join("streamed")).expect("open"));
    assert_eq!(w.slot_ids(), s.slot_ids());
    for g in ["whole", "streamed"] {
        let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--top-k", "3", "--out"];
        ok(&[&search[..], &[&format!("{g}.csv"), "--gallery", g]].concat(), d);
    }
    let read = |f: &str| std::fs::read_to_string(d.join(f)).expect("results");
    assert_eq!(read("whole.csv"), read("streamed.csv"));
    assert!(read("streamed.csv").contains("\n45,1,45,"));
    // Only into an empty gallery.
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "p.parquet", "--gallery", "streamed", "--stream"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("new or empty gallery"));
}
