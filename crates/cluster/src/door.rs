//! The front door: process 0's HTTP server, speaking the `hers serve` API for the whole
//! cluster.
//!
//! A search is checked here (key, parameters, probe count), numbered, and handed to the timely
//! worker, which broadcasts it to every shard; each shard streams its chunks back numbered from
//! its offset in the cluster's slot order, and the answer goes to the client frame by frame as
//! they arrive, closed by an end frame once every shard is done — or by an error frame if any
//! shard fails or the deadline passes (fail closed: never a partial answer taken for a whole).
//! Writes go through one sequenced lane: a duplicate id is refused whatever shard holds the
//! first, new templates go to the shard with the fewest, and each acknowledgement names a new
//! cluster version (the shards' versions together).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query as Params, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use encsearch::{
    Query,
    keys::KeyId,
    wire::{Enrolment, IdTable, StreamFrames},
};
use service::{
    ApiError, Claim, Endpoints, Removal, ServerInfo, VersionParam, WriteAck, blocking, decode_query, octets,
    params_hash, stream_header,
};

use crate::error::Result;
use crate::messages::{Answer, Down};

use crate::state::{ClusterVersion, Door, Pending, lock, publish};

/// Starts the door's HTTP(S) server on its own thread; returns the URL it listens on.
pub fn start(door: Arc<Door>, listen: SocketAddr, tls: Option<&service::TlsFiles>) -> Result<String> {
    crate::http::spawn("hers-door", listen, tls, router(door), std::future::pending(), || {})
}

/// The API's route table (`service::api_router`, as `hers serve`'s) with the door's handlers.
fn router(door: Arc<Door>) -> Router {
    let d = door.clone();
    let count = move |_: StatusCode| {
        d.errors.fetch_add(1, Ordering::Relaxed);
    };
    let endpoints = Endpoints {
        healthz: get(healthz),
        metrics: get(metrics),
        config: get(config),
        ids: get(ids),
        search: post(search),
        fine: post(fine),
        verify: post(verify),
        templates: post(enrol).delete(remove),
    };
    service::api_router(endpoints, door.cfg.access.max_body_bytes, Arc::new(count)).with_state(door)
}

async fn healthz(State(door): State<Arc<Door>>) -> Result<&'static str, ApiError> {
    door.current().map(|_| "ok\n")
}

async fn metrics(State(door): State<Arc<Door>>) -> Response {
    let k = lock(&door.known);
    let (templates, version) = k.current.as_ref().map(|v| (v.templates(), v.number)).unwrap_or_default();
    let text = format!(
        "# TYPE hers_cluster_shards gauge\nhers_cluster_shards {}\n# TYPE hers_templates gauge\nhers_templates {templates}\n\
         # TYPE hers_gallery_version gauge\nhers_gallery_version {version}\n# TYPE hers_queries_total counter\n\
         hers_queries_total {}\n# TYPE hers_errors_total counter\nhers_errors_total {}\n",
        door.shards,
        door.queries.load(Ordering::Relaxed),
        door.errors.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn config(State(door): State<Arc<Door>>, headers: HeaderMap) -> Result<Json<ServerInfo>, ApiError> {
    door.cfg.access.authorize_read(&headers)?;
    let v = door.current()?;
    let ctx = door.held.ctx();
    Ok(Json(ServerInfo {
        public: ctx.public().clone(),
        params_hash: params_hash(ctx.public()),
        quantizer: door.held.quantizer(),
        layout: encsearch::Layout::DimensionWise,
        max_body_bytes: door.cfg.access.max_body_bytes,
        max_probes: door.cfg.access.probes(),
        // No second stage behind a cluster's door.
        max_candidates: 0,
        templates_per_chunk: ctx.public().params.degree,
        version: v.number,
        id_table_bytes: 0,
        templates: v.templates(),
        fine: None,
    }))
}

fn check_key(door: &Door, peeked: encsearch::Result<KeyId>) -> Result<(), ApiError> {
    service::check_key(door.held.ctx(), peeked)
}

/// The id table of a cluster version: the shards' tables end to end (each shard's slots are
/// whole chunks, so global slot = offset chunk × N + the shard's slot).
async fn ids(
    State(door): State<Arc<Door>>,
    headers: HeaderMap,
    Params(p): Params<VersionParam>,
) -> Result<Response, ApiError> {
    door.cfg.access.authorize_read(&headers)?;
    if let Some((_, t)) = lock(&door.tables).iter().find(|(n, _)| *n == p.version) {
        return Ok(octets(t.clone()));
    }
    let v = {
        let k = lock(&door.known);
        k.recent.iter().find(|v| v.number == p.version).cloned()
    };
    let v = v.ok_or_else(|| {
        ApiError::new(StatusCode::GONE, format!("cluster version {} is no longer held: search again", p.version))
    })?;
    let (mut slots, mut chunks) = (Vec::new(), Vec::new());
    for (shard, s) in v.shards.iter().enumerate() {
        let version = s.version;
        let Answer::Bytes(bytes) = door.read(|qid| Down::Ids { qid, shard, version }).await? else {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "a shard answered an id request with a write",
            ));
        };
        let t = blocking(move || Ok(IdTable::from_bytes(&bytes)?)).await?;
        slots.extend(t.slot_ids.iter().cloned());
        chunks.extend(t.chunks.iter().copied());
    }
    let number = v.number;
    // The shards' chunk digests in slot order; no seal (see `split.rs`).
    let table = IdTable { version: number, slot_ids: Arc::new(slots), chunks: Arc::new(chunks), seal: None };
    let table = blocking(move || Ok(Bytes::from(table.to_bytes()))).await?;
    let mut tables = lock(&door.tables);
    tables.push_back((number, table.clone()));
    while tables.len() > 4 {
        tables.pop_front();
    }
    Ok(octets(table))
}

async fn search(State(door): State<Arc<Door>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    door.cfg.access.authorize_read(&headers)?;
    let v = door.current()?;
    let slot = door.inflight.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{} searches are in flight (--max-inflight): retry after a second", door.cfg.access.max_inflight),
        )
    })?;
    door.queries.fetch_add(1, Ordering::Relaxed);
    let d = door.clone();
    let checked = body.clone();
    let (number, chunks) = (v.number, v.chunks());
    let header = blocking(move || {
        let ctx = d.held.ctx();
        let q = decode_query(ctx, &checked, d.cfg.access.probes(), &d.held.current().hot)?;
        Ok(stream_header(ctx, &q, d.held.quantizer(), number, chunks))
    })
    .await?;
    let (frames, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let _ = frames.send(Bytes::from(header));
    let qid = door.qid();
    let search = Pending::Search { frames: frames.clone(), left: door.shards, chunks: v.chunks(), _slot: slot };
    lock(&door.pending).insert(qid, search);
    door.push(Down::Search {
        qid,
        query: body.to_vec(),
        versions: v.shards.iter().map(|s| s.version).collect(),
        offsets: v.offsets(),
        expires_ms: crate::shard::now_ms() + door.cfg.deadline.as_millis() as u64,
    });
    // Fail closed on a shard that never finishes: an error frame ends the answer.
    let d = door.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d.cfg.deadline).await;
        if let Some(Pending::Search { frames, .. }) = lock(&d.pending).remove(&qid) {
            d.errors.fetch_add(1, Ordering::Relaxed);
            let message = format!("the cluster did not answer within {} s", d.cfg.deadline.as_secs());
            let _ = frames.send(Bytes::from(StreamFrames::error(&message)));
        }
    });
    drop(frames);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(stream)).into_response())
}

async fn fine() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "a cluster serves no second-stage gallery: run the two-stage search's second step against `hers serve --fine-gallery`",
    )
}

async fn verify(
    State(door): State<Arc<Door>>,
    headers: HeaderMap,
    Params(c): Params<Claim>,
    body: Bytes,
) -> Result<Response, ApiError> {
    door.cfg.access.authorize_read(&headers)?;
    door.current()?;
    check_key(&door, Query::peek_key_id(&body))?;
    let shard = match lock(&door.known).ids.get(&c.id) {
        Some(&(shard, true)) => shard,
        _ => return Err(encsearch::Error::UnknownId { id: c.id.clone() }.into()),
    };
    let query = body.to_vec();
    match door.read(|qid| Down::Verify { qid, shard, id: c.id, query }).await? {
        Answer::Bytes(b) => Ok(octets(b)),
        Answer::Written { .. } => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer")),
    }
}

/// Applies a shard's acknowledged write to the door's view; returns the new cluster version.
fn written(door: &Door, shard: usize, answer: Answer) -> Result<(Arc<ClusterVersion>, usize), ApiError> {
    let Answer::Written { state, changed } = answer else {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "a shard answered a write with bytes"));
    };
    let mut k = lock(&door.known);
    let mut shards = k.current.as_ref().map(|v| v.shards.clone()).unwrap_or_default();
    shards[shard] = state;
    Ok((publish(&mut k, shards), changed))
}

async fn enrol(State(door): State<Arc<Door>>, headers: HeaderMap, body: Bytes) -> Result<Json<WriteAck>, ApiError> {
    door.cfg.access.authorize_write(&headers)?;
    door.current()?;
    check_key(&door, Enrolment::peek_key_id(&body))?;
    let d = door.clone();
    let checked = body.clone();
    let ids = blocking(move || {
        let ctx = d.held.ctx();
        Ok(Enrolment::from_bytes(&checked, ctx.bfv(), ctx.rows())?.ids)
    })
    .await?;
    // On a task of its own: a client that goes away must not abandon a write the shard may
    // still commit (the door's view of ids and versions would miss it).
    in_lane(tokio::spawn(enrol_in_lane(door, ids, body))).await
}

async fn in_lane(task: tokio::task::JoinHandle<Result<WriteAck, ApiError>>) -> Result<Json<WriteAck>, ApiError> {
    match task.await {
        Ok(ack) => ack.map(Json),
        Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("write failed: {e}"))),
    }
}

async fn enrol_in_lane(door: Arc<Door>, ids: Vec<String>, body: Bytes) -> Result<WriteAck, ApiError> {
    let _lane = door.lane.lock().await;
    let shard = {
        let k = lock(&door.known);
        let mut seen = std::collections::HashSet::new();
        if let Some(id) = ids.iter().find(|id| k.ids.contains_key(*id) || !seen.insert(*id)) {
            return Err(encsearch::Error::DuplicateId { id: id.clone() }.into());
        }
        let v = k.current.as_ref().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "starting"))?;
        (0..v.shards.len()).min_by_key(|&i| v.shards[i].templates).unwrap_or(0)
    };
    let body = body.to_vec();
    let answer = door.ask(|qid| Down::Enrol { qid, shard, body }, None).await?;
    let (v, changed) = written(&door, shard, answer)?;
    lock(&door.known).ids.extend(ids.into_iter().map(|id| (id, (shard, true))));
    Ok(WriteAck { version: v.number, templates: v.templates(), changed })
}

async fn remove(
    State(door): State<Arc<Door>>,
    headers: HeaderMap,
    Json(r): Json<Removal>,
) -> Result<Json<WriteAck>, ApiError> {
    door.cfg.access.authorize_write(&headers)?;
    door.current()?;
    in_lane(tokio::spawn(remove_in_lane(door, r.ids))).await
}

/// Removes ids shard by shard. Every id is checked first (an unknown one refuses the whole
/// request, as `hers serve` does); a shard that then fails leaves the shards before it done,
/// which the error says.
async fn remove_in_lane(door: Arc<Door>, ids: Vec<String>) -> Result<WriteAck, ApiError> {
    let _lane = door.lane.lock().await;
    let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); door.shards];
    {
        let k = lock(&door.known);
        for id in &ids {
            match k.ids.get(id) {
                Some(&(shard, true)) => by_shard[shard].push(id.clone()),
                _ => return Err(encsearch::Error::UnknownId { id: id.clone() }.into()),
            }
        }
    }
    let mut last = None;
    let mut changed = 0;
    for (shard, ids) in by_shard.into_iter().enumerate().filter(|(_, ids)| !ids.is_empty()) {
        let sent = ids.clone();
        let answer = match door.ask(|qid| Down::Remove { qid, shard, ids: sent }, None).await {
            Ok(a) => a,
            Err(e) if changed > 0 => {
                return Err(ApiError::new(
                    e.status(),
                    format!("{} (the {changed} ids held by earlier shards are removed)", e.message()),
                ));
            }
            Err(e) => return Err(e),
        };
        let (v, n) = written(&door, shard, answer)?;
        let mut k = lock(&door.known);
        for id in ids {
            k.ids.insert(id, (shard, false));
        }
        changed += n;
        last = Some(v);
    }
    let v = match last {
        Some(v) => v,
        None => door.current()?,
    };
    Ok(WriteAck { version: v.number, templates: v.templates(), changed })
}
