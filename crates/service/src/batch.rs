//! Batching: queries waiting together are scored in one chunk-major pass, each gallery chunk
//! read once for all of their probes.
//!
//! Handlers put accepted queries in a bounded queue (full: the handler answers 429). One
//! scoring thread takes the first waiting query, gathers all that queued while the previous
//! batch ran and, within the batch window, those still being decoded ([`Incoming`]: with none
//! on its way, as at one client, it does not wait), up to a probe budget, and scores them
//! together on the rayon pool. Each query's frames go to its own channel as chunks
//! complete, [`FLUSH_BYTES`] at a time (each message wakes the connection's task, which then
//! takes a core from the scoring: a message per 61 KB frame cost ≈ 2.7 context switches per
//! chunk); a failure sends an error frame instead of an end frame, so a client never takes a
//! partial answer for a whole one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use encsearch::{Query, wire::StreamFrames};
use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::{Endpoint, Metrics};
use crate::versions::Version;

/// One accepted query: what to score, on which version, and where its frames go.
#[derive(Debug)]
pub struct Job {
    /// The decoded query (checked against `version` when accepted).
    pub query: Query,
    /// The version the query was accepted on; it is scored on this one.
    pub version: Arc<Version>,
    /// The response body's frames, a batch per message.
    pub frames: UnboundedSender<Vec<Bytes>>,
    /// When the request arrived (for the latency histogram).
    pub arrived: Instant,
    /// The query's place among the requests admitted at once, given back when it is scored.
    pub _admitted: tokio::sync::OwnedSemaphorePermit,
}

/// Search requests admitted whose queries are not yet queued (their bodies have arrived, their
/// queries are being decoded): what the batch window waits for.
#[derive(Debug, Default)]
pub struct Incoming(AtomicUsize);

impl Incoming {
    /// Counts one request until the guard drops, which its handler does once the query is
    /// queued (or refused).
    pub fn enter(self: &Arc<Self>) -> IncomingGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        IncomingGuard(self.clone())
    }

    /// Whether any request is on its way to the queue.
    fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// One request counted by [`Incoming::enter`].
#[derive(Debug)]
pub struct IncomingGuard(Arc<Incoming>);

impl Drop for IncomingGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Frames of one query held back until they reach this many bytes (or its answer ends).
pub const FLUSH_BYTES: usize = 1 << 20;

/// A query's frames not yet handed to its connection.
#[derive(Default)]
struct Pending {
    frames: Vec<Bytes>,
    bytes: usize,
}

/// Runs the scoring loop until every queue sender is gone: passes of at most `max_probes`
/// probes (a query larger than that is scored alone), waiting up to `window` for the queries
/// `incoming` counts.
pub fn run(
    ctx: &encsearch::ServerContext,
    metrics: &Metrics,
    queue: Receiver<Job>,
    incoming: &Incoming,
    window: Duration,
    max_probes: usize,
) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        let mut probes = jobs[0].query.probes.len();
        let deadline = Instant::now() + window;
        while probes < max_probes {
            let next = match queue.try_recv() {
                Ok(j) => Some(j),
                Err(TryRecvError::Disconnected) => None,
                // Nothing on its way: score now rather than wait out the window.
                Err(TryRecvError::Empty) if !incoming.any() => None,
                Err(TryRecvError::Empty) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => queue.recv_timeout(left).ok(),
                    _ => None,
                },
            };
            match next {
                Some(j) => {
                    probes += j.query.probes.len();
                    jobs.push(j);
                }
                None => break,
            }
        }
        // Queries accepted on different versions (a write landed between them) are scored
        // in one pass per version.
        while !jobs.is_empty() {
            let v = jobs[0].version.number;
            let (same, rest): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.version.number == v);
            score(ctx, metrics, &same);
            jobs = rest;
        }
    }
}

/// Scores `jobs` (all on one version) in one chunk-major pass and streams each its frames.
fn score(ctx: &encsearch::ServerContext, metrics: &Metrics, jobs: &[Job]) {
    let version = &jobs[0].version;
    let modulus = ctx.public().params.response_modulus();
    let mut offsets = Vec::with_capacity(jobs.len());
    let mut probes = 0;
    for j in jobs {
        offsets.push(probes);
        probes += j.query.probes.len();
    }
    let queries: Vec<&Query> = jobs.iter().map(|j| &j.query).collect();
    let pending: Vec<Mutex<Pending>> = jobs.iter().map(|_| Mutex::default()).collect();
    // Queues a frame of job `i`; hands the queue over once it holds `FLUSH_BYTES` (or at `last`).
    let send = |i: usize, frame: Vec<u8>, last: bool| {
        Metrics::add(&metrics.bytes_out, frame.len());
        let ready = {
            let mut p = pending[i].lock().unwrap_or_else(|p| p.into_inner());
            p.bytes += frame.len();
            p.frames.push(Bytes::from(frame));
            (last || p.bytes >= FLUSH_BYTES).then(|| std::mem::take(&mut *p))
        };
        if let Some(p) = ready {
            // A client that went away drops its receiver: nothing to do.
            let _ = jobs[i].frames.send(p.frames);
        }
    };
    let outcome = ctx.score_each_chunk(&queries, &version.hot, |chunk, scores| {
        for (i, (job, &off)) in jobs.iter().zip(&offsets).enumerate() {
            let n = job.query.probes.len();
            send(i, StreamFrames::chunk(chunk, &scores[off..off + n], modulus), false);
        }
        Ok(())
    });
    Metrics::add(&metrics.batches, 1);
    Metrics::add(&metrics.probes, probes);
    let chunks = version.hot.chunks().len();
    for (i, job) in jobs.iter().enumerate() {
        match &outcome {
            Ok(_) => {
                send(i, StreamFrames::end(chunks), true);
                metrics.query(Endpoint::Search, job.arrived.elapsed());
            }
            Err(e) => {
                tracing::error!("scoring failed: {e}");
                Metrics::add(&metrics.errors, 1);
                send(i, StreamFrames::error(&e.to_string()), true);
            }
        }
    }
}
