//! `hers serve`: the encrypted gallery as a long-running network service, and its client.
//!
//! The server keeps the gallery's hot form in memory and answers encrypted queries over HTTP
//! (axum on tokio); it holds public material only — no key, no template, no probe, no score in
//! the clear. Its client, [`Connection`], is the key holder's side: synchronous, within the
//! server's stated limits, retrying what is retryable, decrypting answers as they stream.
//!
//! * `api.rs`: the HTTP API every hers server speaks (route table, types, checks), shared with
//!   a cluster's front door; `access.rs`: the tokens and limits both take ([`Access`]);
//!   `routes.rs`: `hers serve`'s handlers;
//! * `batch.rs`: queries waiting together scored in one chunk-major pass;
//! * `versions.rs`: the gallery's versions, swapped atomically after each durable write;
//! * `metrics.rs`: Prometheus counters and the latency histogram; `cpu.rs`: the process's CPU time;
//! * `serve.rs`: start-up, listening, graceful shutdown; `tls.rs`: HTTPS (rustls);
//! * `connection.rs`: the key holder's client ([`Connection`]); `remote.rs`: its HTTP transport,
//!   one method per endpoint; `retry.rs`: what is retried and for how long;
//! * `info.rs`: what `GET /v1/config` says;
//!
//! Serving a gallery, and searching it from another process with the key holder's keys:
//!
//! ```no_run
//! use service::{ConnectOptions, Connection, ServeConfig, serve};
//!
//! # fn main() -> service::Result<()> {
//! // Server machine: blocks until SIGTERM or Ctrl-C.
//! let cfg = ServeConfig::new("gallery".into(), "127.0.0.1:7878".parse().expect("address"));
//! serve(cfg, |url, _| println!("listening on {url}"))?;
//! // Key holder: any number of probes, within the server's stated limits.
//! let keys = encsearch::ClientKeys::load("keys".as_ref())?;
//! let server = Connection::connect("http://127.0.0.1:7878", keys, ConnectOptions::default())?;
//! let rows = vec![0.25f32; server.info().quantizer.dim];
//! let found = server.search(&["probe".to_string()], &rows, 5)?;
//! # Ok(())
//! # }
//! ```

mod access;
mod api;
mod batch;
mod capped;
mod connection;
mod cpu;
mod error;
mod info;
mod metrics;
mod remote;
mod retry;
mod routes;
mod sealing;
mod serve;
mod tls;
mod versions;

pub use access::Access;
pub use api::{
    ApiError, Claim, Endpoints, ErrorBody, Removal, VersionParam, WriteAck, blocking, check_key, decode_query, octets,
    refuse_announced_oversize, router as api_router, stream_header, verify_claim,
};
pub use capped::{Capped, Placed};
pub use connection::{ConnectOptions, Connection, EnrolOptions, Enrolled, Found, check_keys};
pub use cpu::process_cpu_seconds;
pub use error::{Error, Result};
pub use info::{FineInfo, ServerInfo, params_hash};
pub use metrics::{Endpoint, Metrics};
pub use remote::{Remote, Transfer};
pub use retry::RetryPolicy;
pub use sealing::{SEEN_FILE, Seen};
pub use serve::{ServeConfig, read_token, serve, shutdown_signal};
pub use tls::{TlsFiles, TlsListener};
pub use versions::{Fine, Held, OpenReport, Version};
