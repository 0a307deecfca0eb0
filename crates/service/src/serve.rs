//! Starting and stopping a server: open the gallery, start the scoring thread, listen (HTTP, or
//! HTTPS with `tls.rs`), and on SIGTERM or Ctrl-C stop accepting, finish every query in flight,
//! then exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use encsearch::Simd;

use axum::serve::ListenerExt as _;

use crate::access::Access;
use crate::capped::Capped;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::routes::{App, Core, router};
use crate::tls::{TlsFiles, TlsListener};
use crate::versions::{Fine, Held, OpenReport};

/// How to run a server (`hers serve`).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The dimension-wise gallery to serve (the server becomes its only writer).
    pub gallery: PathBuf,
    /// The coefficient-layout gallery of the two-stage search's second step, if any.
    pub fine_gallery: Option<PathBuf>,
    /// Address to listen on (port 0: any free port, reported through `ready`).
    pub listen: SocketAddr,
    /// Tokens and request limits (stated in `/v1/config`).
    pub access: Access,
    /// How long the scoring thread waits, for queries still being decoded, to batch them with
    /// the first (it does not wait when none is).
    pub batch_window: Duration,
    /// Most candidates of one probe in a second-stage query.
    pub max_candidates: usize,
    /// Connections held at once, TLS handshakes in flight included (more wait in the
    /// listen backlog until one closes).
    pub max_connections: usize,
    /// Most probes scored in one pass over the gallery (queries waiting beyond it wait for
    /// the next pass).
    pub max_batch_probes: usize,
    /// Vector builds the scoring kernels may use.
    pub simd: Simd,
    /// Serve HTTPS with this certificate and key (plain HTTP without).
    pub tls: Option<TlsFiles>,
}

impl ServeConfig {
    /// Defaults for serving `gallery` on `listen`.
    pub fn new(gallery: PathBuf, listen: SocketAddr) -> Self {
        Self {
            gallery,
            fine_gallery: None,
            listen,
            access: Access::default(),
            batch_window: Duration::from_millis(2),
            max_candidates: 1024,
            max_connections: 1024,
            max_batch_probes: 4,
            simd: Simd::detect(),
            tls: None,
        }
    }
}

/// Reads a bearer token file (whitespace around the token is ignored; an empty file is an
/// error). A file that group or others may read is refused, as the secret key is.
pub fn read_token(path: &std::path::Path) -> Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{}: a token file must be readable by its owner only (mode {mode:03o}): chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let token = text.trim().to_string();
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Config(format!(
            "{}: a token file holds one token (no spaces), e.g. `openssl rand -hex 32 > {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(token)
}

/// Runs a server until SIGTERM or Ctrl-C; `ready` is called once it listens (with its URL —
/// `http://` or `https://` and the bound address — and how opening the gallery went).
pub fn serve(cfg: ServeConfig, ready: impl FnOnce(&str, &OpenReport)) -> Result<()> {
    // Bad TLS files fail before the gallery is loaded.
    let acceptor = cfg.tls.as_ref().map(TlsFiles::acceptor).transpose()?;
    let (held, report) = Held::open(&cfg.gallery, cfg.simd)?;
    let fine = cfg.fine_gallery.as_deref().map(|d| Fine::open(d, cfg.simd)).transpose()?;
    if let Some(f) = &fine {
        tracing::info!("second stage: {} ({} templates)", f.gallery.dir().display(), f.gallery.len());
    }
    let core = Arc::new(Core { held, metrics: Metrics::default() });
    let (queue, jobs) = std::sync::mpsc::sync_channel(cfg.access.max_inflight);
    let incoming = Arc::new(crate::batch::Incoming::default());
    let scorer = {
        let (core, incoming) = (core.clone(), incoming.clone());
        let (window, batch) = (cfg.batch_window, cfg.max_batch_probes.max(1));
        std::thread::Builder::new()
            .name("hers-scorer".into())
            .spawn(move || crate::batch::run(core.held.ctx(), &core.metrics, jobs, &incoming, window, batch))
            .map_err(|e| Error::Config(format!("cannot start the scoring thread: {e}")))?
    };
    let batch = cfg.max_batch_probes.max(1);
    let app = Arc::new(App {
        core,
        fine,
        queue,
        // Those waiting (the queue's bound) and those being scored (at most a batch).
        admit: Arc::new(tokio::sync::Semaphore::new(cfg.access.max_inflight + batch)),
        incoming,
        max_candidates: cfg.max_candidates.max(1),
        access: cfg.access,
    });
    let connections = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections.max(1)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hers-http")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the async runtime: {e}")))?;
    let listen = cfg.listen;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
        let stopped = |e: std::io::Error| Error::Config(format!("server stopped: {e}"));
        match acceptor {
            Some(acceptor) => {
                let tls = TlsListener::new(listener, acceptor, connections).map_err(stopped)?;
                ready(&format!("https://{addr}"), &report);
                axum::serve(tls, router(app)).with_graceful_shutdown(shutdown_signal()).await.map_err(stopped)
            }
            None => {
                ready(&format!("http://{addr}"), &report);
                // Without TCP_NODELAY a small write waits for the peer's delayed ACK (40 ms on Linux).
                let listener = Capped::new(listener, connections).tap_io(|tcp| {
                    if let Err(e) = tcp.get_ref().set_nodelay(true) {
                        tracing::debug!("TCP_NODELAY not set: {e}");
                    }
                });
                axum::serve(listener, router(app)).with_graceful_shutdown(shutdown_signal()).await.map_err(stopped)
            }
        }
    });
    // Every handler (and so every queue sender) is gone: the scoring thread ends.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let _ = scorer.join();
    served
}

/// Resolves on SIGTERM or Ctrl-C (shared with the cluster's supervisor).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing the queries in flight");
}
