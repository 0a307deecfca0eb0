//! An HTTP server on a thread of its own (its own tokio runtime), for the front door and the
//! supervisor's proxy: the rest of a cluster process is synchronous (timely, rayon).

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt as _;

use crate::error::{Error, Result};

/// Binds `listen` now (so the caller can print the address) and serves `app` on a new thread
/// until `until` resolves; `stopped` runs after the server has stopped. Returns the URL.
pub fn spawn(
    name: &str,
    listen: SocketAddr,
    app: Router,
    until: impl Future<Output = ()> + Send + 'static,
    stopped: impl FnOnce() + Send + 'static,
) -> Result<String> {
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
                match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(listener) => {
                        // Without TCP_NODELAY a small write waits for the peer's delayed ACK.
                        let listener = listener.tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(until).await {
                            tracing::error!("{label}: {e}");
                        }
                    }
                    Err(e) => tracing::error!("{label}: {e}"),
                }
                stopped();
            });
        })
        .map_err(|e| Error::Config(format!("cannot start {name}: {e}")))?;
    Ok(format!("http://{addr}"))
}
