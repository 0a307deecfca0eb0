//! `GET /v1/config`: what a client needs to know before it encrypts anything — the key and
//! parameters the gallery was made with, its quantiser, and the current version.

use encsearch::{Layout, PublicParams, Quantizer};
use serde::{Deserialize, Serialize};

/// The server's description of the gallery it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Key id and BFV parameters (public): a client's keys must match them exactly.
    pub public: PublicParams,
    /// SHA-256 (hex, first 16 bytes) of the canonical parameter encoding.
    pub params_hash: String,
    /// Template dimension, quantisation scale and metric of the 1:N gallery.
    pub quantizer: Quantizer,
    /// Packing layout of the 1:N gallery (dimension-wise).
    pub layout: Layout,
    /// Slots per chunk (the ring degree N).
    pub templates_per_chunk: usize,
    /// Largest request body the server accepts (bytes).
    pub max_body_bytes: usize,
    /// Most probes in one query (`/v1/search`); a client splits larger searches into queries
    /// within this and `max_body_bytes`.
    #[serde(default = "default_max_probes")]
    pub max_probes: usize,
    /// Most candidates of one probe in a second-stage query (`/v1/search/fine`).
    #[serde(default = "default_max_candidates")]
    pub max_candidates: usize,
    /// The current gallery version (a fingerprint of its manifest).
    pub version: u64,
    /// Bytes of the current version's id table (`/v1/ids`); a client reads no table larger
    /// than this allows for (see [`ServerInfo::id_table_limit`]). 0: not stated.
    #[serde(default)]
    pub id_table_bytes: u64,
    /// Live templates in the current version.
    pub templates: usize,
    /// The full-dimension gallery of the two-stage search, when the server has one.
    pub fine: Option<FineInfo>,
}

impl ServerInfo {
    /// The most bytes a client reads for an id table: the stated size with room for the
    /// writes that may land before the table is read (twice the size, and 64 MiB more), or
    /// 1 GiB from a server that states none.
    pub fn id_table_limit(&self) -> u64 {
        match self.id_table_bytes {
            0 => 1 << 30,
            n => n.saturating_mul(2).saturating_add(64 << 20),
        }
    }
}

/// What servers that did not state `max_probes` accepted.
fn default_max_probes() -> usize {
    64
}

/// What servers that did not state `max_candidates` were sent at most (`hers client
/// search --shortlist`'s largest useful value).
fn default_max_candidates() -> usize {
    1024
}

/// The second-stage gallery of a two-stage search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineInfo {
    /// Its key and parameters (a full-dimension gallery often has its own key set).
    pub public: PublicParams,
    /// Its quantiser.
    pub quantizer: Quantizer,
    /// Live templates.
    pub templates: usize,
}

/// Hex SHA-256 prefix of a parameter set's canonical bytes.
pub fn params_hash(public: &PublicParams) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(public.params.canonical_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}
