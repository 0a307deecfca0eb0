//! `hers serve`'s side of the HTTP API (`api.rs` has the route table, types and checks it
//! shares with a cluster's front door): queries go to the scoring thread's bounded queue, writes
//! to the one writer of the gallery.
//!
//! Reads (`/v1/config`, `/v1/ids`, the searches and verification) need the read token when
//! the server has one (the write token also serves); writes always need the write token.
//! Search, fine search and verification are admitted together up to a bound (more get 429)
//! and have their probe and candidate counts checked before any ciphertext is decoded.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query as Params, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use encsearch::wire::{Enrolment, FineQuery};
use futures_util::StreamExt as _;

use crate::access::Access;
use crate::api::{
    ApiError, Claim, Endpoints, Removal, VersionParam, WriteAck, blocking, check_key, decode_query, stream_header,
    verify_claim,
};
use crate::batch::{Incoming, Job};
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
    /// Tokens and request limits.
    pub access: Access,
    /// Searches, fine searches and verifications admitted at once (decoding, waiting or being
    /// scored); a request beyond them gets 429 before its body is decoded.
    pub admit: Arc<tokio::sync::Semaphore>,
    /// Searches admitted and not yet queued (the scoring thread's batch window waits for them).
    pub incoming: Arc<Incoming>,
    /// Most candidates of one probe in a fine query.
    pub max_candidates: usize,
}

/// The API's route table with `hers serve`'s handlers; bodies above `max_body_bytes` get 413.
pub fn router(app: Arc<App>) -> Router {
    let core = app.core.clone();
    let count = move |status: StatusCode| {
        Metrics::add(&core.metrics.errors, 1);
        if status == StatusCode::TOO_MANY_REQUESTS {
            Metrics::add(&core.metrics.overloaded, 1);
        }
    };
    let endpoints = Endpoints {
        healthz: get(|| async { "ok\n" }),
        metrics: get(metrics),
        config: get(config),
        ids: get(ids),
        search: post(search),
        fine: post(fine),
        verify: post(verify),
        templates: post(enrol).delete(remove),
    };
    crate::api::router(endpoints, app.access.max_body_bytes, Arc::new(count)).with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let v = app.core.held.current();
    let text = app.core.metrics.render(v.templates, v.number);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn config(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<ServerInfo>, ApiError> {
    app.access.authorize_read(&headers)?;
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
        max_body_bytes: app.access.max_body_bytes,
        max_probes: app.access.probes(),
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
    crate::api::octets(bytes)
}

async fn ids(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Params(p): Params<VersionParam>,
) -> Result<Response, ApiError> {
    app.access.authorize_read(&headers)?;
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
    app.access.authorize_read(&headers)?;
    Metrics::add(&app.core.metrics.bytes_in, body.len());
    let admitted = admit(&app)?;
    let incoming = app.incoming.enter();
    let a = app.clone();
    let (query, version) = blocking(move || {
        let v = a.core.held.current();
        Ok((decode_query(a.core.held.ctx(), &body, a.access.probes(), &v.hot)?, v))
    })
    .await?;
    let header = stream_header(
        app.core.held.ctx(),
        &query,
        app.core.held.quantizer(),
        version.number,
        version.hot.chunks().len(),
    );
    let (frames, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Bytes>>();
    Metrics::add(&app.core.metrics.bytes_out, header.len());
    let _ = frames.send(vec![Bytes::from(header)]);
    let queued = app.queue.try_send(Job { query, version, frames, arrived, _admitted: admitted });
    drop(incoming);
    match queued {
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
    app.access.authorize_read(&headers)?;
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
        let q = FineQuery::from_bytes_within(&body, f.ctx.bfv(), a.access.probes(), a.max_candidates)?;
        Ok(f.ctx.score_candidates(&q, &f.gallery)?.to_bytes())
    })
    .await?;
    app.core.metrics.query(Endpoint::Fine, arrived.elapsed());
    Ok(octets(&app, out))
}

async fn verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Params(c): Params<Claim>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    app.access.authorize_read(&headers)?;
    Metrics::add(&app.core.metrics.bytes_in, body.len());
    let admitted = admit(&app)?;
    let a = app.clone();
    let out = blocking(move || {
        let _admitted = admitted;
        verify_claim(a.core.held.ctx(), &a.core.held.current(), &c.id, &body)
    })
    .await?;
    app.core.metrics.query(Endpoint::Verify, arrived.elapsed());
    Ok(octets(&app, out))
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

async fn enrol(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Json<WriteAck>, ApiError> {
    app.access.authorize_write(&headers)?;
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

async fn remove(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(r): Json<Removal>,
) -> Result<Json<WriteAck>, ApiError> {
    app.access.authorize_write(&headers)?;
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
