//! One process's shard: an ordinary served gallery ([`service::Held`]: versions swapped
//! atomically after each durable write) answering the commands timely brings it.
//!
//! The timely worker only moves messages: it hands each command to this shard's threads —
//! one that scores queries (on the rayon pool; a query whose deadline passed while it waited
//! is skipped), one that answers id-table and verification requests, one that applies writes
//! in the order the front door sequenced them — and those send their answers back through the
//! worker's input, waking it. Scoring never blocks the worker, so progress and the other
//! shards' traffic keep flowing while a query runs.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use encsearch::wire::{Enrolment, StreamFrames};
use service::{ApiError, Held};

use crate::error::{Error, Result};
use crate::messages::{Answer, Down, Failure, ShardState, Up};
use crate::wake::Waker;

/// A shard's handle for the worker: where commands go.
#[derive(Debug, Clone)]
pub struct Inbox {
    searches: Sender<Down>,
    lookups: Sender<Down>,
    writes: Sender<Down>,
}

impl Inbox {
    /// Hands a command to the shard's reading or writing thread.
    pub fn push(&self, d: Down) {
        let lane = match d {
            Down::Search { .. } => &self.searches,
            Down::Ids { .. } | Down::Verify { .. } => &self.lookups,
            Down::Enrol { .. } | Down::Remove { .. } => &self.writes,
        };
        // The threads live as long as the process.
        let _ = lane.send(d);
    }
}

/// One shard and the way back to the front door.
#[derive(Debug)]
pub struct Shard {
    index: usize,
    held: Arc<Held>,
    up: Sender<Up>,
    wake: Waker,
}

impl Shard {
    /// Starts the shard's threads; returns the inbox the worker feeds.
    pub fn start(index: usize, held: Arc<Held>, up: Sender<Up>, wake: Waker) -> Result<Inbox> {
        let shard = Arc::new(Self { index, held, up, wake });
        let (searches, search_rx) = channel();
        let (lookups, lookup_rx) = channel();
        let (writes, write_rx) = channel();
        let lanes =
            [("hers-shard-search", search_rx), ("hers-shard-lookup", lookup_rx), ("hers-shard-write", write_rx)];
        for (name, rx) in lanes {
            let s = shard.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || s.serve(rx))
                .map_err(|e| Error::Config(format!("cannot start a shard thread: {e}")))?;
        }
        shard.send(shard.hello());
        Ok(Inbox { searches, lookups, writes })
    }

    fn send(&self, u: Up) {
        let _ = self.up.send(u);
        self.wake.wake();
    }

    fn state(&self) -> ShardState {
        let v = self.held.current();
        ShardState { version: v.number, chunks: v.hot.chunks().len(), templates: v.templates }
    }

    fn hello(&self) -> Up {
        let live = self.held.current().hot.slot_ids().iter().flatten().cloned().collect();
        Up::Hello { shard: self.index, state: self.state(), live, removed: self.held.removed_ids() }
    }

    fn serve(&self, rx: Receiver<Down>) {
        while let Ok(d) = rx.recv() {
            match d {
                Down::Search { qid, expires_ms, .. } if now_ms() > expires_ms => {
                    let message = "the query expired before this shard reached it: the cluster is overloaded".into();
                    self.send(Up::Reply { qid, answer: Err(Failure { status: 503, message }) });
                }
                Down::Search { qid, query, versions, offsets, .. } => {
                    let done = match self.search(qid, &query, &versions, &offsets) {
                        Ok(()) => Up::Done { qid },
                        Err(f) => Up::Reply { qid, answer: Err(f) },
                    };
                    self.send(done);
                }
                Down::Enrol { qid, body, .. } => {
                    let answer = self.enrol(&body);
                    self.send(Up::Reply { qid, answer });
                }
                Down::Remove { qid, ids, .. } => {
                    let answer = self
                        .held
                        .remove(&ids, None)
                        .map(|(changed, _)| Answer::Written { state: self.state(), changed })
                        .map_err(service_failure);
                    self.send(Up::Reply { qid, answer });
                }
                Down::Ids { qid, version, .. } => {
                    let answer = self
                        .held
                        .version(version)
                        .map(|v| Answer::Bytes(v.id_table().to_vec()))
                        .ok_or_else(|| gone(self.index, version));
                    self.send(Up::Reply { qid, answer });
                }
                Down::Verify { qid, id, query, .. } => {
                    let answer = self.verify(&id, &query).map(Answer::Bytes);
                    self.send(Up::Reply { qid, answer });
                }
            }
        }
    }

    /// Scores a query on this shard's `versions[i]`, streaming each chunk up as it completes.
    fn search(&self, qid: u64, query: &[u8], versions: &[u64], offsets: &[usize]) -> Result<(), Failure> {
        let ctx = self.held.ctx();
        let (Some(&number), Some(&offset)) = (versions.get(self.index), offsets.get(self.index)) else {
            return Err(Failure {
                status: 500,
                message: format!("the query names no version for shard {}", self.index),
            });
        };
        let version = self.held.version(number).ok_or_else(|| gone(self.index, number))?;
        // The front door checked the probe count.
        let q = service::decode_query(ctx, query, usize::MAX, &version.hot).map_err(refused)?;
        let modulus = ctx.public().params.response_modulus();
        ctx.score_each_chunk(&[&q], &version.hot, |chunk, scores| {
            self.send(Up::Frame { qid, frame: StreamFrames::chunk(offset + chunk, &scores, modulus) });
            Ok(())
        })
        .map_err(failure)?;
        Ok(())
    }

    fn enrol(&self, body: &[u8]) -> Result<Answer, Failure> {
        let ctx = self.held.ctx();
        let mut e = Enrolment::from_bytes(body, ctx.bfv(), ctx.rows()).map_err(failure)?;
        // A seal covers a whole gallery, not a shard (`split.rs`): shards stay unsealed.
        e.seal = None;
        self.held.enrol(&e).map_err(service_failure)?;
        Ok(Answer::Written { state: self.state(), changed: e.ids.len() })
    }

    fn verify(&self, id: &str, query: &[u8]) -> Result<Vec<u8>, Failure> {
        service::verify_claim(self.held.ctx(), &self.held.current(), id, query).map_err(refused)
    }
}

/// An API refusal as a shard's failure.
fn refused(a: ApiError) -> Failure {
    Failure { status: a.status().as_u16(), message: a.message().to_string() }
}

/// A library error as the answer `hers serve` would give.
pub fn failure(e: encsearch::Error) -> Failure {
    refused(ApiError::from(e))
}

fn service_failure(e: service::Error) -> Failure {
    match e {
        service::Error::Search(e) => failure(e),
        other => Failure { status: 500, message: other.to_string() },
    }
}

/// Milliseconds since the Unix epoch (the clock searches expire by).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn gone(shard: usize, version: u64) -> Failure {
    Failure { status: 410, message: format!("shard {shard} no longer holds version {version}: search again") }
}
