//! `hers serve`: the encrypted gallery as a long-running HTTP service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use service::{ServeConfig, serve};

/// Arguments of `hers serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dimension-wise gallery to serve. The server holds its writer lock while it runs (other
    /// writers wait or fail naming the server's pid) and its hot form in memory.
    #[arg(long)]
    gallery: PathBuf,
    /// Coefficient-layout gallery for the second step of a two-stage search (read-only).
    #[arg(long)]
    fine_gallery: Option<PathBuf>,
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Milliseconds the scorer waits for queries still being decoded, to score them in one
    /// pass with the first (none on its way: no wait).
    #[arg(long, default_value_t = 2)]
    batch_window_ms: u64,
    /// Most candidates of one probe in a second-stage query (400 beyond, before decoding).
    #[arg(long, default_value_t = 1024)]
    max_candidates: usize,
    /// Connections held at once, TLS handshakes included; more wait until one closes.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most probes scored in one pass over the gallery. A pass reads each chunk once for all
    /// its probes and shares a pass's fixed costs; at 16 clients on 1M templates (IFMA) passes
    /// of 4 gave 27 queries/s against 22 for passes of 1 and of 8 or 16 (see docs/service.md,
    /// "Measured"), so the default is 4.
    #[arg(long, default_value_t = 4)]
    max_batch: usize,
    #[command(flatten)]
    access: super::open::AccessArgs,
    #[command(flatten)]
    tls: super::open::TlsArgs,
}

/// Serves until SIGTERM or Ctrl-C, then finishes the queries in flight.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut cfg = ServeConfig::new(a.gallery.clone(), a.listen);
    cfg.fine_gallery = a.fine_gallery;
    cfg.access = a.access.access()?;
    cfg.max_candidates = a.max_candidates;
    cfg.max_connections = a.max_connections;
    cfg.batch_window = Duration::from_millis(a.batch_window_ms);
    cfg.max_batch_probes = a.max_batch;
    cfg.simd = super::open::simd();
    cfg.tls = a.tls.files();
    let writes = if cfg.access.token.is_some() { "enabled (bearer token)" } else { "disabled (no --token-file)" };
    let reads = if cfg.access.read_token.is_some() { "bearer token" } else { "open (no --read-token-file)" };
    serve(cfg, |url, report| {
        eprintln!(
            "hers serve: {} ready in {:.2} s ({} segments mapped from the hot cache, {} built); writes {writes}; \
             reads {reads}; {}",
            a.gallery.display(),
            report.seconds,
            report.mapped,
            report.built,
            report.kernel
        );
        // The one line on stdout: what a supervisor or test reads to find the port.
        println!("listening on {url}");
    })?;
    eprintln!("hers serve: stopped");
    Ok(())
}
