//! The HTTP API. Bodies are `application/octet-stream` carrying the wire encodings of
//! `encsearch` (each checked by its CRC and fuzzed decoder); JSON only for small control
//! answers and errors (`{"error": "..."}`).
//!
//! Reads (`/v1/config`, `/v1/ids`, the searches and verification) need the read token when
//! the server has one (the write token also serves); writes always need the write token.
//! Search, fine search and verification are admitted together up to a bound (more get 429)
//! and have their probe and candidate counts checked before any ciphertext is decoded.
//!
//! | endpoint | body → answer |
//! |---|---|
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /v1/config` | [`ServerInfo`] (JSON) |
//! | `GET /v1/ids?version=V` | [`encsearch::IdTable`] of version V (410 once it is gone) |
//! | `POST /v1/search` | [`encsearch::Query`] → [`encsearch::ScoreStream`] frames, streamed |
//! | `POST /v1/search/fine` | [`encsearch::FineQuery`] → [`encsearch::FineResponse`] |
//! | `POST /v1/verify?id=ID` | one-probe [`encsearch::Query`] → [`encsearch::Response`] of ID's chunk |
//! | `POST /v1/templates` | [`encsearch::Enrolment`] → `{"version", "templates", "enrolled"}` (token) |
//! | `DELETE /v1/templates` | `{"ids": [...]}` → `{"version", "templates", "removed"}` (token) |

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query as Params, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use encsearch::{Enrolment, FineQuery, KeyId, Query, ServerContext, StreamFrames, StreamHeader};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::batch::Job;
use crate::info::{FineInfo, ServerInfo, params_hash};
use crate::metrics::{Endpoint, Metrics};
use crate::versions::{Fine, Held};

/// What the scoring thread shares with the handlers.
#[derive(Debug)]
pub struct Core {
    /// The gallery and its versions.
    pub held: Held,
    /// Counters.
    pub metrics: Metrics,
}

/// Everything a handler needs.
#[derive(Debug)]
pub struct App {
    /// Gallery, versions, counters.
    pub core: Arc<Core>,
    /// The second-stage gallery, if served.
    pub fine: Option<Fine>,
    /// Accepted queries waiting to be scored (bounded: full means 429).
    pub queue: SyncSender<Job>,
    /// Bearer token for writes; `None` disables writes.
    pub token: Option<String>,
    /// Bearer token for reads (the write token also serves); `None`: reads are open.
    pub read_token: Option<String>,
    /// Searches, fine searches and verifications admitted at once (decoding, waiting or being
    /// scored); a request beyond them gets 429 before its body is decoded.
    pub admit: Arc<tokio::sync::Semaphore>,
    /// Most probes in one query.
    pub max_probes: usize,
    /// Most candidates of one probe in a fine query.
    pub max_candidates: usize,
    /// Largest request body (bytes).
    pub max_body: usize,
}

/// An error answer: status and message (429 and 503 add `Retry-After`, 401 `WWW-Authenticate`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An answer with `status` and a message saying what went wrong and how to fix it.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and how to fix it.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(ErrorBody { error: self.message })).into_response();
        match self.status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::UNAUTHORIZED => {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        r
    }
}

impl From<encsearch::Error> for ApiError {
    fn from(e: encsearch::Error) -> Self {
        use encsearch::Error as E;
        let status = match &e {
            E::KeyMismatch { .. }
            | E::DuplicateId { .. }
            | E::DuplicateInInput { .. }
            | E::AlreadyEnrolled { .. }
            | E::PartlyEnrolled { .. } => StatusCode::CONFLICT,
            E::UnknownId { .. } => StatusCode::NOT_FOUND,
            E::Malformed { .. }
            | E::Checksum { .. }
            | E::DimensionMismatch { .. }
            | E::InvalidArgument { .. }
            | E::TooMany { .. }
            | E::InvalidParameters { .. }
            | E::NonFinite { .. }
            | E::ZeroNorm { .. } => StatusCode::BAD_REQUEST,
            E::GalleryLocked { .. } => StatusCode::SERVICE_UNAVAILABLE,
            E::SealMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            E::KeyMismatch { expected, actual } => format!(
                "this server's gallery is under key {expected}, the request was made with key {actual}: \
                 use the key set the gallery was enrolled with"
            ),
            _ => e.to_string(),
        };
        Self::new(status, message)
    }
}

/// Runs blocking work (decoding ciphertexts, scoring, disk writes) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("request handler failed: {e}")))?
}

/// Refuses bytes made for another key before decoding them.
fn check_key(ctx: &ServerContext, peeked: encsearch::Result<KeyId>) -> Result<(), ApiError> {
    Ok(ctx.public().key_id.ensure_eq(&peeked?)?)
}

/// The router of every endpoint; bodies above `max_body` bytes get 413.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.max_body;
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/config", get(config))
        .route("/v1/ids", get(ids))
        .route("/v1/search", post(search))
        .route("/v1/search/fine", post(fine))
        .route("/v1/verify", post(verify))
        .route("/v1/templates", post(enrol).delete(remove))
        .layer(middleware::from_fn_with_state(max_body, refuse_announced_oversize))
        .layer(middleware::map_response_with_state(app.clone(), count_errors))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// Answers 413 from a `Content-Length` above the limit before any of the body is read (a
/// body without a length is cut at the limit by the extractor instead).
pub async fn refuse_announced_oversize(
    State(max_body): State<usize>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let announced =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(n) if n > max_body as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a body of {n} bytes exceeds this server's limit of {max_body} (hers serve --max-body-mib)"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

async fn count_errors(State(app): State<Arc<App>>, r: Response) -> Response {
    if r.status().is_client_error() || r.status().is_server_error() {
        Metrics::add(&app.core.metrics.errors, 1);
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            Metrics::add(&app.core.metrics.overloaded, 1);
        }
    }
    r
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let v = app.core.held.current();
    let text = app.core.metrics.render(v.templates, v.number);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn config(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<ServerInfo>, ApiError> {
    authorize_read(&app, &headers)?;
    let v = app.core.held.current();
    let table = v.clone();
    let id_table_bytes = blocking(move || Ok(table.id_table().len() as u64)).await?;
    let ctx = app.core.held.ctx();
    let fine = app.fine.as_ref().map(|f| FineInfo {
        public: f.gallery.manifest().public.clone(),
        quantizer: f.gallery.quantizer(),
        templates: f.gallery.len(),
    });
    Ok(Json(ServerInfo {
        public: ctx.public().clone(),
        params_hash: params_hash(ctx.public()),
        quantizer: app.core.held.quantizer(),
        layout: encsearch::Layout::DimensionWise,
        max_body_bytes: app.max_body,
        max_probes: app.max_probes,
        max_candidates: app.max_candidates,
        templates_per_chunk: ctx.public().params.degree,
        version: v.number,
        id_table_bytes,
        templates: v.templates,
        fine,
    }))
}

fn octets(app: &App, bytes: impl Into<Bytes>) -> Response {
    let bytes = bytes.into();
    Metrics::add(&app.core.metrics.bytes_out, bytes.len());
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// `?version=V`.
#[derive(Debug, Deserialize)]
struct VersionParam {
    version: u64,
}

async fn ids(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Params(p): Params<VersionParam>,
) -> Result<Response, ApiError> {
    authorize_read(&app, &headers)?;
    let v = app.core.held.version(p.version).ok_or_else(|| {
        ApiError::new(
            StatusCode::GONE,
            format!(
                "gallery version {} is no longer held (the current one is {}): search again",
                p.version,
                app.core.held.current().number
            ),
        )
    })?;
    let table = blocking(move || Ok(v.id_table())).await?;
    Ok(octets(&app, table))
}

async fn search(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    authorize_read(&app, &headers)?;
    Metrics::add(&app.core.metrics.bytes_in, body.len());
    let admitted = admit(&app)?;
    let a = app.clone();
    let (query, version) = blocking(move || {
        let ctx = a.core.held.ctx();
        check_key(ctx, Query::peek_key_id(&body))?;
        let q = Query::from_bytes_within(&body, ctx.bfv(), ctx.rows(), a.max_probes)?;
        let v = a.core.held.current();
        ctx.check_query(&q, &v.hot)?;
        Ok((q, v))
    })
    .await?;
    let ctx = app.core.held.ctx();
    let header = StreamFrames::header(&StreamHeader {
        key_id: ctx.public().key_id.clone(),
        degree: ctx.public().params.degree,
        modulus: ctx.public().params.response_modulus(),
        form: ctx.answer_form(&query),
        scale: version.hot.scale,
        metric: version.hot.metric,
        version: version.number,
        chunks: version.hot.chunks.len(),
        probe_ids: query.probe_ids.clone(),
    });
    let (frames, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Bytes>>();
    Metrics::add(&app.core.metrics.bytes_out, header.len());
    let _ = frames.send(vec![Bytes::from(header)]);
    match app.queue.try_send(Job { query, version, frames, arrived, _admitted: admitted }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "the server's query queue is full (--max-inflight): retry after a second",
            ));
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"));
        }
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
        .flat_map(|frames| futures_util::stream::iter(frames.into_iter().map(Ok::<_, Infallible>)));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(stream)).into_response())
}

async fn fine(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    authorize_read(&app, &headers)?;
    Metrics::add(&app.core.metrics.bytes_in, body.len());
    if app.fine.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this server has no second-stage gallery: start it with --fine-gallery",
        ));
    }
    let admitted = admit(&app)?;
    let a = app.clone();
    let out = blocking(move || {
        let _admitted = admitted;
        let f = a.fine.as_ref().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no fine gallery"))?;
        check_key(&f.ctx, FineQuery::peek_key_id(&body))?;
        let q = FineQuery::from_bytes_within(&body, f.ctx.bfv(), a.max_probes, a.max_candidates)?;
        Ok(f.ctx.score_candidates(&q, &f.gallery)?.to_bytes())
    })
    .await?;
    app.core.metrics.query(Endpoint::Fine, arrived.elapsed());
    Ok(octets(&app, out))
}

/// `?id=ID`: the claimed gallery id.
#[derive(Debug, Deserialize)]
struct Claim {
    id: String,
}

async fn verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Params(c): Params<Claim>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    authorize_read(&app, &headers)?;
    Metrics::add(&app.core.metrics.bytes_in, body.len());
    let admitted = admit(&app)?;
    let a = app.clone();
    let out = blocking(move || {
        let _admitted = admitted;
        let ctx = a.core.held.ctx();
        check_key(ctx, Query::peek_key_id(&body))?;
        let q = Query::from_bytes_within(&body, ctx.bfv(), ctx.rows(), 1)?;
        let v = a.core.held.current();
        let slot = v.slot_of(&c.id).ok_or(encsearch::Error::UnknownId { id: c.id.clone() })?;
        let chunk = slot / ctx.public().params.degree;
        let one = v.hot.slice(chunk..chunk + 1)?;
        Ok(ctx.score(&q, &one)?.to_bytes())
    })
    .await?;
    app.core.metrics.query(Endpoint::Verify, arrived.elapsed());
    Ok(octets(&app, out))
}

/// Checks the bearer token of a write.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    check_bearer(app.token.as_deref(), headers)
}

/// Checks the bearer token of a read when the server has a read token (the write token also
/// serves: a writer may read).
fn authorize_read(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(read) = app.read_token.as_deref() else { return Ok(()) };
    match (check_bearer(Some(read), headers), app.token.as_deref()) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(write)) if check_bearer(Some(write), headers).is_ok() => Ok(()),
        (Err(e), _) if e.status == StatusCode::UNAUTHORIZED && e.message.starts_with("wrong") => Err(e),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server's searches and gallery description need `Authorization: Bearer <token>` \
             (hers client --read-token-file FILE)",
        )),
    }
}

/// A place among the searches, fine searches and verifications admitted at once, or 429.
fn admit(app: &App) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    app.admit.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "the server is busy with as many queries as it admits at once (--max-inflight): retry after a second",
        )
    })
}

/// Checks a write's `Authorization: Bearer` header against `token` (`None`: writes disabled,
/// 403); shared with the cluster's front door.
pub fn check_bearer(token: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this server was started without --token-file: enrolment and removal are disabled",
        ));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        // Compared in time independent of where the strings differ.
        Some(g)
            if g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong bearer token")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "enrolment and removal need `Authorization: Bearer <token>` (hers client --token-file FILE)",
        )),
    }
}

/// The acknowledgement of a write: durable, and visible to every query accepted from now on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteAck {
    /// The gallery version that holds the change.
    pub version: u64,
    /// Live templates in that version.
    pub templates: usize,
    /// Templates enrolled or removed by this request.
    pub changed: usize,
}

async fn enrol(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Json<WriteAck>, ApiError> {
    authorize(&app, &headers)?;
    Metrics::add(&app.core.metrics.bytes_in, body.len());
    let a = app.clone();
    let ack = blocking(move || {
        let held = &a.core.held;
        check_key(held.ctx(), Enrolment::peek_key_id(&body))?;
        let e = Enrolment::from_bytes(&body, held.ctx().bfv(), held.ctx().rows())?;
        let v = held.enrol(&e).map_err(service_error)?;
        Metrics::add(&a.core.metrics.enrolled, e.ids.len());
        Ok(WriteAck { version: v.number, templates: v.templates, changed: e.ids.len() })
    })
    .await?;
    Ok(Json(ack))
}

/// The body of `DELETE /v1/templates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Removal {
    /// Ids to remove (each must be live).
    pub ids: Vec<String>,
    /// The key holder's seal of the state without them (required by a sealed gallery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<encsearch::Seal>,
}

async fn remove(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(r): Json<Removal>,
) -> Result<Json<WriteAck>, ApiError> {
    authorize(&app, &headers)?;
    let a = app.clone();
    let ack = blocking(move || {
        let (n, v) = a.core.held.remove(&r.ids, r.seal).map_err(service_error)?;
        Metrics::add(&a.core.metrics.removed, n);
        Ok(WriteAck { version: v.number, templates: v.templates, changed: n })
    })
    .await?;
    Ok(Json(ack))
}

fn service_error(e: crate::Error) -> ApiError {
    match e {
        crate::Error::Search(e) => e.into(),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
