//! The client of a `hers serve` server: sends what the key holder encrypted, reads the streamed
//! answers (every frame checked, a cut answer an error), names slots with the id table of the
//! answer's gallery version (fetched once per version and cached). Synchronous: it plugs into
//! [`encsearch::Session`] as the `server` closure.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use encsearch::{
    Client, Query, Response,
    wire::{ChunkScores, Enrolment, FineQuery, FineResponse, IdTable, ScoreStream, StreamHeader},
};

use crate::api::{ErrorBody, Removal, WriteAck};
use crate::error::{Error, Result};
use crate::info::ServerInfo;
use crate::retry::RetryPolicy;
use crate::sealing::{self, Seen};

/// The most bytes read of an answer that is not a score stream, an id table or a second-stage
/// answer (the configuration, an acknowledgement, a verification's one chunk).
const SMALL_ANSWER_LIMIT: u64 = 64 << 20;
/// The most bytes read of a second-stage answer (at most one chunk's scores per candidate).
const FINE_ANSWER_LIMIT: u64 = 4 << 30;

/// Bytes a request sent and its answer brought back (bodies only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Request body bytes.
    pub up: usize,
    /// Answer body bytes (the id table, when it had to be fetched, counted apart).
    pub down: usize,
}

impl std::ops::AddAssign for Transfer {
    fn add_assign(&mut self, other: Transfer) {
        self.up += other.up;
        self.down += other.down;
    }
}

/// The HTTP transport to one server: one method per endpoint, each answer checked. It retries
/// nothing unless given a [`RetryPolicy`] ([`Remote::with_retry`]): a load generator counts
/// refusals, an application wants them retried ([`crate::Connection`] does).
pub struct Remote {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
    /// Bearer token for reads, when the server wants one (else the write token, if any, is sent).
    read_token: Option<String>,
    ids: Mutex<Option<IdTable>>,
    /// The server's body limit, once [`Remote::info`] has told it.
    max_body: Mutex<Option<usize>>,
    /// The most bytes of an id table to read, once [`Remote::info`] has told its size.
    id_table_limit: Mutex<u64>,
    /// The seals seen (`sealing.rs`).
    seen: Seen,
    /// The version whose id table was last checked against its seal.
    checked: Mutex<Option<u64>>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Remote {
    /// Never prints the bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("read_token", &self.read_token.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A client of the server at `url` (`http://host:port`, or `https://` checked against the
    /// bundled web roots); `token` for enrolment and removal; `timeout` bounds each request,
    /// answer included.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self> {
        Self::with_ca(url, token, timeout, None)
    }

    /// [`Remote::new`] trusting only the CA certificate(s) in `ca_pem` for `https://` (a
    /// private CA or a self-signed server certificate).
    pub fn with_ca(url: &str, token: Option<String>, timeout: Duration, ca_pem: Option<&[u8]>) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Error::Config(format!(
                "--server {url}: give the server's address as http://HOST:PORT or https://HOST:PORT"
            )));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(10)));
        if let Some(pem) = ca_pem {
            let certs = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("--ca-cert: not a PEM certificate file: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Config("--ca-cert: the file holds no CERTIFICATE block".into()));
            }
            let roots = ureq::tls::RootCerts::new_with_certs(&certs);
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let agent: ureq::Agent = config.build().into();
        Ok(Self {
            base,
            agent,
            token,
            read_token: None,
            ids: Mutex::new(None),
            max_body: Mutex::new(None),
            id_table_limit: Mutex::new(1 << 30),
            seen: Seen::in_memory(),
            checked: Mutex::new(None),
            retry: RetryPolicy::none(),
        })
    }

    /// Sends `token` with every read (search, verification, `/v1/ids`, `/v1/config`): for a
    /// server started with `--read-token-file`.
    pub fn with_read_token(mut self, token: Option<String>) -> Self {
        self.read_token = token;
        self
    }

    /// Keeps the seals seen in `seen` (e.g. [`Seen::at`] a file) instead of in memory.
    pub fn with_seen(mut self, seen: Seen) -> Self {
        self.seen = seen;
        self
    }

    /// The seals seen through this transport.
    pub(crate) fn seen(&self) -> &Seen {
        &self.seen
    }

    /// The server's address as given (without a trailing `/`).
    pub fn url_base(&self) -> &str {
        &self.base
    }

    /// The version whose table was last checked against its seal.
    pub(crate) fn checked(&self) -> Option<u64> {
        *self.checked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that version `v`'s table checked out.
    pub(crate) fn set_checked(&self, v: u64) {
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }

    /// The token a read carries: the read token, else the write token (which also serves).
    fn read_auth(&self) -> Option<&str> {
        self.read_token.as_deref().or(self.token.as_deref())
    }

    /// Retries what is retryable (429, 503, a refused connection) under `policy`.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Runs one request under the retry policy (retries are reported on standard error, since a
    /// user waiting on a refused server should know why nothing happens).
    fn retried<T>(&self, op: impl FnMut() -> Result<T>) -> Result<T> {
        self.retry.run(op, |e, wait| tracing::warn!("{e}; retrying in {:.1} s", wait.as_secs_f64()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Turns an answer into its body reader, or its error status into [`Error::Http`].
    fn check(
        &self,
        url: &str,
        r: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::Body> {
        let r = r.map_err(|e| transport_error(url, e))?;
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = r.into_body();
        if status < 400 {
            return Ok(body);
        }
        let text = body.read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text).map(|e| e.error).unwrap_or(text);
        Err(Error::Http { url: url.to_string(), status, message, retry_after })
    }

    fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        self.get_bytes_within(path, SMALL_ANSWER_LIMIT)
    }

    /// A GET whose answer may hold at most `limit` bytes (more is an error, read no further).
    fn get_bytes_within(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let url = self.url(path);
        self.retried(|| {
            let mut req = self.agent.get(&url);
            if let Some(t) = self.read_auth() {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            let mut body = self.check(&url, req.call())?;
            body.with_config().limit(limit).read_to_vec().map_err(|e| Error::Transport {
                url: url.clone(),
                message: format!("{e} (at most {limit} bytes read)"),
            })
        })
    }

    /// Refuses locally a body the server would refuse (once the limit is known): a server
    /// answers 413 from the length alone, and a client still sending may see only the
    /// connection closing.
    fn check_size(&self, url: &str, len: usize) -> Result<()> {
        match *self.max_body.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(max) if len > max => Err(Error::Http {
                url: url.to_string(),
                status: 413,
                retry_after: None,
                message: format!(
                    "a body of {len} bytes exceeds the server's limit of {max}: send fewer probes or \
                     templates per request"
                ),
            }),
            _ => Ok(()),
        }
    }

    fn post(&self, path: &str, bytes: &[u8], auth: bool) -> Result<ureq::Body> {
        self.retried(|| self.post_once(path, bytes, auth))
    }

    /// One POST, not retried.
    fn post_once(&self, path: &str, bytes: &[u8], auth: bool) -> Result<ureq::Body> {
        let url = self.url(path);
        self.check_size(&url, bytes.len())?;
        let mut req = self.agent.post(&url).header("content-type", "application/octet-stream");
        if let Some(t) = if auth { self.token.as_deref() } else { self.read_auth() } {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        self.check(&url, req.send(bytes))
    }

    /// Reads a whole answer of at most `limit` bytes (more is an error, read no further).
    fn read_all(&self, path: &str, body: ureq::Body, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let read = body
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::Transport { url: self.url(path), message: e.to_string() })?;
        if read as u64 > limit {
            return Err(Error::Transport {
                url: self.url(path),
                message: format!("the answer exceeds the {limit} bytes such an answer can take"),
            });
        }
        Ok(out)
    }

    /// `GET /v1/config`.
    pub fn info(&self) -> Result<ServerInfo> {
        let bytes = self.get_bytes("/v1/config")?;
        let info: ServerInfo = serde_json::from_slice(&bytes).map_err(|e| Error::Transport {
            url: self.url("/v1/config"),
            message: format!("bad config answer: {e}"),
        })?;
        *self.max_body.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.max_body_bytes);
        *self.id_table_limit.lock().unwrap_or_else(|p| p.into_inner()) = info.id_table_limit();
        Ok(info)
    }

    /// The id table of gallery version `version` (cached: fetched once per version).
    pub fn ids(&self, version: u64) -> Result<IdTable> {
        if let Some(t) = self.ids.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|t| t.version == version) {
            return Ok(t.clone());
        }
        let limit = *self.id_table_limit.lock().unwrap_or_else(|p| p.into_inner());
        let table = IdTable::from_bytes(&self.get_bytes_within(&format!("/v1/ids?version={version}"), limit)?)?;
        *self.ids.lock().unwrap_or_else(|p| p.into_inner()) = Some(table.clone());
        Ok(table)
    }

    /// A 1:N search: the streamed answer, checked whole, as a [`Response`].
    pub fn search(&self, query: &Query) -> Result<Response> {
        Ok(self.search_bytes(&query.to_bytes())?.0)
    }

    /// [`Remote::search`] of an encoded query, with the bytes it moved.
    pub fn search_bytes(&self, query: &[u8]) -> Result<(Response, Transfer)> {
        let body = self.post("/v1/search", query, false)?;
        let mut reader = Counted { inner: body.into_reader(), bytes: 0, cut: None };
        let stream = ScoreStream::read_from(&mut reader)?;
        let down = reader.bytes;
        let table = self.ids(stream.header.version)?;
        Ok((stream.into_response(&table)?, Transfer { up: query.len(), down }))
    }

    /// Sends an encoded query and hands its streamed answer over as it arrives: the header to
    /// `on_header`, each chunk's index and scores to `on_chunk` (see
    /// [`ScoreStream::for_each_chunk`]). Fails unless the whole answer arrived intact. Tried
    /// once, whatever the retry policy: its caller retries the whole exchange.
    pub fn search_each(
        &self,
        query: &[u8],
        on_header: impl FnOnce(&StreamHeader) -> Result<()>,
        mut on_chunk: impl FnMut(usize, Vec<ChunkScores>) -> Result<()>,
    ) -> Result<(StreamHeader, Transfer)> {
        let body = self.post_once("/v1/search", query, false)?;
        let mut reader = Counted { inner: body.into_reader(), bytes: 0, cut: None };
        let failed = std::cell::RefCell::new(None);
        let header = ScoreStream::for_each_chunk(
            &mut reader,
            |h| on_header(h).map_err(|e| stash(&failed, e)),
            |i, scores| on_chunk(i, scores).map_err(|e| stash(&failed, e)),
        );
        let header = match (header, failed.into_inner()) {
            (_, Some(e)) => return Err(e),
            (Err(e), None) if reader.cut.is_some() => {
                let url = self.url("/v1/search");
                return Err(Error::Transport { url, message: format!("the answer was cut: {e}") });
            }
            (h, None) => h?,
        };
        Ok((header, Transfer { up: query.len(), down: reader.bytes }))
    }

    /// Sends an encoded query and checks that its streamed answer arrives whole (every frame's
    /// CRC, every chunk once, the end frame) without unpacking the scores: the load
    /// generator's request. Returns the answer's header and the bytes moved.
    pub fn search_verified(&self, query: &[u8]) -> Result<(StreamHeader, Transfer)> {
        let body = self.post("/v1/search", query, false)?;
        let mut reader = Counted { inner: body.into_reader(), bytes: 0, cut: None };
        let header = ScoreStream::verify_from(&mut reader)?;
        Ok((header, Transfer { up: query.len(), down: reader.bytes }))
    }

    /// The second stage of a two-stage search.
    pub fn fine(&self, query: &FineQuery) -> Result<FineResponse> {
        let body = self.post("/v1/search/fine", &query.to_bytes(), false)?;
        Ok(FineResponse::from_bytes(&self.read_all("/v1/search/fine", body, FINE_ANSWER_LIMIT)?)?)
    }

    /// 1:1 verification of a one-probe query against the claimed id: the answer holds the
    /// scores of the claim's chunk only.
    pub fn verify(&self, query: &Query, claim: &str) -> Result<Response> {
        let url = self.url("/v1/verify");
        let bytes = query.to_bytes();
        self.check_size(&url, bytes.len())?;
        let body = self.retried(|| {
            let mut req = self.agent.post(&url).query("id", claim).header("content-type", "application/octet-stream");
            if let Some(t) = self.read_auth() {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            self.check(&url, req.send(&bytes[..]))
        })?;
        Ok(Response::from_bytes(&self.read_all("/v1/verify", body, SMALL_ANSWER_LIMIT)?)?)
    }

    /// Enrols client-encrypted templates; returns once they are durable and searchable.
    pub fn enrol(&self, enrolment: &Enrolment) -> Result<WriteAck> {
        let body = self.post("/v1/templates", &enrolment.to_bytes(), true)?;
        self.ack("/v1/templates", body)
    }

    /// [`Remote::enrol`] of an encoded enrolment, tried once: the caller decides what a failure means (a 503 from
    /// a proxy may come after the write was applied; see `Connection::enrol`).
    pub(crate) fn enrol_bytes_once(&self, enrolment: &[u8]) -> Result<WriteAck> {
        let body = self.post_once("/v1/templates", enrolment, true)?;
        self.ack("/v1/templates", body)
    }

    /// Encrypts `rows` (row-major, the gallery's dimension) with `client` and enrols them under
    /// `ids`, `per_request` chunks per request; `progress(n)` after each acknowledged request
    /// of n templates. Returns the last acknowledgement. A failed request leaves every earlier
    /// one enrolled (each is durable when acknowledged); the loop is [`crate::Connection::enrol`]'s.
    pub fn enrol_rows<R: rand::RngCore + rand::CryptoRng>(
        &self,
        client: &Client,
        ids: &[String],
        rows: &[f32],
        per_request: usize,
        rng: &mut R,
        progress: impl FnMut(usize),
    ) -> Result<WriteAck> {
        let options = crate::EnrolOptions { resume: false, chunks_per_request: per_request };
        let done = crate::connection::enrol_rows(self, client, ids, rows, options, rng, progress)?;
        Ok(WriteAck { version: done.version, templates: done.templates, changed: done.enrolled })
    }

    /// Removes ids, sealed by `client` (the key holder) against the current id table; returns
    /// once the removal is durable and no search returns them.
    pub fn remove(&self, client: &Client, ids: &[String]) -> Result<WriteAck> {
        sealing::sealed_write(
            self,
            client,
            |key, table, expect| key.seal_remove(table, expect, ids, &mut rand::rng()),
            |seal| self.remove_sealed(ids, seal),
        )
    }

    /// One removal with its seal (retried under the policy when refused for now).
    fn remove_sealed(&self, ids: &[String], seal: encsearch::seal::Seal) -> Result<WriteAck> {
        let url = self.url("/v1/templates");
        let json = serde_json::to_vec(&Removal { ids: ids.to_vec(), seal: Some(seal) })
            .map_err(|e| Error::Config(format!("cannot encode the removal: {e}")))?;
        let body = self.retried(|| {
            let mut req = self.agent.delete(&url).force_send_body().header("content-type", "application/json");
            if let Some(t) = &self.token {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            self.check(&url, req.send(&json[..]))
        })?;
        self.ack("/v1/templates", body)
    }

    fn ack(&self, path: &str, body: ureq::Body) -> Result<WriteAck> {
        serde_json::from_slice(&self.read_all(path, body, SMALL_ANSWER_LIMIT)?)
            .map_err(|e| Error::Transport { url: self.url(path), message: format!("bad acknowledgement: {e}") })
    }

    /// `GET /metrics` (Prometheus text).
    pub fn metrics(&self) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.get_bytes("/metrics")?).into_owned())
    }
}

/// A reader that counts what passed through it and remembers a failed read (a connection
/// cut mid-answer, as against an answer that arrived and was wrong).
struct Counted<R> {
    inner: R,
    bytes: usize,
    cut: Option<std::io::ErrorKind>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.cut = Some(e.kind());
            }
        })?;
        self.bytes += n;
        Ok(n)
    }
}

/// Keeps a callback's own error (the stream reader sees only that the callback failed).
fn stash(slot: &std::cell::RefCell<Option<Error>>, e: Error) -> encsearch::Error {
    let message = e.to_string();
    *slot.borrow_mut() = Some(e);
    encsearch::Error::Server { message }
}

/// A failed request in the user's words: a connection that could not be made is
/// [`Error::Unreachable`] (safe to retry); a TLS refusal says what is wrong with the
/// certificate and how to make one that works.
fn transport_error(url: &str, e: ureq::Error) -> Error {
    let refused = match &e {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound | std::io::ErrorKind::AddrNotAvailable
        ),
        _ => false,
    };
    let message = e.to_string();
    if refused {
        return Error::Unreachable { url: url.to_string(), message };
    }
    match tls_advice(&message) {
        Some(advice) => Error::Transport { url: url.to_string(), message: format!("{advice} ({message})") },
        None => Error::Transport { url: url.to_string(), message },
    }
}

/// What a TLS certificate failure means and how to fix it, from rustls' error text.
fn tls_advice(message: &str) -> Option<&'static str> {
    if message.contains("CaUsedAsEndEntity") {
        Some(
            "the server's certificate is a CA certificate (basicConstraints CA:TRUE), which TLS clients \
             refuse as a server's own: make it with `-addext basicConstraints=critical,CA:FALSE`, or sign a \
             server certificate with a CA of your own and pass that CA with --ca-cert (docs/service.md: HTTPS)",
        )
    } else if message.contains("BadSignature") {
        Some(
            "the server's certificate was not signed by the CA certificate this client trusts (the \
             issuer's name matches, its signature does not): pass the CA that signed it (or the \
             server's own self-signed certificate) with --ca-cert (docs/service.md: HTTPS)",
        )
    } else if message.contains("UnknownIssuer") {
        Some(
            "the server's certificate is not signed by a CA this client trusts: pass the CA certificate \
             (or the server's self-signed certificate) with --ca-cert (docs/service.md: HTTPS)",
        )
    } else if message.contains("NotValidForName") {
        Some(
            "the server's certificate does not name the host in --server: make it with a subjectAltName \
             of that host (e.g. `-addext subjectAltName=IP:127.0.0.1` or `DNS:host.example`), or connect \
             by a name it holds (docs/service.md: HTTPS)",
        )
    } else if message.contains("Expired") || message.contains("NotValidYet") {
        Some("the server's certificate is outside its validity period (expired or not yet valid): renew it")
    } else {
        None
    }
}
