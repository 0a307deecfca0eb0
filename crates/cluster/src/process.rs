//! `hers cluster serve`: one process of the cluster — one timely worker, its shard, and on
//! process 0 the front door.
//!
//! The dataflow (the same in every process):
//!
//! ```text
//! searches (worker 0) ──broadcast──▶ every shard
//! commands (worker 0) ──exchange by shard──▶ one shard
//! answers  (each)     ──exchange to 0──▶ the front door
//! ```
//!
//! The worker feeds its inputs from channels (the door's handlers on process 0, the shard's
//! threads everywhere), advances their epoch whenever it sent something, and otherwise parks
//! until timely's network threads or those channels' senders wake it. Timely's membership is
//! fixed: when a peer dies, timely's network threads panic here, and the process exits at once
//! (a panic anywhere ends it), so the supervisor restarts the cluster as a whole rather than
//! leave a partial gallery serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encsearch::Simd;
use service::Held;
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::{Exchange, Inspect};

use crate::error::{Error, Result};
use crate::manifest::ClusterManifest;
use crate::messages::{Down, Up};
use crate::shard::Shard;
use crate::state::{Door, DoorConfig};
use crate::wake::Waker;

/// How to run one cluster process.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The cluster directory (`cluster.json` and the shard galleries).
    pub dir: PathBuf,
    /// This process's index (= its shard, and its line in the host file).
    pub process: usize,
    /// Every process's `host:port` for timely, process 0 first.
    pub hosts: Vec<String>,
    /// Where process 0's front door listens.
    pub listen: SocketAddr,
    /// Serve the front door over HTTPS with this certificate and key.
    pub tls: Option<service::TlsFiles>,
    /// How process 0's front door serves (token, limits, deadline); other processes ignore it.
    pub door: DoorConfig,
    /// Vector builds the scoring kernels may use.
    pub simd: Simd,
    /// Exit when standard input closes (set by `hers cluster up`: a process never outlives its
    /// supervisor, even one killed with SIGKILL).
    pub exit_with_stdin: bool,
}

fn take<T>(m: &Mutex<Option<Receiver<T>>>) -> Option<Receiver<T>> {
    m.lock().ok().and_then(|mut r| r.take())
}

/// Runs one process until it is killed; `ready` gets the front door's URL (process 0) once it
/// listens, before the other processes have connected (the door answers 503 until they have).
pub fn run(cfg: ProcessConfig, ready: impl FnOnce(Option<&str>)) -> Result<()> {
    let manifest = ClusterManifest::load(&cfg.dir)?;
    let n = manifest.shards.len();
    if cfg.hosts.len() != n {
        return Err(Error::Config(format!(
            "the host file names {} processes but {} has {n} shards: one process per shard",
            cfg.hosts.len(),
            cfg.dir.display()
        )));
    }
    if cfg.process >= n {
        return Err(Error::Config(format!(
            "--process {} but the cluster has {n} shards (0 to {})",
            cfg.process,
            n - 1
        )));
    }
    // A panic anywhere — above all timely's network threads when a peer dies — ends the
    // process: the cluster is restarted whole, never left serving part of its gallery.
    let default_hook = std::panic::take_hook();
    let me = cfg.process;
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("timely communication error") {
            // Expected when a peer goes: one line, no backtrace.
            eprintln!("hers cluster: process {me} lost a peer ({message}); exiting");
        } else {
            default_hook(info);
            eprintln!("hers cluster: process {me} stopping after a failure");
        }
        std::process::exit(70);
    }));
    if cfg.exit_with_stdin {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            eprintln!("hers cluster: the supervisor is gone; exiting");
            std::process::exit(0);
        });
    }

    let dir = manifest.shard_dir(&cfg.dir, cfg.process);
    let (held, report) = Held::open(&dir, cfg.simd)?;
    tracing::info!(
        "shard {} ({}) ready in {:.2} s: {} segments mapped from the hot cache, {} built; {}",
        cfg.process,
        dir.display(),
        report.seconds,
        report.mapped,
        report.built,
        report.kernel
    );
    let held = Arc::new(held);
    let wake = Waker::default();
    let (up_tx, up_rx) = channel::<Up>();
    let inbox = Shard::start(cfg.process, held.clone(), up_tx, wake.clone())?;

    let (down_tx, down_rx) = channel::<Down>();
    let door = if cfg.process == 0 {
        let door = Arc::new(Door::new(held.clone(), n, down_tx, wake.clone(), cfg.door.clone()));
        let url = crate::door::start(door.clone(), cfg.listen, cfg.tls.as_ref())?;
        ready(Some(&url));
        Some(door)
    } else {
        drop(down_tx);
        ready(None);
        None
    };

    let config = timely::Config {
        communication: timely::CommunicationConfig::Cluster {
            threads: 1,
            process: cfg.process,
            addresses: cfg.hosts.clone(),
            report: false,
            zerocopy: false,
        },
        worker: timely::WorkerConfig::default(),
    };
    // The worker closure must be `Fn + Sync`: the receivers move in once, through a lock.
    let down_rx = Mutex::new(Some(down_rx));
    let up_rx = Mutex::new(Some(up_rx));
    let guards = timely::execute(config, move |worker| {
        let (Some(down_rx), Some(up_rx)) = (take(&down_rx), take(&up_rx)) else {
            return;
        };
        wake.register_current();
        let mut searches = InputHandleVec::<u64, Down>::new();
        let mut commands = InputHandleVec::<u64, Down>::new();
        let mut answers = InputHandleVec::<u64, Up>::new();
        let (inbox, door) = (inbox.clone(), door.clone());
        worker.dataflow::<u64, _, _>(|scope| {
            let to_shard = inbox.clone();
            scope.input_from(&mut searches).broadcast().inspect(move |d: &Down| to_shard.push(d.clone()));
            let to_shard = inbox.clone();
            scope
                .input_from(&mut commands)
                .exchange(|d: &Down| d.shard() as u64)
                .inspect(move |d: &Down| to_shard.push(d.clone()));
            scope.input_from(&mut answers).exchange(|_: &Up| 0).inspect(move |u: &Up| {
                if let Some(door) = &door {
                    door.deliver(u.clone());
                }
            });
        });
        let mut epoch = 0u64;
        loop {
            let mut sent = false;
            while let Ok(d) = down_rx.try_recv() {
                match d {
                    Down::Search { .. } => searches.send(d),
                    _ => commands.send(d),
                }
                sent = true;
            }
            while let Ok(u) = up_rx.try_recv() {
                answers.send(u);
                sent = true;
            }
            if sent {
                epoch += 1;
                searches.advance_to(epoch);
                commands.advance_to(epoch);
                answers.advance_to(epoch);
            }
            worker.step_or_park(Some(Duration::from_secs(1)));
        }
    })
    .map_err(|e| Error::Config(format!("timely could not connect the cluster ({}): {e}", cfg.hosts.join(", "))))?;
    drop(guards);
    Ok(())
}
