//! `hers cluster up`: every process of a cluster on this machine, supervised.
//!
//! It writes a host file with free loopback ports, starts one `hers cluster serve` per shard,
//! and proxies its public address to process 0's front door. Timely's membership is fixed, so
//! when any process exits the supervisor stops the others and starts the cluster again as a
//! whole (new ports), answering 503 meanwhile. The processes split this machine's cores
//! between them (`RAYON_NUM_THREADS`, unless set). The processes exit when the supervisor's end of
//! their standard input closes, so none outlives it, however it ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::manifest::ClusterManifest;
use crate::proxy::{Backend, start};

/// How to run `hers cluster up`.
#[derive(Debug, Clone)]
pub struct UpConfig {
    /// The cluster directory.
    pub dir: PathBuf,
    /// The public address (the proxy in front of process 0).
    pub listen: SocketAddr,
    /// Serve the public address over HTTPS with this certificate and key (process 0's front
    /// door stays on loopback behind it).
    pub tls: Option<service::TlsFiles>,
    /// The program to start for each process and its arguments up to the per-process ones:
    /// `hers cluster serve DIR [options]`, to which `--process I --hosts FILE
    /// --exit-with-stdin` are added.
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// Largest request body the proxy passes on, in bytes.
    pub max_body: usize,
    /// How long process 0 may take to listen after starting.
    pub start_timeout: Duration,
    /// The longest the proxy waits for the next bytes from process 0 (beyond it the client's
    /// answer is cut: a stuck process 0 must not hang its clients).
    pub upstream_timeout: Duration,
}

/// What the supervisor reports (the CLI prints these; tests read them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpEvent {
    /// The public address listens.
    Listening(String),
    /// The processes were started; their pids, process 0 first.
    Started(Vec<u32>),
    /// A process exited; the cluster is restarted.
    Exited {
        /// The process.
        process: usize,
        /// How it ended.
        status: String,
    },
    /// A start failed; tried again.
    StartFailed(String),
}

/// Runs the cluster until SIGTERM or Ctrl-C, restarting it whole whenever a process exits.
pub fn up(cfg: UpConfig, event: impl Fn(UpEvent)) -> Result<()> {
    let n = ClusterManifest::load(&cfg.dir)?.shards.len();
    let backend = Backend::default();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let url = start(backend.clone(), cfg.listen, cfg.tls.as_ref(), cfg.max_body, cfg.upstream_timeout, move || {
        flag.store(true, Ordering::SeqCst)
    })?;
    event(UpEvent::Listening(url));
    while !stop.load(Ordering::SeqCst) {
        let mut procs = match launch(&cfg, n) {
            Ok((procs, front)) => {
                event(UpEvent::Started(procs.iter().map(|p| p.child.id()).collect()));
                backend.set(Some(front));
                procs
            }
            Err(e) => {
                event(UpEvent::StartFailed(e.to_string()));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        // Watch until one exits or we are told to stop.
        'watch: while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            for (i, p) in procs.iter_mut().enumerate() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    backend.set(None);
                    event(UpEvent::Exited { process: i, status: status.to_string() });
                    break 'watch;
                }
            }
        }
        backend.set(None);
        stop_all(&mut procs);
        if !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    Ok(())
}

/// A started process and the pipe whose closing tells it to exit.
struct Proc {
    child: Child,
    _stdin: Option<std::process::ChildStdin>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stop_all(procs: &mut Vec<Proc>) {
    // Dropping kills (by pid) and reaps each.
    procs.clear();
}

/// Starts the processes with a fresh host file; returns them and process 0's URL.
fn launch(cfg: &UpConfig, n: usize) -> Result<(Vec<Proc>, String)> {
    // Free loopback ports: bound together (so distinct), released just before the start.
    let ports = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()))
        .collect::<std::io::Result<Vec<u16>>>()
        .map_err(|e| Error::Config(format!("no free port: {e}")))?;
    let hosts = cfg.dir.join("hosts.txt");
    let text: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    embeddings::atomic::write_atomic(&hosts, text.as_bytes()).map_err(|e| Error::io(&hosts, e))?;
    // The processes share this machine's cores: each scores on its share (unless the caller
    // chose), rather than every rayon pool taking them all and the pools preempting each other.
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| (cores / n).max(1).to_string());
    let mut procs = Vec::with_capacity(n);
    let mut first_line = None;
    for i in 0..n {
        let mut cmd = Command::new(&cfg.program);
        cmd.args(&cfg.args)
            .args(["--process", &i.to_string(), "--hosts"])
            .arg(&hosts)
            .arg("--exit-with-stdin")
            .env("RAYON_NUM_THREADS", &threads)
            .stdin(Stdio::piped())
            .stdout(if i == 0 { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::inherit());
        let mut child =
            cmd.spawn().map_err(|e| Error::Config(format!("cannot start {}: {e}", cfg.program.display())))?;
        if i == 0 {
            let out = child.stdout.take();
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let Some(out) = out else { return };
                let mut lines = BufReader::new(out).lines().map_while(|l| l.ok());
                if let Some(l) = lines.next() {
                    let _ = tx.send(l);
                }
                // Keep the pipe drained.
                lines.for_each(drop);
            });
            first_line = Some(rx);
        }
        let stdin = child.stdin.take();
        procs.push(Proc { child, _stdin: stdin });
    }
    let t = Instant::now();
    let line = first_line.and_then(|rx| rx.recv_timeout(cfg.start_timeout).ok());
    match line.as_deref().and_then(|l| l.strip_prefix("listening on ")) {
        Some(url) => Ok((procs, url.to_string())),
        None => Err(Error::Config(format!(
            "process 0 did not report its address within {:.0} s (got {line:?})",
            t.elapsed().as_secs_f64()
        ))),
    }
}
