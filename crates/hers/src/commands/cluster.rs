//! `hers cluster`: a gallery sharded over timely-dataflow processes, behind the `hers serve`
//! API (`split`, `serve` one process, `up` all of them on this machine, supervised).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cluster::{DoorConfig, ProcessConfig, UpConfig, UpEvent, read_hosts};

/// Arguments of `hers cluster`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Split a gallery into shard galleries along segment boundaries (segment files are
    /// hard-linked: no re-encryption, no extra disk), or along chunk boundaries when shards
    /// outnumber segments (the cut segments' ciphertexts copied, never re-encrypted).
    Split(SplitArgs),
    /// Run one process of a cluster (one shard; process 0 also runs the HTTP front door).
    Serve(ServeArgs),
    /// Run every process of a cluster on this machine, restarting the cluster whole when one
    /// dies; the public address answers 503 meanwhile.
    Up(UpArgs),
}

#[derive(Debug, clap::Args)]
struct SplitArgs {
    /// The dimension-wise gallery to split (not being served or written meanwhile).
    #[arg(long)]
    gallery: PathBuf,
    /// Number of shards (one process each); at most the gallery's chunk count.
    #[arg(long)]
    shards: usize,
    /// New cluster directory.
    #[arg(long)]
    out: PathBuf,
}

/// Options every cluster process takes (`up` passes them on).
#[derive(Debug, Clone, clap::Args)]
struct Common {
    #[command(flatten)]
    access: super::open::AccessArgs,
    /// Seconds a request may wait for the shards before it is answered with an error.
    #[arg(long, default_value_t = 120)]
    deadline_s: u64,
}

impl Common {
    fn to_args(&self) -> Vec<String> {
        let mut a = self.access.to_args();
        a.extend(["--deadline-s".to_string(), self.deadline_s.to_string()]);
        a
    }
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The cluster directory (from `hers cluster split`).
    dir: PathBuf,
    /// This process's index: its shard and its line in the host file.
    #[arg(long)]
    process: usize,
    /// Host file: one `host:port` per process, process 0 first (timely's connections).
    #[arg(long)]
    hosts: PathBuf,
    /// Where process 0's front door listens (port 0: any; printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Exit when standard input closes (what `hers cluster up` uses to stop its processes).
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
    /// HTTPS for process 0's front door.
    #[command(flatten)]
    tls: super::open::TlsArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// The cluster directory (from `hers cluster split`).
    dir: PathBuf,
    /// Public address (proxied to process 0's front door; port 0: any, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// HTTPS for the public address (process 0's front door behind it stays on loopback).
    #[command(flatten)]
    tls: super::open::TlsArgs,
    #[command(flatten)]
    common: Common,
}

/// Runs a `hers cluster` subcommand.
pub fn run(a: Args) -> anyhow::Result<()> {
    match a.command {
        Sub::Split(s) => {
            let m = cluster::split(&s.gallery, s.shards, &s.out)?;
            for (i, sh) in m.shards.iter().enumerate() {
                println!("shard {i}: {} ({} segments, {} templates)", sh.dir, sh.segments.len(), sh.templates);
            }
            eprintln!(
                "hers cluster split: {} → {} ({} shards); start it with `hers cluster up {}`",
                s.gallery.display(),
                s.out.display(),
                m.shards.len(),
                s.out.display()
            );
            Ok(())
        }
        Sub::Serve(s) => {
            let hosts = read_hosts(&s.hosts)?;
            let cfg = ProcessConfig {
                dir: s.dir.clone(),
                process: s.process,
                hosts,
                listen: s.listen,
                tls: s.tls.files(),
                door: DoorConfig {
                    access: s.common.access.access()?,
                    deadline: Duration::from_secs(s.common.deadline_s.max(1)),
                },
                simd: super::open::simd(),
                exit_with_stdin: s.exit_with_stdin,
            };
            cluster::run_process(cfg, |url| {
                if let Some(url) = url {
                    // The one line on stdout: what a supervisor or test reads to find the port.
                    println!("listening on {url}");
                }
            })
            .with_context(|| format!("cluster process {} of {}", s.process, s.dir.display()))?;
            Ok(())
        }
        Sub::Up(u) => {
            // A token file the processes could not read fails here, before any starts.
            let max_body = u.common.access.access()?.max_body_bytes;
            let program = std::env::current_exe().context("cannot find the hers executable")?;
            let mut args = vec!["cluster".to_string(), "serve".into(), u.dir.display().to_string()];
            args.extend(["--listen".to_string(), "127.0.0.1:0".into()]);
            args.extend(u.common.to_args());
            let simd = super::open::simd_name();
            args.extend(["--simd".to_string(), simd]);
            let cfg = UpConfig {
                dir: u.dir.clone(),
                listen: u.listen,
                tls: u.tls.files(),
                program,
                args,
                max_body,
                start_timeout: Duration::from_secs(300),
                upstream_timeout: Duration::from_secs(u.common.deadline_s.max(1) + 30),
            };
            cluster::up(cfg, |e| match e {
                UpEvent::Listening(url) => println!("listening on {url}"),
                UpEvent::Started(pids) => {
                    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                    println!("started pids {}", list.join(" "));
                    eprintln!("hers cluster up: {} processes started (pids {})", pids.len(), list.join(", "));
                }
                UpEvent::Exited { process, status } => {
                    eprintln!("hers cluster up: process {process} exited ({status}); restarting the cluster");
                }
                UpEvent::StartFailed(why) => eprintln!("hers cluster up: start failed ({why}); retrying"),
            })?;
            eprintln!("hers cluster up: stopped");
            Ok(())
        }
    }
}
