//! The supervisor's public address: every request passed to process 0's front door, answers
//! streamed back as they come; 503 with `Retry-After` while the cluster is (re)starting, so a
//! client is told to retry instead of finding nothing listening.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use service::ApiError;

use crate::error::Result;

/// Where requests go: process 0's front door, or nowhere while the cluster restarts.
#[derive(Debug, Clone, Default)]
pub struct Backend(Arc<RwLock<Option<String>>>);

impl Backend {
    /// Points the proxy at a front door (`None`: answer 503).
    pub fn set(&self, url: Option<String>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = url;
    }

    fn get(&self) -> Option<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Debug)]
struct Proxy {
    backend: Backend,
    agent: ureq::Agent,
    max_body: usize,
}

/// Starts the proxy on its own thread; returns its URL. `stopped` fires on SIGTERM or Ctrl-C.
/// An answer from process 0 that stalls for `upstream_timeout` is cut (the client sees an error).
pub fn start(
    backend: Backend,
    listen: SocketAddr,
    tls: Option<&service::TlsFiles>,
    max_body: usize,
    upstream_timeout: Duration,
    stopped: impl FnOnce() + Send + 'static,
) -> Result<String> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_per_read(Some(upstream_timeout))
        .build()
        .new_agent();
    let proxy = Arc::new(Proxy { backend, agent, max_body });
    let app = Router::new().fallback(forward).with_state(proxy);
    crate::http::spawn("hers-up-proxy", listen, tls, app, service::shutdown_signal(), stopped)
}

fn restarting() -> Response {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the cluster is restarting: retry in a second").into_response()
}

type Head = (StatusCode, Option<header::HeaderValue>);

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let Some(base) = p.backend.get() else {
        return restarting();
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, p.max_body).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("a body above {} bytes", p.max_body))
            .into_response();
    };
    let path = parts.uri.path_and_query().map(|x| x.as_str()).unwrap_or("/");
    let mut out = axum::http::Request::builder().method(parts.method.clone()).uri(format!("{base}{path}"));
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v.clone());
        }
    }
    let Ok(out) = out.body(bytes.to_vec()) else {
        return ApiError::new(StatusCode::BAD_REQUEST, "request not forwardable").into_response();
    };
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Option<Head>>();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let agent = p.agent.clone();
    // The upstream call blocks: it runs on a thread of its own and streams the body over.
    std::thread::spawn(move || {
        let resp = match agent.run(out) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("front door unreachable: {e}");
                let _ = head_tx.send(None);
                return;
            }
        };
        let (rparts, body) = resp.into_parts();
        let _ = head_tx.send(Some((rparts.status, rparts.headers.get(header::CONTENT_TYPE).cloned())));
        let mut reader = body.into_reader();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // Cut the client's answer too: it must not look complete.
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let Ok(Some((status, content_type))) = head_rx.await else {
        return restarting();
    };
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}
