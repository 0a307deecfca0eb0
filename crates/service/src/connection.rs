//! The key holder's client of a hers server — `hers serve` or a cluster's front door — that
//! `hers client` and applications use: it reads the server's limits once and keeps to them,
//! splits a search of any number of probes into queries within them (a few in flight at once),
//! decrypts each answer chunk by chunk while the rest is still arriving, retries what is
//! retryable, and enrols so that an interrupted or repeated enrolment ends with every row
//! enrolled exactly once.
//!
//! ```no_run
//! use service::{ConnectOptions, Connection};
//!
//! # fn main() -> service::Result<()> {
//! let keys = encsearch::ClientKeys::load(std::path::Path::new("keys"))?;
//! let server = Connection::connect("http://127.0.0.1:7878", keys, ConnectOptions::default())?;
//! let d = server.info().quantizer.dim;
//! let (ids, rows) = (vec!["probe-1".to_string()], vec![0.25f32; d]);
//! let found = server.search(&ids, &rows, 5)?;
//! for m in &found.matches {
//!     println!("{} → {} ({:.3})", m.probe_id, m.gallery_id, m.similarity);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Writes are safe to repeat. Each enrolment request is one durable segment, applied whole or
//! not at all; when a request's acknowledgement is lost (the connection dropped, the server
//! died after committing), the client cannot know whether it was applied, so before sending it
//! again it reads the id table of the server's current version: every id there means it was
//! applied, none means send it again. With `resume`, an enrolment skips the rows whose ids the
//! server already holds, so rerunning an interrupted one sends only the rest.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use encsearch::{
    Client, ClientKeys, CompactKey, Match, Ranking, Session,
    session::{Timings, Verified, probe_labels, restore_probe_ids},
    wire::{ChunkScores, Enrolment},
};

use crate::api::WriteAck;
use crate::error::{Error, Result};
use crate::info::ServerInfo;
use crate::remote::{Remote, Transfer};
use crate::retry::RetryPolicy;
use crate::sealing::Seen;

/// How to reach the server and how to behave towards it.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Bearer token for enrolment and removal (also sent with reads when `read_token` is none).
    pub token: Option<String>,
    /// Bearer token for searches, verification and the gallery's description, for a server
    /// started with `--read-token-file`.
    pub read_token: Option<String>,
    /// Where the seals seen are kept across runs (`hers client`: [`crate::SEEN_FILE`] in the
    /// key directory); `None`: for this connection's life only.
    pub seen_file: Option<std::path::PathBuf>,
    /// For `https://`: trust only the CA certificate(s) in this PEM (a private CA, or a
    /// self-signed server certificate) instead of the bundled web roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Bound on each request, its answer included.
    pub timeout: Duration,
    /// What is retried, how often, for how long.
    pub retry: RetryPolicy,
    /// Ask for compact answers (half the bytes down, a ≈ 74 KB key up with each query).
    pub compact_answers: bool,
    /// Queries in flight at once when a search needs several.
    pub in_flight: usize,
}

impl std::fmt::Debug for ConnectOptions {
    /// Never prints the bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("read_token", &self.read_token.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("compact_answers", &self.compact_answers)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl ConnectOptions {
    /// The HTTP transport to `url` these options describe (token, CA, timeout, retries): for
    /// the requests that need no keys (e.g. removal).
    pub fn remote(&self, url: &str) -> Result<Remote> {
        Ok(Remote::with_ca(url, self.token.clone(), self.timeout, self.ca_pem.as_deref())?
            .with_read_token(self.read_token.clone())
            .with_seen(self.seen_file.as_deref().map_or_else(Seen::in_memory, Seen::at))
            .with_retry(self.retry))
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            token: None,
            read_token: None,
            seen_file: None,
            ca_pem: None,
            timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            compact_answers: true,
            in_flight: 2,
        }
    }
}

/// A finished search of any number of probes.
#[derive(Debug, Clone)]
pub struct Found {
    /// `k` matches per probe (fewer where the gallery holds fewer), best first, probes in the
    /// order given.
    pub matches: Vec<Match>,
    /// Probes searched.
    pub probes: usize,
    /// Queries the probes were split into.
    pub queries: usize,
    /// Summed over the queries: encryption; round trips (decryption of the chunks that arrived
    /// meanwhile overlaps them); the ranking left after each answer's last byte.
    pub timings: Timings,
    /// Wall-clock seconds of the whole search.
    pub seconds: f64,
    /// Bytes sent and received (all queries).
    pub transfer: Transfer,
}

/// How to enrol.
#[derive(Debug, Clone, Copy)]
pub struct EnrolOptions {
    /// Skip rows whose ids the server already holds (finishing an interrupted enrolment);
    /// without it such a row is the server's "duplicate id" (409) for its request.
    pub resume: bool,
    /// Chunks (of N templates) per request; each request is one durable segment. Cut further
    /// where a request would exceed the server's body limit.
    pub chunks_per_request: usize,
}

impl Default for EnrolOptions {
    fn default() -> Self {
        Self { resume: false, chunks_per_request: 8 }
    }
}

/// What an enrolment did.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// Rows enrolled by this call.
    pub enrolled: usize,
    /// Rows skipped because the server held their ids already (`resume`).
    pub skipped: usize,
    /// Requests whose acknowledgement was lost and that the id table showed applied.
    pub recovered: usize,
    /// Live templates and version after the last request.
    pub templates: usize,
    /// The gallery version after the last request.
    pub version: u64,
}

/// A key holder's connection to one hers server.
#[derive(Debug)]
pub struct Connection {
    remote: Remote,
    client: Client,
    info: ServerInfo,
    compact: bool,
    in_flight: usize,
    /// Bytes of a query per probe, and apart from its probes (the compact key included), and
    /// the length of the probe id they were measured with: measured on the first search.
    query_bytes: OnceLock<(usize, usize, usize)>,
    /// The newest gallery version this connection knows of: the one read at connection, or
    /// the one its own last write made.
    latest: AtomicU64,
}

impl Connection {
    /// Connects to the server at `url` (`http://host:port` or `https://…`), reads its
    /// `/v1/config` and checks that `keys` are the gallery's (an error names both key ids
    /// otherwise).
    pub fn connect(url: &str, keys: ClientKeys, options: ConnectOptions) -> Result<Self> {
        let remote = options.remote(url)?;
        let info = remote.info()?;
        check_keys(&keys, &info.public, "the server's gallery")?;
        let client = Client::with_quantizer(keys, info.quantizer)?;
        Ok(Self {
            remote,
            client,
            latest: AtomicU64::new(info.version),
            info,
            compact: options.compact_answers,
            in_flight: options.in_flight.max(1),
            query_bytes: OnceLock::new(),
        })
    }

    /// The server's description as read at connection (see [`Connection::refresh`]).
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// Reads `/v1/config` again (the gallery's size and version move with every write).
    pub fn refresh(&mut self) -> Result<&ServerInfo> {
        self.info = self.remote.info()?;
        self.latest.store(self.info.version, Ordering::Relaxed);
        Ok(&self.info)
    }

    /// The key holder's side (keys and the gallery's quantiser).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The HTTP transport (for the endpoints this type does not wrap, e.g. the second stage).
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The transport and the key holder's side, taken apart (e.g. to reuse the keys for a
    /// second-stage gallery).
    pub fn into_parts(self) -> (Remote, Client) {
        (self.remote, self.client)
    }

    /// Encrypted 1:N search of `rows` (row-major, the gallery's dimension) under `probe_ids`:
    /// the `k` best matches of each, identical to one query of every probe (of the same gallery
    /// version: a write between two of its queries is seen by the later ones). Any number of
    /// probes: they are sent as queries within the server's probe and body limits, a few at once.
    ///
    /// Decryption runs on the global rayon pool: call this from ordinary threads, not from
    /// inside rayon tasks (with every worker waiting in a search, none would be left to decrypt).
    pub fn search(&self, probe_ids: &[String], rows: &[f32], k: usize) -> Result<Found> {
        let started = Instant::now();
        let d = self.client.quantizer().dim;
        if probe_ids.is_empty() || rows.len() != probe_ids.len() * d {
            return Err(Error::Config(format!(
                "{} probe ids for {} values: a search needs at least one probe of {d} values each",
                probe_ids.len(),
                rows.len()
            )));
        }
        // The id table of the newest version known first (fetched once per version): an answer
        // of that version then needs no second request, which a server shutting down would
        // refuse after streaming the answer. A version gone since is no error: the answer names
        // its own. (Not the version read at connection when this connection wrote since: the
        // seal of its own write makes that older table look like a replay.)
        let info = &self.info;
        match crate::sealing::table(&self.remote, &self.client, self.latest.load(Ordering::Relaxed)) {
            Err(e) if e.status() == Some(410) => {}
            other => drop(other?),
        }
        let mut rng = rand::rng();
        let key = match self.compact {
            true => Some(self.client.compact_key(&mut rng)?),
            false => None,
        };
        let per_query = self.probes_per_query(info, probe_ids, rows, key.as_ref())?;
        let groups: Vec<std::ops::Range<usize>> =
            (0..probe_ids.len()).step_by(per_query).map(|s| s..(s + per_query).min(probe_ids.len())).collect();

        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let done: Mutex<Vec<Option<Searched>>> = Mutex::new((0..groups.len()).map(|_| None).collect());
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..self.in_flight.min(groups.len()) {
                s.spawn(|| {
                    while !stop.load(Ordering::SeqCst) {
                        let g = next.fetch_add(1, Ordering::SeqCst);
                        let Some(range) = groups.get(g) else { break };
                        let rows = &rows[range.start * d..range.end * d];
                        match self.search_one(&probe_ids[range.clone()], rows, k, key.as_ref()) {
                            Ok(r) => lock(&done)[g] = Some(r),
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                lock(&failed).get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e);
        }
        let mut found = Found {
            matches: Vec::new(),
            probes: probe_ids.len(),
            queries: groups.len(),
            timings: Timings::default(),
            seconds: 0.0,
            transfer: Transfer::default(),
        };
        for r in done.into_inner().unwrap_or_else(PoisonError::into_inner).into_iter().flatten() {
            found.matches.extend(r.matches);
            found.timings += r.timings;
            found.transfer += r.transfer;
        }
        found.seconds = started.elapsed().as_secs_f64();
        Ok(found)
    }

    /// Probes per query: the server's probe limit, cut so that a query's body stays within its
    /// body limit (measured once on one probe's encoding, whose header counts as a probe's
    /// share, so the estimate errs large; the compact key counted once).
    fn probes_per_query(
        &self,
        info: &ServerInfo,
        probe_ids: &[String],
        rows: &[f32],
        key: Option<&CompactKey>,
    ) -> Result<usize> {
        let (per_probe, fixed, id_len) = match self.query_bytes.get() {
            Some(&sizes) => sizes,
            None => {
                let d = self.client.quantizer().dim;
                let mut one = self.client.encrypt_query(probe_labels(1), &rows[..d], &mut rand::rng())?;
                let per_probe = one.to_bytes().len();
                one.compact = key.cloned();
                let fixed = one.to_bytes().len() - per_probe;
                *self.query_bytes.get_or_init(|| (per_probe, fixed, 1))
            }
        };
        // Labels travel with their probes: room for the longest a query can carry.
        let longest = (probe_ids.len().min(info.max_probes.max(1)) - 1).to_string().len();
        let per_probe = per_probe + longest.saturating_sub(id_len);
        let room = info.max_body_bytes.saturating_sub(fixed);
        if per_probe > room {
            return Err(Error::Config(format!(
                "a query of one probe is {} bytes, more than the server's body limit of {} (hers serve \
                 --max-body-mib){}",
                per_probe + fixed,
                info.max_body_bytes,
                if key.is_some() { "; full answers (--full-answers) need no compact key" } else { "" }
            )));
        }
        Ok((room / per_probe).min(info.max_probes.max(1)).max(1))
    }

    /// One query of at most the server's limits: encrypted, sent, its answer decrypted chunk by
    /// chunk as it arrives. Sent again (the same bytes: a search changes nothing on the server)
    /// when refused for now or when its version's id table is gone, within the retry policy.
    fn search_one(&self, probe_ids: &[String], rows: &[f32], k: usize, key: Option<&CompactKey>) -> Result<Searched> {
        let t = Instant::now();
        let mut query = self.client.encrypt_query(probe_labels(probe_ids.len()), rows, &mut rand::rng())?;
        query.compact = key.cloned();
        let bytes = query.to_bytes();
        drop(query);
        let encrypt = t.elapsed().as_secs_f64();
        // Refused for now, or the answer's version gone before its id table was read (a write
        // in between): send it again. A cut answer is an error: the server failed mid-query.
        let again = |e: &Error| e.is_retryable() || e.status() == Some(410);
        let (matches, score, decrypt, transfer) = self.remote.retry_policy().run_if(
            again,
            || self.stream_ranked(&bytes, probe_ids, k),
            |e, wait| tracing::warn!("{e}; sending the query again in {:.1} s", wait.as_secs_f64()),
        )?;
        Ok(Searched { matches, timings: Timings { encrypt, score, decrypt }, transfer })
    }

    /// Sends an encoded query and ranks its answer while it streams in: each chunk frame is
    /// decrypted and folded into the probes' top-k on the rayon pool as soon as it arrived.
    /// The query carries [`probe_labels`]; the matches are named by `probe_ids`. Returns the
    /// matches, the round trip's seconds, the seconds of ranking left after the last byte, and
    /// the bytes moved.
    fn stream_ranked(&self, query: &[u8], probe_ids: &[String], k: usize) -> Result<(Vec<Match>, f64, f64, Transfer)> {
        let t = Instant::now();
        let ranking: OnceLock<Ranking<'_>> = OnceLock::new();
        let failed: Mutex<Option<encsearch::Error>> = Mutex::new(None);
        let mut transfer = Transfer::default();
        let mut arrived = 0.0;
        rayon::in_place_scope(|s| -> Result<()> {
            let (_, moved) = self.remote.search_each(
                query,
                |h| {
                    let table = crate::sealing::table(&self.remote, &self.client, h.version)?;
                    let mut named = h.clone();
                    restore_probe_ids(&mut named.probe_ids, probe_ids)?;
                    let r = Ranking::for_stream(&self.client, &named, &table, k)?;
                    let _ = ranking.set(r);
                    Ok(())
                },
                |chunk, scores: Vec<ChunkScores>| {
                    if let Some(e) = lock(&failed).take() {
                        return Err(e.into());
                    }
                    let (ranking, failed) = (&ranking, &failed);
                    s.spawn(move |_| {
                        let done = match ranking.get() {
                            Some(r) => r.add_chunk(chunk, &scores),
                            None => Err(encsearch::Error::Malformed {
                                what: "score stream",
                                reason: "a chunk before the header".into(),
                            }),
                        };
                        if let Err(e) = done {
                            lock(failed).get_or_insert(e);
                        }
                    });
                    Ok(())
                },
            )?;
            transfer = moved;
            arrived = t.elapsed().as_secs_f64();
            Ok(())
        })?;
        if let Some(e) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e.into());
        }
        let ranking = ranking.into_inner().ok_or_else(|| {
            Error::Search(encsearch::Error::Malformed { what: "score stream", reason: "no header".into() })
        })?;
        let matches = ranking.into_matches();
        let total = t.elapsed().as_secs_f64();
        Ok((matches, arrived, total - arrived, transfer))
    }

    /// 1:1 verification of probe `row` (id `probe_id`) against the claimed gallery id, accepted
    /// at `threshold` (see [`Session::verify`]); always full answers (one chunk is smaller than a
    /// compact key).
    /// The answer's slots are checked against the sealed id table first: a server that
    /// answers with another template's chunk is an error, not a verdict.
    pub fn verify(&self, probe_id: &str, row: &[f32], claim: &str, threshold: f64) -> Result<Verified> {
        Ok(Session::new(&self.client).verify(probe_id, row, claim, threshold, &mut rand::rng(), |q| {
            let r = self.remote.verify(q, claim)?;
            self.check_claim(&r, claim)?;
            Ok(r)
        })?)
    }

    /// Checks that a verification answer holds the chunk the sealed id table puts `claim` in,
    /// slot for slot.
    fn check_claim(&self, r: &encsearch::Response, claim: &str) -> Result<()> {
        let (_, table) = crate::sealing::current(&self.remote, &self.client)?;
        let n = r.degree.max(1);
        let at = table.slot_ids.iter().position(|s| s.as_deref() == Some(claim));
        let chunk = at.and_then(|g| table.slot_ids.get(g / n * n..(g / n + 1) * n));
        if chunk != Some(&r.slot_ids[..]) {
            return Err(Error::Search(encsearch::Error::Integrity {
                what: match at {
                    Some(g) => format!(
                        "the server answered the verification of {claim} with a chunk other than the one the                          sealed id table puts it in (chunk {}, slot {})",
                        g / n,
                        g % n
                    ),
                    None => format!("the server answered a verification of {claim}, which its sealed id table lacks"),
                },
            }));
        }
        Ok(())
    }

    /// Encrypts `rows` (row-major, the gallery's dimension) and enrols them under `ids`;
    /// `progress(n)` after each acknowledged request of n rows. Each request is durable when
    /// acknowledged; a request whose acknowledgement was lost is checked against the server's
    /// id table before it is sent again, so no row is enrolled twice (module docs).
    pub fn enrol(
        &self,
        ids: &[String],
        rows: &[f32],
        options: EnrolOptions,
        progress: impl FnMut(usize),
    ) -> Result<Enrolled> {
        let done = enrol_rows(&self.remote, &self.client, ids, rows, options, &mut rand::rng(), progress)?;
        self.latest.store(done.version, Ordering::Relaxed);
        Ok(done)
    }

    /// Removes `ids`, sealed against the current id table; returns once the removal is
    /// durable and no search returns them.
    pub fn remove(&self, ids: &[String]) -> Result<WriteAck> {
        let ack = self.remote.remove(&self.client, ids)?;
        self.latest.store(ack.version, Ordering::Relaxed);
        Ok(ack)
    }
}

/// One query's share of a search.
#[derive(Debug)]
struct Searched {
    matches: Vec<Match>,
    timings: Timings,
    transfer: Transfer,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Refuses keys that are not the ones `public` names, naming both key ids and parameters.
pub fn check_keys(keys: &ClientKeys, public: &encsearch::PublicParams, what: &str) -> Result<()> {
    if keys.public() != public {
        return Err(Error::KeyMismatch(format!(
            "{what} is under key {} (N = {}, t = {}), these keys are {} (N = {}, t = {}): use the key set it was \
             enrolled with",
            public.key_id.0,
            public.params.degree,
            public.params.plaintext,
            keys.key_id().0,
            keys.public().params.degree,
            keys.public().params.plaintext
        )));
    }
    Ok(())
}

/// Encrypts `rows` (row-major, the gallery's dimension) and enrols them under `ids`;
/// `progress(n)` after each acknowledged request of n rows. Each request is durable when
/// acknowledged; a request whose acknowledgement was lost is checked against the server's
/// id table before it is sent again, so no row is enrolled twice (module docs).
pub(crate) fn enrol_rows<R: rand::RngCore + rand::CryptoRng>(
    remote: &Remote,
    client: &Client,
    ids: &[String],
    rows: &[f32],
    options: EnrolOptions,
    rng: &mut R,
    mut progress: impl FnMut(usize),
) -> Result<Enrolled> {
    let rows = encsearch::Rows::new("the rows to enrol", ids, rows, client.quantizer().dim)?;
    // With `resume`, the rows the server holds already are skipped; without it the server
    // is the judge (a duplicate is its 409, and nothing of that request is applied).
    let (info, todo): (ServerInfo, Vec<usize>) = match options.resume {
        true => {
            let (info, live) = current_ids(remote, client)?;
            (info, (0..ids.len()).filter(|i| !live.contains(ids[*i].as_str())).collect())
        }
        false => (remote.info()?, (0..ids.len()).collect()),
    };
    let mut out = Enrolled {
        enrolled: 0,
        skipped: ids.len() - todo.len(),
        recovered: 0,
        templates: info.templates,
        version: info.version,
    };
    let n = client.chunk_size();
    let mut per_request = options.chunks_per_request.clamp(1, todo.len().div_ceil(n.max(1)).max(1));
    let mut at = 0;
    while at < todo.len() {
        let take = n.saturating_mul(per_request).min(todo.len() - at);
        let part = &todo[at..at + take];
        let (part_ids, part_rows) = rows.gather(part);
        let chunks = client.encrypt_templates(&part_rows, rng)?;
        let e = Enrolment { key_id: client.keys().key_id().clone(), ids: part_ids, chunks, seal: None };
        // The seal adds a few hundred bytes to what is measured here.
        let bytes = e.to_bytes();
        if bytes.len() + 512 > info.max_body_bytes {
            if per_request == 1 {
                return Err(Error::Config(format!(
                    "one chunk's enrolment is {} bytes, more than the server's body limit of {} (hers serve \
                     --max-body-mib)",
                    bytes.len(),
                    info.max_body_bytes
                )));
            }
            let fits = (per_request as u128 * info.max_body_bytes as u128 / bytes.len() as u128) as usize;
            per_request = fits.clamp(1, per_request - 1);
            continue;
        }
        drop(bytes);
        let sealed = std::cell::RefCell::new(e);
        let sent = crate::sealing::sealed_write(
            remote,
            client,
            |key, table, expect| {
                let e = sealed.borrow();
                key.seal_append(table, expect, &e.ids, &e.chunks, n, &mut rand::rng())
            },
            |seal| {
                let mut e = sealed.borrow_mut();
                e.seal = Some(seal);
                send_enrolment(remote, client, &e.ids, &e.to_bytes())
            },
        );
        let e = sealed.into_inner();
        let (ack, recovered) = sent.map_err(|e| match e {
            Error::Http { url, status: 409, message, retry_after } if !options.resume => Error::Http {
                url,
                status: 409,
                message: format!(
                    "{message} (if an earlier enrolment of these rows was interrupted, rerun with --resume \
                     to send only the rows the server lacks)"
                ),
                retry_after,
            },
            e => e,
        })?;
        out.enrolled += e.ids.len();
        out.recovered += usize::from(recovered);
        (out.templates, out.version) = (ack.templates, ack.version);
        progress(e.ids.len());
        at += take;
    }
    Ok(out)
}

/// Sends one encoded enrolment until it is known to be applied: acknowledged, or — after a try
/// whose answer never came, or came from a proxy that lost its server (503) — every one of its
/// ids in the server's id table. Returns the acknowledgement and whether it was recovered from
/// the id table. A duplicate (409) after such a try is this request's own first copy when every
/// id is there, and the server's verdict otherwise.
fn send_enrolment(remote: &Remote, client: &Client, ids: &[String], bytes: &[u8]) -> Result<(WriteAck, bool)> {
    let policy = remote.retry_policy();
    let started = Instant::now();
    let mut tries = 0u32;
    // Whether an earlier try may have been applied without its answer arriving.
    let mut unsure = false;
    loop {
        tries += 1;
        let e = match remote.enrol_bytes_once(bytes) {
            Ok(ack) => return Ok((ack, false)),
            Err(e) => e,
        };
        let maybe_applied = match &e {
            // Never read by the server, or refused before anything was done.
            Error::Unreachable { .. } | Error::Http { status: 429, .. } => false,
            Error::Http { status: 409, .. } if unsure => true,
            Error::Http { status: 503, .. } | Error::Transport { .. } => true,
            _ => return Err(e),
        };
        if maybe_applied {
            unsure = true;
            tracing::warn!("{e}; checking whether the server applied the enrolment before sending it again");
            match applied(remote, client, ids) {
                Ok(Some(ack)) => return Ok((ack, true)),
                Ok(None) if e.status() == Some(409) => return Err(e),
                Ok(None) => {}
                // The server is not back yet: wait, then try again.
                Err(check) if check.is_retryable() => {}
                Err(check) => return Err(check),
            }
        }
        let wait = policy.delay(tries, e.retry_after());
        if tries >= policy.attempts.max(1) || started.elapsed() + wait > policy.total {
            return Err(match tries {
                1 if !unsure => e,
                _ => Error::GaveUp { tries, seconds: started.elapsed().as_secs_f64(), last: Box::new(e) },
            });
        }
        tracing::warn!("sending the enrolment request again in {:.1} s", wait.as_secs_f64());
        std::thread::sleep(wait);
    }
}

/// Whether the server holds every one of `ids` (the acknowledgement it would have sent), none
/// of them (`None`), or some — an error: a request is applied whole or not at all, so another
/// writer enrolled the others.
fn applied(remote: &Remote, client: &Client, ids: &[String]) -> Result<Option<WriteAck>> {
    let (info, live) = current_ids(remote, client)?;
    let present = ids.iter().filter(|id| live.contains(id.as_str())).count();
    if present == ids.len() {
        return Ok(Some(WriteAck { version: info.version, templates: info.templates, changed: ids.len() }));
    }
    if present > 0 {
        return Err(Error::Config(format!(
            "the server holds {present} of the {} ids of an enrolment request whose answer was lost: a request \
             is applied whole or not at all, so another writer enrolled some of these ids",
            ids.len()
        )));
    }
    Ok(None)
}

/// The server's description and the live ids of its current version (its table checked
/// against its seal).
fn current_ids(remote: &Remote, client: &Client) -> Result<(ServerInfo, HashSet<String>)> {
    let (info, table) = crate::sealing::current(remote, client)?;
    Ok((info, table.slot_ids.iter().flatten().cloned().collect()))
}
