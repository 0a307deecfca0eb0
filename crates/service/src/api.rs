//! The HTTP API of a hers server, shared by `hers serve` (`routes.rs`) and a cluster's front
//! door: the route table, the request and answer types a client sends and reads, the error
//! answers, and the checks every request passes before any work — key, probe count, gallery.
//! The servers implement only what differs: where a query is scored and where a write goes.
//!
//! | endpoint | body → answer |
//! |---|---|
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /v1/config` | [`crate::ServerInfo`] (JSON) |
//! | `GET /v1/ids?version=V` | [`encsearch::wire::IdTable`] of version V (410 once it is gone) |
//! | `POST /v1/search` | [`encsearch::Query`] → [`encsearch::wire::ScoreStream`] frames, streamed |
//! | `POST /v1/search/fine` | [`encsearch::wire::FineQuery`] → [`encsearch::wire::FineResponse`] |
//! | `POST /v1/verify?id=ID` | one-probe [`encsearch::Query`] → [`encsearch::Response`] of ID's chunk |
//! | `POST /v1/templates` | [`encsearch::wire::Enrolment`] → [`WriteAck`] (token) |
//! | `DELETE /v1/templates` | [`Removal`] → [`WriteAck`] (token) |

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Router, middleware};
use encsearch::{
    Quantizer, Query, ServerContext,
    keys::KeyId,
    wire::{StreamFrames, StreamHeader},
};
use serde::{Deserialize, Serialize};

use crate::versions::Version;

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
pub fn check_key(ctx: &ServerContext, peeked: encsearch::Result<KeyId>) -> Result<(), ApiError> {
    Ok(ctx.public().key_id.ensure_eq(&peeked?)?)
}

/// Decodes a search query for a gallery whose hot form is `hot`: the key checked first, the
/// probe count (1 to `max_probes`) as soon as it is read, before any ciphertext is decoded,
/// then the query against the gallery (scale, metric, dimension).
pub fn decode_query(
    ctx: &ServerContext,
    body: &[u8],
    max_probes: usize,
    hot: &encsearch::hot::HotGallery,
) -> Result<Query, ApiError> {
    check_key(ctx, Query::peek_key_id(body))?;
    let q = Query::from_bytes_within(body, ctx.bfv(), ctx.rows(), max_probes)?;
    ctx.check_query(&q, hot)?;
    Ok(q)
}

/// The first frame of a streamed answer to `query`: scores of gallery `version` (of `chunks`
/// chunks, quantised by `quantizer`).
pub fn stream_header(ctx: &ServerContext, query: &Query, quantizer: Quantizer, version: u64, chunks: usize) -> Vec<u8> {
    StreamFrames::header(&StreamHeader {
        key_id: ctx.public().key_id.clone(),
        degree: ctx.public().params.degree,
        modulus: ctx.public().params.response_modulus(),
        form: ctx.answer_form(query),
        scale: quantizer.scale,
        metric: quantizer.metric,
        version,
        chunks,
        probe_ids: query.probe_ids.clone(),
    })
}

/// 1:1 verification: the one-probe query in `body` scored against the chunk of `version` that
/// holds `claim`; the encoded [`encsearch::Response`].
pub fn verify_claim(ctx: &ServerContext, version: &Version, claim: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    check_key(ctx, Query::peek_key_id(body))?;
    let q = Query::from_bytes_within(body, ctx.bfv(), ctx.rows(), 1)?;
    let slot = version.slot_of(claim).ok_or(encsearch::Error::UnknownId { id: claim.to_string() })?;
    let chunk = slot / ctx.public().params.degree;
    let one = version.hot.slice(chunk..chunk + 1)?;
    Ok(ctx.score(&q, &one)?.to_bytes())
}

/// An answer of encoded bytes.
pub fn octets(bytes: impl Into<Bytes>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes.into()).into_response()
}

/// The handlers of a server, one per route of the table.
#[derive(Debug)]
pub struct Endpoints<S> {
    /// `GET /healthz`.
    pub healthz: MethodRouter<S>,
    /// `GET /metrics`.
    pub metrics: MethodRouter<S>,
    /// `GET /v1/config`.
    pub config: MethodRouter<S>,
    /// `GET /v1/ids`.
    pub ids: MethodRouter<S>,
    /// `POST /v1/search`.
    pub search: MethodRouter<S>,
    /// `POST /v1/search/fine`.
    pub fine: MethodRouter<S>,
    /// `POST /v1/verify`.
    pub verify: MethodRouter<S>,
    /// `POST` and `DELETE /v1/templates`.
    pub templates: MethodRouter<S>,
}

/// The route table of every hers server: `endpoints` behind the body limit `max_body` (an
/// announced larger body is refused from its length alone, 413), with `on_error` told the
/// status of every error answer (the servers count them).
pub fn router<S: Clone + Send + Sync + 'static>(
    endpoints: Endpoints<S>,
    max_body: usize,
    on_error: Arc<dyn Fn(StatusCode) + Send + Sync>,
) -> Router<S> {
    Router::new()
        .route("/healthz", endpoints.healthz)
        .route("/metrics", endpoints.metrics)
        .route("/v1/config", endpoints.config)
        .route("/v1/ids", endpoints.ids)
        .route("/v1/search", endpoints.search)
        .route("/v1/search/fine", endpoints.fine)
        .route("/v1/verify", endpoints.verify)
        .route("/v1/templates", endpoints.templates)
        .layer(middleware::from_fn_with_state(max_body, refuse_announced_oversize))
        .layer(middleware::map_response(move |r: Response| {
            let on_error = on_error.clone();
            async move {
                if r.status().is_client_error() || r.status().is_server_error() {
                    on_error(r.status());
                }
                r
            }
        }))
        .layer(DefaultBodyLimit::max(max_body))
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

/// Checks an `Authorization: Bearer` header against `token` (`None`: writes disabled, 403);
/// what [`crate::Access`]'s checks are made of.
pub(crate) fn check_bearer(token: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
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

/// The body of `DELETE /v1/templates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Removal {
    /// Ids to remove (each must be live).
    pub ids: Vec<String>,
    /// The key holder's seal of the state without them (required by a sealed gallery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<encsearch::seal::Seal>,
}

/// `?version=V`.
#[derive(Debug, Deserialize)]
pub struct VersionParam {
    /// The version.
    pub version: u64,
}

/// `?id=ID`: the claimed gallery id.
#[derive(Debug, Deserialize)]
pub struct Claim {
    /// The claimed id.
    pub id: String,
}
