//! `hers serve` and `hers client` on loopback, each server a child process on an ephemeral
//! port, stopped by its pid when the test ends: results equal to the local commands, K
//! concurrent clients mixing search, enrolment and removal, kill -9 mid-enrolment, bad
//! requests, overload, HTTPS with a certificate made in the test.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{exe, hers, input, ok, row, token_file};
use encsearch::{Client, ClientKeys, Gallery, Session};
use predicates::prelude::*;
use service::{Error, Remote};

/// A `hers serve` child process; killed (by pid) when dropped.
struct Server {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(exe())
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hers serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            sink.lock().expect("lock").push_str(&s);
        });
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(120));
        let url = match line.as_deref().ok().and_then(|l| l.strip_prefix("listening on ")) {
            Some(u) => u.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!("hers serve did not start: {line:?}; stderr: {}", stderr.lock().expect("lock"));
            }
        };
        Self { child, url, stderr }
    }

    fn remote(&self, token: Option<&str>) -> Remote {
        Remote::new(&self.url, token.map(str::to_string), Duration::from_secs(120)).expect("remote")
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(sent.success());
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "hers serve exited with {status}: {}", self.stderr.lock().expect("lock"));
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "hers serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up.
    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_for(dir: &Path, keys: &str, remote: &Remote) -> Client {
    let keys = ClientKeys::load(&dir.join(keys)).expect("keys");
    Client::with_quantizer(keys, remote.info().expect("config").quantizer).expect("client")
}

fn ids(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

fn rows(range: std::ops::Range<i64>) -> Vec<f32> {
    range.flat_map(row).collect()
}

fn status(e: Error) -> (u16, String) {
    match e {
        Error::Http { status, message, .. } => (status, message),
        other => panic!("expected an HTTP error answer, got {other}"),
    }
}

/// Sends only the head of a POST announcing `length` body bytes; returns the answer's status.
fn raw_post_status(url: &str, path: &str, length: usize) -> u16 {
    use std::io::Write;
    let addr = url.strip_prefix("http://").expect("http url");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(tcp, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n").expect("send");
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).expect("answer");
    String::from_utf8_lossy(&head[9..12]).parse().expect("status code")
}

/// A key set `keys` and a gallery `g` holding templates `ids` of the shared test rows.
fn enrolled(d: &Path, ids: std::ops::Range<i64>) {
    ok(&["keygen", "--out", "keys"], d);
    input(&d.join("g.parquet"), ids);
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "g"], d);
}

/// `hers client search` of `p.parquet` against `url` (client flags `flags`) into `out`, started
/// and left running; its standard error piped.
fn spawn_search(d: &Path, url: &str, flags: &[&str], out: &str) -> Child {
    Command::new(exe())
        .current_dir(d)
        .args(["client", "--server", url])
        .args(flags)
        .args(["search", "--keys", "keys", "--probes", "p.parquet", "--out", out])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hers client")
}

/// [`enrolled`], probes `probes` in `p.parquet`, and `hers search` of them written to
/// `local.csv`: the results every remote search must equal. Returns them.
fn searched_locally(d: &Path, gallery: std::ops::Range<i64>, probes: std::ops::Range<i64>) -> String {
    enrolled(d, gallery);
    input(&d.join("p.parquet"), probes);
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p.parquet", "--out", "local.csv"], d);
    std::fs::read_to_string(d.join("local.csv")).expect("local results")
}

#[test]
fn client_answers_equal_the_local_commands_and_writes_land_in_the_gallery() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..6000);
    input(&d.join("p.parquet"), 100..110);
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p.parquet", "--out", "local.csv"], d);
    let verify = ["--keys", "keys", "--probe", "p.parquet", "--probe-id", "105", "--claim", "105"];
    let local_verify = hers().current_dir(d).arg("verify").args(["--gallery", "g"]).args(verify).output().expect("run");
    token_file(&d.join("tok"), "s3cret-token\n");

    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    let url = server.url.clone();
    let client = |args: &[&str]| {
        let mut c = hers();
        c.current_dir(d).args(["client", "--server", &url]).args(args);
        c
    };
    client(&["search", "--keys", "keys", "--probes", "p.parquet", "--out", "remote.csv"]).assert().success();
    let local = std::fs::read_to_string(d.join("local.csv")).expect("local");
    assert_eq!(local, std::fs::read_to_string(d.join("remote.csv")).expect("remote"));
    assert!(local.lines().count() > 10);
    let remote_verify = client(&["verify"]).args(verify).output().expect("run");
    assert!(remote_verify.status.success());
    assert_eq!(String::from_utf8_lossy(&local_verify.stdout), String::from_utf8_lossy(&remote_verify.stdout));
    assert!(String::from_utf8_lossy(&remote_verify.stdout).starts_with("accept"));

    // Writes: refused without the token; with it, visible to the next search.
    input(&d.join("new.parquet"), 50_000..50_010);
    client(&["enroll", "--keys", "keys", "--input", "new.parquet"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("401").and(predicate::str::contains("Bearer")));
    client(&["--token-file", "tok", "enroll", "--keys", "keys", "--input", "new.parquet"]).assert().success();
    client(&["--token-file", "tok", "enroll", "--keys", "keys", "--input", "new.parquet"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("409").and(predicate::str::contains("duplicate id 50000")));
    client(&["--token-file", "tok", "remove", "--keys", "keys", "--ids", "50000"]).assert().success();
    input(&d.join("p2.parquet"), 50_000..50_005);
    client(&["search", "--keys", "keys", "--probes", "p2.parquet", "--out", "r2.csv"]).assert().success();
    let r2 = std::fs::read_to_string(d.join("r2.csv")).expect("r2");
    for p in 50_001..50_005 {
        assert!(r2.contains(&format!("\n{p},1,{p},")), "probe {p} should find itself at rank 1:\n{r2}");
    }
    assert!(!r2.lines().any(|l| l.split(',').nth(2) == Some("50000")), "a removed id came back:\n{r2}");

    // The server is the gallery's writer: a local enrolment fails at once naming its pid.
    hers()
        .current_dir(d)
        .args(["enroll", "--keys", "keys", "--input", "new.parquet", "--gallery", "g", "--no-wait"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(server.child.id().to_string()));
    server.stop();

    // What the server acknowledged is in the gallery on disk.
    let g = Gallery::open(&d.join("g")).expect("open");
    assert_eq!(g.len(), 6009);
    assert!(g.locate("50001").is_ok() && g.locate("50000").is_err());
    ok(&["gallery", "check", "g"], d);
}

/// One acknowledged write of one id: (started, acknowledged, id, present afterwards).
type Write = (Instant, Instant, String, bool);

#[test]
fn concurrent_clients_see_every_acknowledged_write_and_nothing_removed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..5000);
    token_file(&d.join("tok"), "t0ken");
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);

    let log: Arc<Mutex<Vec<Write>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(Mutex::new(0usize));
    std::thread::scope(|s| {
        for t in 0..2i64 {
            let (log, done, checked) = (log.clone(), done.clone(), checked.clone());
            let remote = server.remote(None);
            let client = client_for(d, "keys", &remote);
            s.spawn(move || {
                let session = Session::new(&client);
                let probe = ids(t..t + 1);
                while !done.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let r = session
                        .search(probe.clone(), &row(t), 1, &mut rand::rng(), |q| remote.search(q).map_err(Into::into))
                        .expect("search");
                    assert_eq!(r.matches[0].gallery_id, probe[0], "a probe of the gallery finds itself");
                    let live: HashSet<&str> = r.response.slot_ids.iter().flatten().map(String::as_str).collect();
                    // Per id, the state of its last write acknowledged before the search was sent;
                    // ids with a write in flight meanwhile may be seen either way.
                    let mut expected: std::collections::HashMap<&str, Option<bool>> = Default::default();
                    let log = log.lock().expect("log");
                    for (started, acked, id, present) in log.iter() {
                        if *acked < sent {
                            expected.insert(id, Some(*present));
                        } else if *started < Instant::now() {
                            expected.insert(id, None);
                        }
                    }
                    for (id, present) in expected {
                        if let Some(present) = present {
                            assert_eq!(live.contains(id), present, "id {id}: acknowledged before the search");
                        }
                    }
                    *checked.lock().expect("count") += 1;
                }
            });
        }
        let writer = server.remote(Some("t0ken"));
        let client = client_for(d, "keys", &writer);
        for round in 0..5i64 {
            let first = 10_000 + round * 8;
            let started = Instant::now();
            writer
                .enrol_rows(&client, &ids(first..first + 8), &rows(first..first + 8), 1, &mut rand::rng(), |_| {})
                .expect("enrol");
            let now = Instant::now();
            log.lock().expect("log").extend(ids(first..first + 8).into_iter().map(|id| (started, now, id, true)));
            let gone = ids(first..first + 3);
            let started = Instant::now();
            writer.remove(&client, &gone).expect("remove");
            let now = Instant::now();
            log.lock().expect("log").extend(gone.into_iter().map(|id| (started, now, id, false)));
        }
        // Let the searchers check the final state at least once more.
        let before = *checked.lock().expect("count");
        let t = Instant::now();
        while *checked.lock().expect("count") < before + 2 && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        done.store(true, Ordering::SeqCst);
    });
    assert!(*checked.lock().expect("count") >= 4, "the searchers ran");
    assert_eq!(server.remote(None).info().expect("info").templates, 5000 + 5 * 5);
    server.stop();
}

#[test]
fn kill_9_mid_enrolment_loses_no_acknowledged_template() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..100);
    token_file(&d.join("tok"), "t0ken");
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let writer = {
        let (remote, acked) = (server.remote(Some("t0ken")), acked.clone());
        let client = client_for(d, "keys", &remote);
        std::thread::spawn(move || {
            for round in 0..1000i64 {
                let first = 1_000_000 + round * 300;
                let batch = ids(first..first + 300);
                if remote.enrol_rows(&client, &batch, &rows(first..first + 300), 1, &mut rand::rng(), |_| {}).is_err() {
                    return round;
                }
                acked.lock().expect("acked").extend(batch);
            }
            1000
        })
    };
    let t = Instant::now();
    while acked.lock().expect("acked").len() < 900 && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    let rounds = writer.join().expect("writer");
    assert!(rounds < 1000, "the enrolments stopped with the server");
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() >= 900);

    let g = Gallery::open(&d.join("g")).expect("the gallery opens after kill -9");
    for id in &acked {
        assert!(g.locate(id).is_ok(), "acknowledged id {id} lost");
    }
    drop(g);
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    let remote = server.remote(None);
    let info = remote.info().expect("info");
    assert!(info.templates >= 100 + acked.len());
    let table = remote.ids(info.version).expect("ids");
    let live: HashSet<&str> = table.slot_ids.iter().flatten().map(String::as_str).collect();
    assert!(acked.iter().all(|id| live.contains(id.as_str())));
    server.stop();
}

#[test]
fn bad_requests_get_4xx_and_the_server_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..3000);
    ok(&["keygen", "--out", "other"], d);
    token_file(&d.join("tok"), "t0ken");
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok", "--max-body-mib", "2"]);
    let remote = server.remote(None);
    let client = client_for(d, "keys", &remote);
    let query = client.encrypt_query(ids(7..8), &row(7), &mut rand::rng()).expect("query");
    let good = query.to_bytes();

    // The server answers an oversized body from its length alone, without reading it.
    assert_eq!(raw_post_status(&server.url, "/v1/search", 3 << 20), 413);
    // A client that knows the limit refuses such a body itself, with the same status.
    assert_eq!(status(remote.search_bytes(&vec![0u8; 3 << 20]).expect_err("oversized")).0, 413);
    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    let (code, message) = status(remote.search_bytes(&corrupt).expect_err("corrupt"));
    assert_eq!(code, 400, "{message}");
    assert!(message.contains("checksum"), "{message}");
    let (code, _) = status(remote.search_bytes(b"not a query").expect_err("garbage"));
    assert_eq!(code, 400);
    let other = client_for(d, "other", &remote);
    let foreign = other.encrypt_query(ids(7..8), &row(7), &mut rand::rng()).expect("query");
    let (code, message) = status(remote.search(&foreign).expect_err("other key"));
    assert_eq!(code, 409);
    assert!(message.contains("key"), "{message}");
    let (code, message) = status(remote.ids(12345).expect_err("vanished version"));
    assert_eq!(code, 410, "{message}");
    let enrolment = encsearch::wire::Enrolment {
        key_id: client.keys().key_id().clone(),
        ids: ids(90_000..90_001),
        chunks: client.encrypt_templates(&row(90_000), &mut rand::rng()).expect("encrypt"),
        seal: None,
    };
    assert_eq!(status(remote.enrol(&enrolment).expect_err("no token")).0, 401);
    assert_eq!(status(server.remote(Some("wrong")).enrol(&enrolment).expect_err("wrong token")).0, 401);
    // The gallery is sealed (hers enroll sealed it): a write without the key holder's seal is refused.
    let (code, message) = status(server.remote(Some("t0ken")).enrol(&enrolment).expect_err("unsealed"));
    assert!(code == 412 && message.contains("seal"), "{code} {message}");
    let unknown = server.remote(Some("t0ken")).remove(&client, &ids(77_777..77_778));
    assert_eq!(status(unknown.expect_err("unknown id")).0, 404);

    // Still serving, and still exact.
    let r = remote.search_bytes(&good).expect("a good query after the bad ones").0;
    let m = client.decrypt_top_k(&r, 1).expect("decrypt");
    assert_eq!(m[0].gallery_id, "7");
    let metrics = remote.metrics().expect("metrics");
    assert!(metrics.contains("hers_errors_total 9\n"), "{metrics}");
    server.stop();
}

#[test]
fn overload_gets_429_and_every_accepted_query_is_answered_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..40_000);
    // No waiting room: a query is accepted only while the scorer is idle.
    let server = Server::start(d, &["--gallery", "g", "--max-inflight", "0", "--batch-window-ms", "0"]);
    let remote0 = server.remote(None);
    let client = client_for(d, "keys", &remote0);
    let query = client.encrypt_query(ids(0..8), &rows(0..8), &mut rand::rng()).expect("query").to_bytes();
    let (answered, refused) = (Mutex::new(0usize), Mutex::new(0usize));
    std::thread::scope(|s| {
        for _ in 0..6 {
            let remote = server.remote(None);
            let (query, client, answered, refused) = (&query, &client, &answered, &refused);
            s.spawn(move || {
                let t = Instant::now();
                while *refused.lock().expect("lock") == 0 && t.elapsed() < Duration::from_secs(60) {
                    match remote.search_bytes(query) {
                        Ok((r, _)) => {
                            let m = client.decrypt_top_k(&r, 1).expect("decrypt");
                            assert_eq!(m.len(), 8);
                            assert!(m.iter().all(|m| m.probe_id == m.gallery_id));
                            *answered.lock().expect("lock") += 1;
                        }
                        Err(e) => {
                            let (code, message) = status(e);
                            assert_eq!(code, 429, "{message}");
                            *refused.lock().expect("lock") += 1;
                        }
                    }
                }
            });
        }
    });
    assert!(*refused.lock().expect("lock") > 0, "six clients at once never overloaded a server without a queue");
    assert!(*answered.lock().expect("lock") > 0);
    server.stop();
}

#[test]
fn https_with_a_certificate_made_in_the_test() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..3000);
    input(&d.join("p.parquet"), 40..45);
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p.parquet", "--out", "local.csv"], d);
    // A private CA and a server certificate it signed for the loopback address.
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().expect("ca key")).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params")
        .signed_by(&key, &*ca)
        .expect("certificate");
    std::fs::write(d.join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(d.join("cert.pem"), cert.pem()).expect("write");
    std::fs::write(d.join("key.pem"), key.serialize_pem()).expect("write");

    hers()
        .current_dir(d)
        .args([
            "serve",
            "--gallery",
            "g",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "ca.pem",
            "--tls-key",
            "nothere.pem",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nothere.pem"));
    let server = Server::start(d, &["--gallery", "g", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let client = |args: &[&str]| {
        let mut c = hers();
        c.current_dir(d).args(["client", "--server", &server.url]).args(args);
        c
    };
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out", "remote.csv"];
    // 200 connections that never start their handshake do not hold up a client that does.
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect(server.url.trim_start_matches("https://")).expect("connect"))
        .collect();
    client(&["--ca-cert", "ca.pem", "--timeout-s", "60"]).args(search).assert().success();
    drop(idle);
    assert_eq!(
        std::fs::read_to_string(d.join("local.csv")).expect("local"),
        std::fs::read_to_string(d.join("remote.csv")).expect("remote")
    );
    // Without the CA the certificate is not trusted; plain HTTP to the TLS port gets nowhere.
    client(&[]).args(search).assert().failure().stderr(predicate::str::contains("certificate"));
    let plain = server.url.replace("https://", "http://");
    assert!(Remote::new(&plain, None, Duration::from_secs(30)).expect("remote").info().is_err());
    server.stop();
}

/// `hers bench serve` against a running server: a row per client count, with the server's CPU
/// per query read from its `/metrics`, and the in-process reference beside them.
#[test]
fn bench_serve_reports_each_load_and_the_servers_cpu_per_query() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..3000);
    input(&d.join("p.parquet"), 0..3);
    let server = Server::start(d, &["--gallery", "g"]);
    let args = ["bench", "serve", "--server", &server.url, "--keys", "keys", "--probes", "p.parquet"];
    let more = ["--clients", "1,2", "--duration", "1", "--gallery", "g", "--full-answers"];
    let out = hers().current_dir(d).args(args).args(more).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for clients in [1, 2] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {clients} |")))
            .unwrap_or_else(|| panic!("no row for {clients} clients: {text}"));
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert!(cells[2].parse::<f64>().expect("q/s") > 0.0, "{row}");
        if cfg!(target_os = "linux") {
            let cpu: f64 = cells[10].parse().unwrap_or_else(|_| panic!("server CPU per query: {row}"));
            assert!(cpu > 0.0, "{row}");
        }
    }
    assert!(text.contains("in-process, same gallery, no network: one probe"), "{text}");
    assert!(text.contains("service overhead: p50 at 1 client = "), "{text}");
    // Whole key-holder searches through the client library, against the same in process.
    let out = hers()
        .current_dir(d)
        .args(args)
        .args(["--clients", "1", "--duration", "1", "--gallery", "g", "--key-holder"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with("| 1 |")).unwrap_or_else(|| panic!("no row: {text}"));
    assert!(row.trim_matches('|').split('|').nth(1).map(str::trim).is_some_and(|q| q != "0"), "{row}");
    assert!(text.contains("key-holder searches: p50 at 1 client = "), "{text}");
    server.stop();
}

/// A counter of a `/metrics` text (the first line that starts with `name`).
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}")) as u64
}

/// Every id of the gallery on disk, each as often as it is stored.
fn stored_ids(dir: &Path) -> Vec<String> {
    let g = Gallery::open(dir).expect("open");
    let mut ids: Vec<String> = g.slot_ids().iter().flatten().cloned().collect();
    ids.sort();
    ids
}

#[test]
fn a_thousand_probes_are_split_within_the_servers_limits_and_answer_as_hers_search() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let local = searched_locally(d, 0..6000, 0..1000);
    // 8 MiB: about a dozen probes per query (632 KB each), the server's probe limit 64.
    let server = Server::start(d, &["--gallery", "g", "--max-body-mib", "8"]);
    let info = server.remote(None).info().expect("config");
    assert_eq!((info.max_body_bytes, info.max_probes), (8 << 20, 64), "the config states both limits");
    hers()
        .current_dir(d)
        .args(["client", "--server", &server.url, "search", "--keys", "keys", "--probes", "p.parquet"])
        .args(["--out", "remote.csv"])
        .assert()
        .success();
    assert_eq!(local, std::fs::read_to_string(d.join("remote.csv")).expect("remote"));
    assert_eq!(local.lines().filter(|l| l.split(',').nth(1) == Some("1")).count(), 1000, "a rank-1 row per probe");
    let metrics = server.remote(None).metrics().expect("metrics");
    let queries = counter(&metrics, "hers_queries_total{endpoint=\"search\"}");
    assert!(queries >= 1000 / 13, "{queries} queries: each must fit 8 MiB");
    assert_eq!(counter(&metrics, "hers_errors_total"), 0, "no query was refused: {metrics}");
    server.stop();
}

#[test]
fn searches_refused_with_429_are_retried_until_served() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let local = searched_locally(d, 0..40_000, 0..16);
    // No waiting room: a query is accepted only while the scorer is idle.
    let server = Server::start(d, &["--gallery", "g", "--max-inflight", "0", "--batch-window-ms", "0"]);
    let mut rounds = 0;
    while counter(&server.remote(None).metrics().expect("metrics"), "hers_overloaded_total") == 0 {
        rounds += 1;
        assert!(rounds <= 5, "five rounds of 4 clients at once never met a 429");
        let searches: Vec<_> =
            (0..4).map(|i| spawn_search(d, &server.url, &["--full-answers"], &format!("r{i}.csv"))).collect();
        for (i, c) in searches.into_iter().enumerate() {
            let out = c.wait_with_output().expect("client");
            assert!(out.status.success(), "client {i}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(std::fs::read_to_string(d.join(format!("r{i}.csv"))).expect("results"), local);
        }
    }
    server.stop();
}

#[test]
fn a_search_in_flight_at_sigterm_is_answered_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let local = searched_locally(d, 0..60_000, 0..64);
    let server = Server::start(d, &["--gallery", "g"]);
    let search = spawn_search(d, &server.url, &[], "remote.csv");
    // In flight once its body has arrived (the client first encrypts 64 probes).
    let remote = server.remote(None);
    let t = Instant::now();
    while counter(&remote.metrics().expect("metrics"), "hers_bytes_in_total") == 0 {
        assert!(t.elapsed() < Duration::from_secs(120), "the query never reached the server");
        std::thread::sleep(Duration::from_millis(5));
    }
    let answered_before = counter(&remote.metrics().expect("metrics"), "hers_queries_total{endpoint=\"search\"}");
    server.stop();
    let out = search.wait_with_output().expect("client");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(answered_before, 0, "the query was answered before SIGTERM: the test proves nothing");
    assert_eq!(local, std::fs::read_to_string(d.join("remote.csv")).expect("remote"));
}

#[test]
fn kill_9_mid_client_enrolment_then_resume_enrols_every_row_exactly_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..100);
    input(&d.join("new.parquet"), 1_000_000..1_040_000);
    token_file(&d.join("tok"), "t0ken");
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    let enrol = |url: &str, extra: &[&str]| {
        let mut c = Command::new(exe());
        c.current_dir(d).args(["client", "--server", url, "--token-file", "tok", "enroll", "--keys", "keys"]);
        c.args(["--input", "new.parquet", "--chunks-per-request", "1"]).args(extra);
        c
    };
    // One try: with its server gone, this client should stop, not wait for a restart.
    let mut first = enrol(&server.url, &["--retries", "1"]).stderr(Stdio::null()).spawn().expect("spawn");
    let remote = server.remote(None);
    let t = Instant::now();
    while remote.info().expect("config").templates == 100 {
        assert!(t.elapsed() < Duration::from_secs(120), "no enrolment request was acknowledged");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    let out = first.wait().expect("client");
    assert!(!out.success(), "the enrolment cannot finish with its server killed");
    let part = stored_ids(&d.join("g")).len();
    assert!(part > 100 && part < 40_100, "{part} templates: the kill came mid-enrolment");

    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    let again = enrol(&server.url, &[]).output().expect("run");
    assert!(!again.status.success(), "sending the whole file again hits the rows already enrolled");
    let text = String::from_utf8_lossy(&again.stderr);
    assert!(text.contains("409") && text.contains("--resume"), "{text}");
    let resumed = enrol(&server.url, &["--resume"]).output().expect("run");
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(String::from_utf8_lossy(&resumed.stderr).contains(&format!("skipped {}", part - 100)));
    server.stop();
    let ids = stored_ids(&d.join("g"));
    let mut expected: Vec<String> = (0..100).chain(1_000_000..1_040_000).map(|i| i.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every row exactly once");
}

/// A TCP relay to `upstream` that keeps every byte a client sends through it (the returned
/// buffer). With `lose_one_ack`, it cuts the connection of the first `POST /v1/templates` at the
/// first byte of its answer: the server has committed the enrolment, its acknowledgement is lost.
fn relay(upstream: &str, lose_one_ack: bool) -> (String, Arc<Mutex<Vec<u8>>>) {
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let upstream = upstream.strip_prefix("http://").expect("http url").to_string();
    let cut_done = Arc::new(AtomicBool::new(!lose_one_ack));
    let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
    let kept = sent.clone();
    std::thread::spawn(move || {
        for down in listener.incoming().take(64) {
            let Ok(down) = down else { return };
            let Ok(up) = TcpStream::connect(&upstream) else { return };
            let armed = Arc::new(AtomicBool::new(false));
            let (mut d_in, mut u_out) = (down.try_clone().expect("clone"), up.try_clone().expect("clone"));
            let (seen, kept) = (armed.clone(), kept.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match d_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    kept.lock().expect("lock").extend_from_slice(&buf[..n]);
                    tail.extend_from_slice(&buf[..n]);
                    if tail.windows(18).any(|w| w == b"POST /v1/templates") {
                        seen.store(true, Ordering::SeqCst);
                    }
                    let keep = tail.len().saturating_sub(17);
                    tail.drain(..keep);
                    if std::io::Write::write_all(&mut u_out, &buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = u_out.shutdown(Shutdown::Write);
            });
            let (mut u_in, mut d_out) = (up, down);
            let cut_done = cut_done.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = match u_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if armed.load(Ordering::SeqCst) && !cut_done.swap(true, Ordering::SeqCst) {
                        let _ = d_out.shutdown(Shutdown::Both);
                        let _ = u_in.shutdown(Shutdown::Both);
                        return;
                    }
                    if std::io::Write::write_all(&mut d_out, &buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = d_out.shutdown(Shutdown::Both);
            });
        }
    });
    (format!("http://{addr}"), sent)
}

#[test]
fn an_enrolment_whose_acknowledgement_is_lost_is_not_applied_twice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..100);
    input(&d.join("new.parquet"), 500_000..510_000);
    token_file(&d.join("tok"), "t0ken");
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    let (relay, _) = relay(&server.url, true);
    let out = hers()
        .current_dir(d)
        .args(["client", "--server", &relay, "--token-file", "tok", "enroll", "--keys", "keys"])
        .args(["--input", "new.parquet", "--chunks-per-request", "1"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 requests found applied after their answer was lost"), "{text}");
    let metrics = server.remote(None).metrics().expect("metrics");
    assert_eq!(counter(&metrics, "hers_enrolled_total"), 10_000, "no request applied twice: {metrics}");
    server.stop();
    let ids = stored_ids(&d.join("g"));
    let mut expected: Vec<String> = (0..100).chain(500_000..510_000).map(|i| i.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every row exactly once");
}

/// The HTTPS recipe of docs/service.md, as a user runs it: a self-signed certificate from one openssl
/// command works with `--ca-cert`; the same command without `CA:FALSE` makes a certificate TLS
/// clients refuse, and the client says why and how to fix it.
#[test]
fn https_with_the_readmes_openssl_certificate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let openssl = |out: &str, extra: &[&str]| {
        Command::new("openssl")
            .current_dir(d)
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=localhost"])
            .args(["-keyout", &format!("{out}.key"), "-out", &format!("{out}.pem")])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .args(extra)
            .output()
    };
    match openssl("cert", &["-addext", "basicConstraints=critical,CA:FALSE"]) {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("skipped: the openssl command is not available here ({other:?})");
            return;
        }
    }
    assert!(openssl("ca", &[]).expect("openssl").status.success());
    let local = searched_locally(d, 0..3000, 40..45);
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out", "remote.csv"];

    let server = Server::start(d, &["--gallery", "g", "--tls-cert", "cert.pem", "--tls-key", "cert.key"]);
    hers()
        .current_dir(d)
        .args(["client", "--server", &server.url, "--ca-cert", "cert.pem"])
        .args(search)
        .assert()
        .success();
    assert_eq!(local, std::fs::read_to_string(d.join("remote.csv")).expect("remote"));
    // Another certificate than the server's: not trusted, and the client says what to pass.
    hers()
        .current_dir(d)
        .args(["client", "--server", &server.url, "--ca-cert", "ca.pem"])
        .args(search)
        .assert()
        .failure()
        .stderr(predicate::str::contains("--ca-cert"));
    server.stop();

    let server = Server::start(d, &["--gallery", "g", "--tls-cert", "ca.pem", "--tls-key", "ca.key"]);
    hers()
        .current_dir(d)
        .args(["client", "--server", &server.url, "--ca-cert", "ca.pem"])
        .args(search)
        .assert()
        .failure()
        .stderr(predicate::str::contains("CA:FALSE"));
    server.stop();
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which ends with the last ')'): utime and stime are the
    // 12th and 13th, in clock ticks of 1/100 s.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime")) / 100.0
}

#[test]
fn reads_need_the_read_token_and_refused_work_is_bounded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..3000);
    input(&d.join("p.parquet"), 100..104);
    token_file(&d.join("tok"), "w-t0ken");
    token_file(&d.join("rtok"), "r-t0ken");
    // A token file others may read is refused, as the secret key is.
    std::fs::write(d.join("loose"), "r-t0ken").expect("token");
    hers()
        .current_dir(d)
        .args(["serve", "--gallery", "g", "--listen", "127.0.0.1:0", "--read-token-file", "loose"])
        .timeout(Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(predicate::str::contains("chmod 600 loose"));
    let server =
        Server::start(d, &["--gallery", "g", "--token-file", "tok", "--read-token-file", "rtok", "--max-probes", "2"]);
    let pid = server.child.id().to_string();

    // Without a token: 401 for the description, the id table and a search.
    let anonymous = server.remote(None);
    let reader = server.remote(None).with_read_token(Some("r-t0ken".into()));
    let info = reader.info().expect("config with the read token");
    assert_eq!(info.max_probes, 2);
    assert_eq!(server.remote(Some("w-t0ken")).info().expect("the write token also reads").version, info.version);
    let (code, message) = status(anonymous.info().expect_err("config without a token"));
    assert!(code == 401 && message.contains("--read-token-file"), "{code} {message}");
    assert_eq!(status(anonymous.ids(info.version).expect_err("ids without a token")).0, 401);
    assert_eq!(status(server.remote(None).with_read_token(Some("nope".into())).info().expect_err("wrong")).0, 401);
    let client = client_for(d, "keys", &reader);
    let one = client.encrypt_query(ids(7..8), &row(7), &mut rand::rng()).expect("query").to_bytes();
    assert_eq!(status(anonymous.search_bytes(&one).expect_err("search without a token")).0, 401);
    let r = reader.search_bytes(&one).expect("search with the read token").0;
    assert_eq!(client.decrypt_top_k(&r, 1).expect("decrypt")[0].gallery_id, "7");
    let search = |flags: &[&str]| {
        hers()
            .current_dir(d)
            .args(["client", "--server", &server.url])
            .args(flags)
            .args(["search", "--keys", "keys", "--probes", "p.parquet", "--out", "r.csv"])
            .timeout(Duration::from_secs(120))
            .assert()
    };
    search(&[]).failure().stderr(predicate::str::contains("401"));
    search(&["--read-token-file", "rtok"]).success();

    // A query of more probes than the server takes is refused before any ciphertext is
    // decoded: the server's CPU time over the refused queries stays under half what decoding
    // them takes (measured here, with the same decoder).
    let many = client.encrypt_query(ids(0..24), &rows(0..24), &mut rand::rng()).expect("query").to_bytes();
    let own = std::process::id().to_string();
    let before = cpu_seconds(&own);
    let params = client.keys().public().params.bfv().expect("bfv");
    let decoded = encsearch::Query::from_bytes(&many, &params, 16).expect("decodes");
    let decode = cpu_seconds(&own) - before;
    assert_eq!(decoded.probes.len(), 24);
    let before = cpu_seconds(&pid);
    for _ in 0..4 {
        let (code, message) = status(reader.search_bytes(&many).expect_err("too many probes"));
        assert!(code == 400 && message.contains("24 probes"), "{code} {message}");
    }
    let refused = cpu_seconds(&pid) - before;
    println!("4 refused 24-probe queries: {refused:.2} s of server CPU; decoding one: {decode:.2} s");
    assert!(refused < 0.5 * 4.0 * decode, "refusing cost {refused:.2} s, decoding costs {decode:.2} s each");

    // 200 connections opened and left idle: a normal client is still served.
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect(server.url.trim_start_matches("http://")).expect("connect"))
        .collect();
    search(&["--read-token-file", "rtok", "--timeout-s", "60"]).success();
    drop(idle);
    server.stop();
}

/// `n` probe ids no ciphertext byte run will match by chance, and no gallery id either.
fn secret_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("subject-7f3a9c-{i:04}")).collect()
}

#[test]
fn probe_ids_never_reach_the_server_and_fine_candidates_are_capped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..3000);
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "fg", "--layout", "coefficient"], d);
    let probe_ids = secret_ids(6);
    let set = embeddings::EmbeddingSet::new(
        embeddings::Ids::Str(probe_ids.clone()),
        (100..106).collect(),
        common::DIM,
        rows(100..106),
    )
    .expect("set");
    embeddings::write_set(d.join("p.parquet"), &set).expect("write");
    ok(&["search", "--keys", "keys", "--gallery", "g", "--probes", "p.parquet", "--out", "local.csv"], d);
    let server = Server::start(d, &["--gallery", "g", "--fine-gallery", "fg", "--max-candidates", "4"]);
    let (via, sent) = relay(&server.url, false);
    let client = |args: &[&str]| {
        hers().current_dir(d).args(["client", "--server", &via]).args(args).timeout(Duration::from_secs(120)).assert()
    };
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out"];
    client(&[&search[..], &["compact.csv"]].concat()).success();
    client(&[&["--full-answers"], &search[..], &["full.csv"]].concat()).success();
    client(
        &[&search[..], &["two.csv", "--two-stage", "--fine-probes", "p.parquet", "--candidates", "4", "--top-k", "3"]]
            .concat(),
    )
    .success();
    client(&["verify", "--keys", "keys", "--probe", "p.parquet", "--probe-id", &probe_ids[5], "--claim", "105"])
        .success()
        .stdout(predicate::str::contains("accept"));
    // The results name the probes as the file does; the bytes sent never did.
    let local = std::fs::read_to_string(d.join("local.csv")).expect("local");
    assert!(local.contains(&probe_ids[0]));
    for f in ["compact.csv", "full.csv"] {
        assert_eq!(std::fs::read_to_string(d.join(f)).expect("results"), local, "{f}");
    }
    let two = std::fs::read_to_string(d.join("two.csv")).expect("two-stage");
    for (i, id) in probe_ids.iter().enumerate() {
        assert!(two.contains(&format!("{id},1,{},", 100 + i)), "{id} finds itself in two stages:\n{two}");
    }
    let sent = sent.lock().expect("lock").clone();
    assert!(sent.len() > 1 << 20, "the queries went through the relay");
    for id in &probe_ids {
        assert!(!sent.windows(id.len()).any(|w| w == id.as_bytes()), "{id} was sent to the server");
    }

    // More candidates than the server states: the client refuses before sending, and a query
    // made by hand gets 400.
    client(
        &[&search[..], &["five.csv", "--two-stage", "--fine-probes", "p.parquet", "--candidates", "5", "--top-k", "3"]]
            .concat(),
    )
    .failure()
    .stderr(predicate::str::contains("at most 4 candidates"));
    let remote = server.remote(None);
    let keys = ClientKeys::load(&d.join("keys")).expect("keys");
    let fine_info = remote.info().expect("config").fine.expect("fine gallery");
    let fine = Client::with_quantizer(keys, fine_info.quantizer).expect("client");
    let query =
        fine.encrypt_fine_query(ids(0..1), &row(100), vec![ids(100..105)], &mut rand::rng()).expect("fine query");
    let (code, message) = status(remote.fine(&query).map(|_| ()).expect_err("five candidates"));
    assert!(code == 400 && message.contains("5 candidates"), "{code} {message}");
    server.stop();
}

/// Copies the files of gallery directory `from` into a new directory `to` (hot-form caches
/// left behind: a server rebuilds them).
fn copy_gallery(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "bin" || x == "json") {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
}

/// Replaces segment `file` of gallery `g` with `bytes`, its CRC and the manifest's size and CRC
/// made to match (what a malicious disk or server would do; the CRCs only catch accidents).
fn forge_segment(g: &Path, file: &str, mut bytes: Vec<u8>) {
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(g.join(file), &bytes).expect("write segment");
    let path = g.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
    for s in m["segments"].as_array_mut().expect("segments") {
        if s["file"] == file {
            s["crc32"] = crc32fast::hash(&bytes).into();
            s["bytes"] = bytes.len().into();
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&m).expect("json")).expect("write manifest");
}

/// A server that serves an older version of the gallery, a permuted id table, or a segment of
/// another gallery under the same key: `hers client search` and `verify` refuse, naming what
/// failed, instead of answering.
#[test]
fn a_server_that_replays_permutes_or_swaps_is_caught_by_search_and_verify() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    enrolled(d, 0..5000);
    // Another gallery of the same rows under the same key: same ids, other ciphertexts.
    ok(&["enroll", "--keys", "keys", "--input", "g.parquet", "--gallery", "other"], d);
    input(&d.join("p.parquet"), 100..103);
    input(&d.join("new.parquet"), 60_000..60_010);
    token_file(&d.join("tok"), "t0ken");
    copy_gallery(&d.join("g"), &d.join("g-old"));
    let client = |url: &str, args: &[&str]| {
        hers().current_dir(d).args(["client", "--server", url]).args(args).timeout(Duration::from_secs(120)).assert()
    };
    let search = ["search", "--keys", "keys", "--probes", "p.parquet", "--out", "r.csv"];
    let verify = ["verify", "--keys", "keys", "--probe", "p.parquet", "--probe-id", "101", "--claim", "101"];

    // The honest gallery: searched, written (its seal moves to write 2), searched again.
    let server = Server::start(d, &["--gallery", "g", "--token-file", "tok"]);
    client(&server.url, &search).success();
    client(&server.url, &["--token-file", "tok", "enroll", "--keys", "keys", "--input", "new.parquet"]).success();
    client(&server.url, &search).success();
    client(&server.url, &verify).success().stdout(predicate::str::contains("accept"));
    server.stop();
    let seen = std::fs::read_to_string(d.join("keys").join("seen.json")).expect("seen seals");
    assert!(seen.contains(": 2"), "the second write was recorded: {seen}");
    copy_gallery(&d.join("g"), &d.join("g-new"));

    let caught = |gallery: &str, why: &str| {
        let server = Server::start(d, &["--gallery", gallery]);
        for args in [&search[..], &verify[..]] {
            client(&server.url, args)
                .failure()
                .stderr(predicate::str::contains("integrity check failed").and(predicate::str::contains(why)));
        }
        server.stop();
    };
    // 1. The version before the write, served again (from a copy of the directory).
    caught("g-old", "older version");

    // 2. Two ids of the same length swapped in the segment that holds them.
    copy_gallery(&d.join("g-new"), &d.join("permuted"));
    let seg = "seg-00000001.bin";
    let mut bytes = std::fs::read(d.join("permuted").join(seg)).expect("segment");
    let at = |id: &str| {
        let mut pattern = (id.len() as u32).to_le_bytes().to_vec();
        pattern.extend_from_slice(id.as_bytes());
        bytes.windows(pattern.len()).position(|w| w == pattern).expect("id in the segment") + 4
    };
    let (a, b) = (at("1234"), at("1235"));
    for i in 0..4 {
        bytes.swap(a + i, b + i);
    }
    forge_segment(&d.join("permuted"), seg, bytes);
    caught("permuted", "does not match its seal");

    // 3. The same segment of the other gallery: the same ids, other ciphertexts.
    copy_gallery(&d.join("g-new"), &d.join("swapped"));
    forge_segment(&d.join("swapped"), seg, std::fs::read(d.join("other").join(seg)).expect("other segment"));
    caught("swapped", "does not match its seal");

    // The honest gallery still serves this key holder.
    let server = Server::start(d, &["--gallery", "g"]);
    client(&server.url, &search).success();
    server.stop();
}
