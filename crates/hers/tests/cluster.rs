//! `hers cluster` on loopback: galleries split into 1, 2 and 3 shards, each cluster started by
//! `hers cluster up` (a child process, stopped by its pid; its processes exit with it), must
//! answer exactly as one `hers serve` of the unsplit gallery; writes through the cluster; kill
//! -9 of one process mid-query, and the supervisor's restart; overload gets 429; the tokens,
//! limits and TLS flags of `hers serve`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{exe, hers, input, ok, token_file};
use predicates::prelude::*;
use service::Remote;

/// A `hers cluster up` (or `hers serve`) child; SIGTERM, then SIGKILL, by pid when dropped.
struct Up {
    child: Child,
    url: String,
    lines: Receiver<String>,
}

impl Up {
    fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_trusting(dir, args, None)
    }

    /// [`Up::start`] of an HTTPS server whose certificate `ca_pem` signs (or is).
    fn start_trusting(dir: &Path, args: &[&str], ca_pem: Option<&[u8]>) -> Self {
        let mut child = Command::new(exe())
            .current_dir(dir)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hers");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(120)).unwrap_or_default();
        let Some(url) = first.strip_prefix("listening on ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hers {args:?} did not start: {first:?}");
        };
        let up = Self { child, url, lines };
        // The server's read token, if it has one.
        let read_token = args
            .iter()
            .position(|a| *a == "--read-token-file")
            .map(|i| std::fs::read_to_string(dir.join(args[i + 1])).expect("read token").trim().to_string());
        up.wait_ready(ca_pem, read_token);
        up
    }

    /// Waits (bounded) until the server answers `/v1/config` (a cluster: every shard reported).
    fn wait_ready(&self, ca_pem: Option<&[u8]>, read_token: Option<String>) {
        let remote = Remote::with_ca(&self.url, None, Duration::from_secs(10), ca_pem)
            .expect("remote")
            .with_read_token(read_token);
        let t = Instant::now();
        while remote.info().is_err() {
            assert!(t.elapsed() < Duration::from_secs(180), "{} never became ready", self.url);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pids of the next `started pids …` line (bounded wait).
    fn started_pids(&self) -> Vec<u32> {
        let t = Instant::now();
        loop {
            let left = Duration::from_secs(180).saturating_sub(t.elapsed());
            let line = self.lines.recv_timeout(left).expect("a `started pids` line");
            if let Some(p) = line.strip_prefix("started pids ") {
                return p.split(' ').map(|x| x.parse().expect("pid")).collect();
            }
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A counter from the server's `/metrics` (a plain HTTP/1.0 GET).
fn metric(url: &str, name: &str) -> u64 {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").expect("http url");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(tcp, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut text = String::new();
    tcp.read_to_string(&mut text).expect("answer");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn read(d: &Path, f: &str) -> String {
    std::fs::read_to_string(d.join(f)).expect("results file")
}

/// A key set and a gallery of 10,000 templates in 3 one-chunk segments (4096 slots a chunk),
/// split into clusters of 1, 2 and 3 shards; probes 100..110; a token file.
fn setup(d: &Path) {
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("g.parquet"), 0..10_000);
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "g", "--chunks-per-segment", "1"], d);
    input(&d.join("p.parquet"), 100..110);
    token_file(&d.join("tok"), "cluster-token\n");
    for n in ["1", "2", "3"] {
        ok(&["cluster", "split", "--gallery", "g", "--shards", n, "--out", &format!("c{n}")], d);
    }
}

#[test]
fn a_one_segment_gallery_splits_at_chunk_boundaries_and_answers_as_unsplit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("g.parquet"), 0..10_000);
    // The default 32 chunks per segment: one segment of 3 chunks (4096 slots each).
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "g"], d);
    ok(&["remove", "--gallery", "g", "--keys", "keys", "--ids", "4100,9000"], d);
    input(&d.join("p.parquet"), 4090..4110);
    ok(&["cluster", "split", "--gallery", "g", "--shards", "3", "--out", "c3"], d);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("c3/cluster.json")).expect("cluster.json")).expect("json");
    let chunks: Vec<(u64, u64)> = m["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| (s["chunks"]["start"].as_u64().expect("start"), s["chunks"]["end"].as_u64().expect("end")))
        .collect();
    assert_eq!(chunks, [(0, 1), (1, 2), (2, 3)], "{m}");
    // Each shard is a sound gallery of its own, the removed ids still removed.
    for i in 0..3 {
        ok(&["gallery", "check", &format!("c3/shard-{i:03}")], d);
    }
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--top-k", "5"];
    let one = {
        let server = Up::start(d, &["serve", "--gallery", "g"]);
        client(d, &server.url, &search).args(["--out", "serve.csv"]).assert().success();
        read(d, "serve.csv")
    };
    let removed_back = one.lines().any(|l| matches!(l.split(',').nth(2), Some("4100" | "9000")));
    assert!(one.lines().count() > 90 && !removed_back, "{one}");
    let c = Up::start(d, &["cluster", "up", "c3"]);
    client(d, &c.url, &search).args(["--out", "c3.csv"]).assert().success();
    assert_eq!(read(d, "c3.csv"), one, "the split gallery answered differently");
}

fn client(d: &Path, url: &str, args: &[&str]) -> assert_cmd::Command {
    let mut c = hers();
    c.current_dir(d).args(["client", "--server", url]).args(args);
    c
}

#[test]
fn clusters_of_one_two_and_three_processes_answer_as_one_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    setup(d);
    // A split refuses more shards than segments, and a directory already used.
    hers()
        .current_dir(d)
        .args(["cluster", "split", "--gallery", "g", "--shards", "4", "--out", "c4"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("3 chunks"));
    hers()
        .current_dir(d)
        .args(["cluster", "split", "--gallery", "g", "--shards", "2", "--out", "c2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not empty"));

    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--top-k", "5"];
    let verify = ["verify", "--keys", "keys", "--probe", "p.parquet", "--probe-id", "105", "--claim", "105"];
    let (one, one_verify) = {
        let server = Up::start(d, &["serve", "--gallery", "g"]);
        client(d, &server.url, &search).args(["--out", "serve.csv"]).assert().success();
        let v = client(d, &server.url, &verify).output().expect("verify");
        assert!(v.status.success());
        (read(d, "serve.csv"), String::from_utf8_lossy(&v.stdout).to_string())
    };
    assert!(one.lines().count() > 40 && one_verify.starts_with("accept"), "{one}\n{one_verify}");

    for n in ["1", "2", "3"] {
        let c = Up::start(d, &["cluster", "up", &format!("c{n}"), "--token-file", "tok"]);
        client(d, &c.url, &search).args(["--out", &format!("c{n}.csv")]).assert().success();
        assert_eq!(read(d, &format!("c{n}.csv")), one, "a cluster of {n} answered differently");
        let v = client(d, &c.url, &verify).output().expect("verify");
        assert_eq!(String::from_utf8_lossy(&v.stdout), one_verify, "cluster of {n}: verification differs");

        if n == "3" {
            // Writes through the cluster: searchable afterwards, duplicates refused whatever
            // shard holds the first, removals gone from the next search.
            let enrol = |range: std::ops::Range<i64>, file: &str| {
                input(&d.join(file), range);
                client(d, &c.url, &["--token-file", "tok", "enroll", "--keys", "keys", "--input", file])
            };
            enrol(50_000..50_006, "new.parquet").assert().success();
            enrol(50_000..50_001, "again.parquet")
                .assert()
                .failure()
                .stderr(predicate::str::contains("409").and(predicate::str::contains("duplicate id 50000")));
            // Id 9000 lives in the last shard, 10 in the first.
            for id in [9000, 10] {
                enrol(id..id + 1, "old.parquet")
                    .assert()
                    .failure()
                    .stderr(predicate::str::contains(format!("duplicate id {id}")));
            }
            client(d, &c.url, &["--token-file", "tok", "remove", "--keys", "keys", "--ids", "50000"])
                .assert()
                .success();
            input(&d.join("p2.parquet"), 50_000..50_006);
            client(d, &c.url, &["search", "--keys", "keys", "--probes", "p2.parquet", "--out", "r2.csv"])
                .assert()
                .success();
            let r2 = read(d, "r2.csv");
            for p in 50_001..50_006 {
                assert!(r2.contains(&format!("\n{p},1,{p},")), "probe {p} should find itself first:\n{r2}");
            }
            assert!(!r2.lines().any(|l| l.split(',').nth(2) == Some("50000")), "a removed id came back:\n{r2}");
        }
    }
}

#[test]
fn kill_9_of_one_process_fails_the_query_and_up_restarts_the_cluster() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    setup(d);
    input(&d.join("many.parquet"), 200..264);
    let c = Up::start(d, &["cluster", "up", "c2", "--token-file", "tok", "--max-inflight", "1"]);
    let pids = c.started_pids();
    assert_eq!(pids.len(), 2);
    input(&d.join("new.parquet"), 60_000..60_004);
    client(d, &c.url, &["--token-file", "tok", "enroll", "--keys", "keys", "--input", "new.parquet"])
        .assert()
        .success();
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out", "before.csv"];
    client(d, &c.url, &search).assert().success();

    // A query (64 probes) in flight when process 1 is killed: an error, not a hang. Process 1
    // is stopped (SIGSTOP) before the query is sent, so the query stays in flight, whatever the
    // machine's speed, until the kill -9 below ends it.
    assert!(Command::new("kill").args(["-STOP", &pids[1].to_string()]).status().expect("kill").success());
    let url = c.url.clone();
    let dir = d.to_path_buf();
    let query = std::thread::spawn(move || {
        let t = Instant::now();
        // One try: a query cut before its answer began gets the proxy's 503, which a client
        // with retries would resend once the cluster is back (the restart test below does).
        let out = client(
            &dir,
            &url,
            &["--retries", "1", "search", "--keys", "keys", "--probes", "many.parquet", "--out", "x.csv"],
        )
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run");
        (out, t.elapsed())
    });
    // In flight once the front door has counted it (the client first encrypts 64 probes); it
    // cannot finish while process 1 is stopped.
    let t = Instant::now();
    while metric(&c.url, "hers_queries_total") < 2 {
        assert!(t.elapsed() < Duration::from_secs(60), "the long query never reached the cluster");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While it runs, a second search is beyond --max-inflight 1: 429, at once.
    client(d, &c.url, &["--retries", "1", "search", "--keys", "keys", "--probes", "p.parquet", "--out", "y.csv"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("429").and(predicate::str::contains("max-inflight")));
    assert!(Command::new("kill").args(["-9", &pids[1].to_string()]).status().expect("kill").success());
    let (out, took) = query.join().expect("query thread");
    assert!(!out.status.success(), "a query cut by a dead process must fail");
    assert!(took < Duration::from_secs(30), "the failed query took {took:?}");

    // The supervisor restarts the cluster whole; answers are the same, the enrolment is kept.
    let again = c.started_pids();
    assert!(again.iter().all(|p| !pids.contains(p)), "{again:?} vs {pids:?}");
    c.wait_ready(None, None);
    client(d, &c.url, &["search", "--keys", "keys", "--probes", "p.parquet", "--out", "after.csv"]).assert().success();
    assert_eq!(read(d, "before.csv"), read(d, "after.csv"));
    input(&d.join("p3.parquet"), 60_000..60_004);
    client(d, &c.url, &["search", "--keys", "keys", "--probes", "p3.parquet", "--out", "r3.csv"]).assert().success();
    let r3 = read(d, "r3.csv");
    for p in 60_000..60_004 {
        assert!(r3.contains(&format!("\n{p},1,{p},")), "acknowledged {p} lost:\n{r3}");
    }
}

#[test]
fn a_thousand_probes_through_three_processes_and_a_search_across_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    setup(d);
    input(&d.join("many.parquet"), 0..1000);
    let local = ["search", "--keys", "keys", "--gallery", "g", "--top-k", "3"];
    ok(&[&local[..], &["--probes", "many.parquet", "--out", "local.csv"]].concat(), d);
    ok(&[&local[..], &["--probes", "p.parquet", "--out", "local-p.csv"]].concat(), d);
    let c = Up::start(d, &["cluster", "up", "c3", "--max-body-mib", "8"]);
    let pids = c.started_pids();
    let search = |probes: &str, out: &str| {
        client(d, &c.url, &["search", "--keys", "keys", "--top-k", "3", "--probes", probes, "--out", out])
            .timeout(Duration::from_secs(300))
            .output()
            .expect("run")
    };
    let out = search("many.parquet", "c3.csv");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(d, "c3.csv"), read(d, "local.csv"), "1000 probes through 3 processes");

    // Process 0 (the front door) killed: the cluster restarts whole, and a search sent
    // meanwhile is refused (503 while no front door answers) and retried until it is back.
    assert!(Command::new("kill").args(["-9", &pids[0].to_string()]).status().expect("kill").success());
    let out = search("p.parquet", "during.csv");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("503") && said.contains("retrying"), "the search met the restart: {said}");
    assert_eq!(read(d, "during.csv"), read(d, "local-p.csv"));
    let again = c.started_pids();
    assert!(again.iter().all(|p| !pids.contains(p)), "the cluster was restarted: {again:?} vs {pids:?}");
}

/// The front door, and a cluster's public address, serve HTTPS with `hers serve`'s flags: a
/// self-signed certificate made in the test, trusted by the client with `--ca-cert`.
#[test]
fn the_front_door_serves_https_with_the_flags_of_hers_serve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("g.parquet"), 0..5000);
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "g", "--chunks-per-segment", "1"], d);
    input(&d.join("p.parquet"), 100..104);
    ok(&["cluster", "split", "--gallery", "g", "--shards", "2", "--out", "c2"], d);
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p.parquet", "--out", "local.csv"], d);
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    std::fs::write(d.join("cert.pem"), made.cert.pem()).expect("write");
    std::fs::write(d.join("key.pem"), made.signing_key.serialize_pem()).expect("write");
    let ca = made.cert.pem().into_bytes();
    let tls = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out"];

    // `hers cluster up`: its public address.
    let up = Up::start_trusting(d, &[&["cluster", "up", "c2"][..], &tls[..]].concat(), Some(&ca));
    assert!(up.url.starts_with("https://"), "{}", up.url);
    client(d, &up.url, &["--ca-cert", "cert.pem"]).args(search).arg("up.csv").assert().success();
    assert_eq!(read(d, "up.csv"), read(d, "local.csv"));
    // Untrusted without the certificate; nothing answers plain HTTP there.
    client(d, &up.url, &[])
        .args(search)
        .arg("x.csv")
        .assert()
        .failure()
        .stderr(predicate::str::contains("certificate"));
    let plain = up.url.replace("https://", "http://");
    assert!(Remote::new(&plain, None, Duration::from_secs(30)).expect("remote").info().is_err());
    drop(up);

    // `hers cluster serve`: process 0's front door itself, one process per shard.
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port())
        .collect();
    let hosts: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    std::fs::write(d.join("hosts"), hosts).expect("hosts");
    let mut second = Command::new(exe())
        .current_dir(d)
        .args(["cluster", "serve", "c2", "--process", "1", "--hosts", "hosts"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn process 1");
    let door = Up::start_trusting(
        d,
        &[&["cluster", "serve", "c2", "--process", "0", "--hosts", "hosts"][..], &tls[..]].concat(),
        Some(&ca),
    );
    assert!(door.url.starts_with("https://"), "{}", door.url);
    client(d, &door.url, &["--ca-cert", "cert.pem"]).args(search).arg("door.csv").assert().success();
    assert_eq!(read(d, "door.csv"), read(d, "local.csv"));
    drop(door);
    let _ = second.kill();
    let _ = second.wait();
}

/// The front door takes `hers serve`'s tokens and limits: reads need the read token (the write
/// token also serves), writes the write token, and `/v1/config` states the probe limit that
/// the client then splits a larger search by.
#[test]
fn the_front_door_takes_the_tokens_and_limits_of_hers_serve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("g.parquet"), 0..5000);
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "g", "--chunks-per-segment", "1"], d);
    input(&d.join("p.parquet"), 100..105);
    ok(&["cluster", "split", "--gallery", "g", "--shards", "2", "--out", "c2"], d);
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p.parquet", "--out", "local.csv"], d);
    token_file(&d.join("tok"), "w-t0ken");
    token_file(&d.join("rtok"), "r-t0ken");
    let flags = ["--token-file", "tok", "--read-token-file", "rtok", "--max-probes", "2"];
    let c = Up::start(d, &[&["cluster", "up", "c2"][..], &flags[..]].concat());

    let remote = |token: Option<&str>| {
        Remote::new(&c.url, None, Duration::from_secs(30)).expect("remote").with_read_token(token.map(str::to_string))
    };
    match remote(None).info() {
        Err(service::Error::Http { status: 401, message, .. }) => {
            assert!(message.contains("--read-token-file"), "{message}")
        }
        other => panic!("config without a token: {other:?}"),
    }
    assert!(matches!(remote(Some("nope")).info(), Err(service::Error::Http { status: 401, .. })));
    let info = remote(Some("r-t0ken")).info().expect("config with the read token");
    assert_eq!(info.max_probes, 2);
    assert_eq!(remote(Some("w-t0ken")).info().expect("the write token also reads").version, info.version);

    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out"];
    client(d, &c.url, &[]).args(search).arg("x.csv").assert().failure().stderr(predicate::str::contains("401"));
    // Five probes against a limit of two: three queries, one answer.
    client(d, &c.url, &["--read-token-file", "rtok"]).args(search).arg("door.csv").assert().success();
    assert_eq!(read(d, "door.csv"), read(d, "local.csv"));

    input(&d.join("new.parquet"), 50_000..50_002);
    let enrol = ["enroll", "--keys", "keys", "--input", "new.parquet"];
    client(d, &c.url, &["--token-file", "rtok"])
        .args(enrol)
        .assert()
        .failure()
        .stderr(predicate::str::contains("wrong bearer token"));
    client(d, &c.url, &["--token-file", "tok"]).args(enrol).assert().success();
}
