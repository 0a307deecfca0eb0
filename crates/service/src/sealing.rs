//! The key holder's integrity checks over the network (`encsearch`'s `seal.rs` has the MAC):
//! every id table a client names scores with is checked against its seal and against the seals
//! seen before — the same server never goes back to an older write of a gallery, never swaps
//! in another gallery, never drops the seal of a gallery it served sealed — and every write is
//! sealed against the table it changes.
//!
//! What was seen lives in memory for a [`crate::Remote`]'s life and, given a file
//! ([`Seen::at`], `hers client` uses `seen.json` in the key directory), across runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use encsearch::{
    Client,
    seal::{Expect, Seal},
    wire::IdTable,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::info::ServerInfo;
use crate::remote::Remote;

/// The file name `hers client` keeps the seals seen in, inside the key directory.
pub const SEEN_FILE: &str = "seen.json";

/// The seals a client has seen: the highest write of each gallery, and which gallery each
/// server served.
#[derive(Debug, Default)]
pub struct Seen {
    file: Option<PathBuf>,
    state: Mutex<SeenState>,
}

/// The contents of a `seen.json`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SeenState {
    /// Gallery id → highest write counter seen.
    galleries: BTreeMap<String, u64>,
    /// Server URL → the id of the sealed gallery it served.
    servers: BTreeMap<String, String>,
}

impl Seen {
    /// Seals seen in this process only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Seals seen, kept in `file` (read at each check, so that every client of the same key
    /// holder shares it; written atomically, owner-only).
    pub fn at(file: &Path) -> Self {
        Self { file: Some(file.to_path_buf()), state: Mutex::default() }
    }

    /// Records that the server at `url` served a table whose seal checked out (`None`: a table
    /// without a seal), refusing what contradicts the seals seen before.
    pub fn observe(&self, url: &str, seal: Option<&Seal>) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = &self.file {
            match std::fs::read(file) {
                Ok(bytes) => {
                    *state = serde_json::from_slice(&bytes).map_err(|e| {
                        Error::Config(format!(
                            "{}: not a file of seen seals ({e}); delete it to start anew",
                            file.display()
                        ))
                    })?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: file.clone(), source }),
            }
        }
        let known = self.file.as_ref().map_or_else(|| "this client".to_string(), |f| f.display().to_string());
        let before = state.clone();
        let pinned = state.servers.get(url).cloned();
        match (seal, pinned) {
            (None, Some(g)) => {
                return Err(integrity(format!(
                    "{url} served gallery {g} sealed before, and now a table without a seal: its seal was \
                     stripped or another gallery is served (if that is intended, remove {url} from {known})"
                )));
            }
            (None, None) => {}
            (Some(s), Some(g)) if s.gallery != g => {
                return Err(integrity(format!(
                    "{url} served gallery {g} before and now gallery {}: another gallery is served under its \
                     address (if that is intended, remove {url} from {known})",
                    s.gallery
                )));
            }
            (Some(s), _) => {
                let highest = state.galleries.get(&s.gallery).copied().unwrap_or(0);
                if s.counter < highest {
                    return Err(integrity(format!(
                        "{url} serves gallery {} as it was after write {}, but write {highest} was seen before: an \
                         older version of the gallery is served again",
                        s.gallery, s.counter
                    )));
                }
                state.galleries.insert(s.gallery.clone(), s.counter);
                state.servers.insert(url.to_string(), s.gallery.clone());
            }
        }
        if let (Some(file), true) = (&self.file, *state != before) {
            let bytes = serde_json::to_vec_pretty(&*state).map_err(|e| Error::Config(e.to_string()))?;
            embeddings::atomic::write_atomic_with(file, true, |f| std::io::Write::write_all(f, &bytes))
                .map_err(|source| Error::Io { path: file.clone(), source })?;
        }
        Ok(())
    }
}

fn integrity(what: String) -> Error {
    Error::Search(encsearch::Error::Integrity { what })
}

/// What `client`'s tables are checked against: its key id and quantiser.
fn expect(client: &Client) -> (encsearch::keys::KeyId, encsearch::Quantizer) {
    (client.keys().key_id().clone(), *client.quantizer())
}

/// The id table of gallery version `version` from `remote`, checked against its seal with
/// `client`'s key and against the seals seen before.
pub(crate) fn table(remote: &Remote, client: &Client, version: u64) -> Result<IdTable> {
    let table = remote.ids(version)?;
    if remote.checked() == Some(table.version) {
        return Ok(table);
    }
    let (key_id, quantizer) = expect(client);
    let sealed = client.keys().seal_key()?.check_table(&table, Expect { key_id: &key_id, quantizer: &quantizer })?;
    remote.seen().observe(remote.url_base(), table.seal.as_ref().filter(|_| sealed))?;
    remote.set_checked(table.version);
    Ok(table)
}

/// The server's description and its current version's checked id table (read again when a
/// write replaced the version in between: its table is then gone, 410).
pub(crate) fn current(remote: &Remote, client: &Client) -> Result<(ServerInfo, IdTable)> {
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        let info = remote.info()?;
        match table(remote, client, info.version) {
            Ok(t) => return Ok((info, t)),
            Err(e) if e.status() == Some(410) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Config(format!(
        "the gallery's version changed {TRIES} times while its id table was read: retry when writes pause"
    )))
}

/// Runs a sealed write: `send(seal)` with the key holder's seal of the state after it, made by
/// `seal` from the current checked table; made again from a fresh table when another write came
/// first (412), a few times.
pub(crate) fn sealed_write<T>(
    remote: &Remote,
    client: &Client,
    mut seal: impl FnMut(&encsearch::seal::SealKey, &IdTable, Expect<'_>) -> encsearch::Result<Seal>,
    mut send: impl FnMut(Seal) -> Result<T>,
) -> Result<T> {
    const TRIES: usize = 8;
    let key = client.keys().seal_key()?;
    let (key_id, quantizer) = expect(client);
    let mut last = None;
    for _ in 0..TRIES {
        let (_, table) = current(remote, client)?;
        let s = seal(&key, &table, Expect { key_id: &key_id, quantizer: &quantizer })?;
        match send(s.clone()) {
            Err(e) if e.status() == Some(412) => last = Some(e),
            // The write is applied: no later table of a sealed gallery may be older than it (a
            // server that acknowledges and then serves the state before is caught). A gallery
            // without a seal (a cluster's merged view) may keep none.
            Ok(done) => {
                if table.seal.is_some() {
                    remote.seen().observe(remote.url_base(), Some(&s))?;
                }
                return Ok(done);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Config("no write was tried".into())))
}
