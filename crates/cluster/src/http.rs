//! An HTTP(S) server on a thread of its own (its own tokio runtime), for the front door and the
//! supervisor's proxy: the rest of a cluster process is synchronous (timely, rayon). HTTPS and
//! the cap on connections are `hers serve`'s own ([`service::TlsListener`], [`service::Capped`]).

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt as _;
use service::{Capped, TlsFiles, TlsListener};

use crate::error::{Error, Result};

/// Connections held at once (TLS handshakes included), as `hers serve`'s default.
const MAX_CONNECTIONS: usize = 1024;

/// Binds `listen` now (so the caller can print the address) and serves `app` on a new thread
/// until `until` resolves, over HTTPS with `tls`' certificate and key when given; `stopped`
/// runs after the server has stopped. Returns the URL (`http://` or `https://`).
pub fn spawn(
    name: &str,
    listen: SocketAddr,
    tls: Option<&TlsFiles>,
    app: Router,
    until: impl Future<Output = ()> + Send + 'static,
    stopped: impl FnOnce() + Send + 'static,
) -> Result<String> {
    // Bad certificate files fail here, before anything listens.
    let acceptor = tls.map(TlsFiles::acceptor).transpose().map_err(|e| Error::Config(e.to_string()))?;
    let std_listener =
        std::net::TcpListener::bind(listen).map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
    let addr = std_listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
    std_listener.set_nonblocking(true).map_err(|e| Error::Config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the async runtime: {e}")))?;
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("{name}-main"))
        .spawn(move || {
            runtime.block_on(async move {
                let places = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                let served = match (tokio::net::TcpListener::from_std(std_listener), acceptor) {
                    (Ok(listener), Some(acceptor)) => match TlsListener::new(listener, acceptor, places) {
                        Ok(tls) => axum::serve(tls, app).with_graceful_shutdown(until).await,
                        Err(e) => Err(e),
                    },
                    (Ok(listener), None) => {
                        // Without TCP_NODELAY a small write waits for the peer's delayed ACK.
                        let listener = Capped::new(listener, places).tap_io(|tcp| {
                            let _ = tcp.get_ref().set_nodelay(true);
                        });
                        axum::serve(listener, app).with_graceful_shutdown(until).await
                    }
                    (Err(e), _) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("{label}: {e}");
                }
                stopped();
            });
        })
        .map_err(|e| Error::Config(format!("cannot start {name}: {e}")))?;
    Ok(format!("{}://{addr}", if tls.is_some() { "https" } else { "http" }))
}
