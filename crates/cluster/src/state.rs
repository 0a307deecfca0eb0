//! The cluster's state as the front door sees it: the versions of the whole cluster (every
//! shard's version, in slot order), the requests waiting for the timely worker's answers, and
//! the one sequenced lane writes go through. `door.rs` is its HTTP side.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use encsearch::wire::StreamFrames;
use service::{ApiError, Held};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Result;
use crate::messages::{Answer, Down, Failure, ShardState, Up};
use crate::wake::Waker;

/// Cluster versions kept for clients that still have to fetch their id table.
const KEEP_VERSIONS: usize = 16;

/// One state of the whole cluster: every shard's version, in slot order.
#[derive(Debug)]
pub struct ClusterVersion {
    /// The cluster's version number (a fingerprint of the shards' versions).
    pub number: u64,
    /// Each shard's state.
    pub shards: Vec<ShardState>,
}

impl ClusterVersion {
    pub(crate) fn new(shards: Vec<ShardState>) -> Self {
        // FNV-1a over the shard versions: the same shards give the same number in every
        // process and across restarts, so a client's cached id table stays valid.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in shards.iter().flat_map(|s| s.version.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Self { number: h, shards }
    }

    pub(crate) fn chunks(&self) -> usize {
        self.shards.iter().map(|s| s.chunks).sum()
    }

    pub(crate) fn templates(&self) -> usize {
        self.shards.iter().map(|s| s.templates).sum()
    }

    /// Each shard's first global chunk.
    pub(crate) fn offsets(&self) -> Vec<usize> {
        self.shards
            .iter()
            .scan(0, |next, s| {
                let at = *next;
                *next += s.chunks;
                Some(at)
            })
            .collect()
    }
}

/// A request waiting for the shards.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A search: its frames' channel, the shards still to finish, the chunk count, and its
    /// place among the searches in flight (given back when it ends).
    Search { frames: UnboundedSender<Bytes>, left: usize, chunks: usize, _slot: OwnedSemaphorePermit },
    /// A targeted command's answer.
    Reply(tokio::sync::oneshot::Sender<Result<Answer, Failure>>),
}

/// What the door knows of the shards.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Each shard's state once it has said hello.
    pub(crate) hello: Vec<Option<ShardState>>,
    /// The cluster version queries are accepted on (once every shard has said hello).
    pub(crate) current: Option<Arc<ClusterVersion>>,
    pub(crate) recent: VecDeque<Arc<ClusterVersion>>,
    /// Every id ever enrolled: its shard and whether it is live.
    pub(crate) ids: HashMap<String, (usize, bool)>,
}

/// How the door serves.
#[derive(Debug, Clone)]
pub struct DoorConfig {
    /// Tokens and request limits, as `hers serve` takes them.
    pub access: service::Access,
    /// How long a read may wait for the shards before it is answered with an error.
    pub deadline: Duration,
}

/// The front door's state, shared by the handlers and the worker that delivers answers.
#[derive(Debug)]
pub struct Door {
    pub(crate) held: Arc<Held>,
    pub(crate) shards: usize,
    pub(crate) down: Mutex<Sender<Down>>,
    pub(crate) wake: Waker,
    pub(crate) cfg: DoorConfig,
    pub(crate) next_qid: AtomicU64,
    pub(crate) pending: Mutex<HashMap<u64, Pending>>,
    pub(crate) known: Mutex<Known>,
    pub(crate) lane: tokio::sync::Mutex<()>,
    pub(crate) inflight: Arc<Semaphore>,
    pub(crate) tables: Mutex<VecDeque<(u64, Bytes)>>,
    pub(crate) queries: AtomicU64,
    pub(crate) errors: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Door {
    /// A door for `shards` shards; `held` is process 0's own shard (its public parameters and
    /// quantiser are the cluster's), `down` the worker's command input, `wake` the worker.
    pub fn new(held: Arc<Held>, shards: usize, down: Sender<Down>, wake: Waker, mut cfg: DoorConfig) -> Self {
        // At least one search in flight (0 would refuse every search).
        cfg.access.max_inflight = cfg.access.max_inflight.max(1);
        Self {
            held,
            shards,
            down: Mutex::new(down),
            wake,
            next_qid: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            known: Mutex::new(Known { hello: vec![None; shards], ..Known::default() }),
            lane: tokio::sync::Mutex::new(()),
            inflight: Arc::new(Semaphore::new(cfg.access.max_inflight)),
            cfg,
            tables: Mutex::new(VecDeque::new()),
            queries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Delivers a shard's message (called on the worker thread).
    pub fn deliver(&self, u: Up) {
        match u {
            Up::Hello { shard, state, live, removed } => {
                let mut k = lock(&self.known);
                if shard < self.shards {
                    k.hello[shard] = Some(state);
                    k.ids.extend(live.into_iter().map(|id| (id, (shard, true))));
                    k.ids.extend(removed.into_iter().map(|id| (id, (shard, false))));
                }
                if k.current.is_none() && k.hello.iter().all(Option::is_some) {
                    let shards = k.hello.iter().flatten().copied().collect();
                    publish(&mut k, shards);
                    tracing::info!("cluster ready: {} shards", self.shards);
                }
            }
            Up::Frame { qid, frame } => {
                if let Some(Pending::Search { frames, .. }) = lock(&self.pending).get(&qid) {
                    let _ = frames.send(Bytes::from(frame));
                }
            }
            Up::Done { qid } => {
                let mut pending = lock(&self.pending);
                if let Some(Pending::Search { frames, left, chunks, .. }) = pending.get_mut(&qid) {
                    *left -= 1;
                    if *left == 0 {
                        let _ = frames.send(Bytes::from(StreamFrames::end(*chunks)));
                        pending.remove(&qid);
                    }
                }
            }
            Up::Reply { qid, answer } => match lock(&self.pending).remove(&qid) {
                Some(Pending::Search { frames, .. }) => {
                    let message = answer.err().map(|f| f.message).unwrap_or_else(|| "unexpected answer".into());
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    let _ = frames.send(Bytes::from(StreamFrames::error(&message)));
                }
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(answer);
                }
                None => {}
            },
        }
    }

    pub(crate) fn current(&self) -> Result<Arc<ClusterVersion>, ApiError> {
        let k = lock(&self.known);
        k.current.clone().ok_or_else(|| {
            let up = k.hello.iter().flatten().count();
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the cluster is starting: {up} of {} shards have reported", self.shards),
            )
        })
    }

    pub(crate) fn push(&self, d: Down) {
        let _ = lock(&self.down).send(d);
        self.wake.wake();
    }

    pub(crate) fn qid(&self) -> u64 {
        self.next_qid.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a targeted command and waits for its answer: at most `deadline` (reads), or until
    /// it comes (writes: a write the shard may still commit must not be forgotten — if the
    /// shard dies instead, the whole cluster restarts).
    pub(crate) async fn ask(
        &self,
        make: impl FnOnce(u64) -> Down,
        deadline: Option<Duration>,
    ) -> Result<Answer, ApiError> {
        let qid = self.qid();
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.pending).insert(qid, Pending::Reply(tx));
        self.push(make(qid));
        let answer = match deadline {
            Some(d) => tokio::time::timeout(d, rx).await.ok(),
            None => Some(rx.await),
        };
        match answer {
            Some(Ok(Ok(a))) => Ok(a),
            Some(Ok(Err(f))) => Err(ApiError::from(f)),
            Some(Err(_)) | None => {
                lock(&self.pending).remove(&qid);
                Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "a shard did not answer within {} s: the cluster may be restarting",
                        self.cfg.deadline.as_secs()
                    ),
                ))
            }
        }
    }

    /// [`Door::ask`] for a read, bounded by the door's deadline.
    pub(crate) async fn read(&self, make: impl FnOnce(u64) -> Down) -> Result<Answer, ApiError> {
        self.ask(make, Some(self.cfg.deadline)).await
    }
}

pub(crate) fn publish(k: &mut Known, shards: Vec<ShardState>) -> Arc<ClusterVersion> {
    let v = Arc::new(ClusterVersion::new(shards));
    k.current = Some(v.clone());
    k.recent.push_back(v.clone());
    while k.recent.len() > KEEP_VERSIONS {
        k.recent.pop_front();
    }
    v
}
