//! What the processes exchange over timely's channels (bincode-encoded by timely): commands
//! from the front door down to the shards, answers from the shards up to the front door.
//! Ciphertext payloads travel as the wire encodings the HTTP API already carries.

use serde::{Deserialize, Serialize};

/// One shard's committed state: what the front door needs to number a query's chunks and to
/// name the cluster's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// The shard gallery's version.
    pub version: u64,
    /// Chunks in that version.
    pub chunks: usize,
    /// Live templates in that version.
    pub templates: usize,
}

/// A command from the front door (worker 0) to the shards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Down {
    /// A 1:N query, broadcast to every shard: each scores it on its `shards[i]` version and
    /// numbers its chunks from `offsets[i]`.
    Search {
        /// Request number (answers carry it back).
        qid: u64,
        /// The encoded [`encsearch::Query`].
        query: Vec<u8>,
        /// Each shard's version to score on.
        versions: Vec<u64>,
        /// Each shard's first global chunk.
        offsets: Vec<usize>,
        /// When the front door stops waiting (Unix milliseconds): a shard that reaches the
        /// query later skips it instead of scoring for nobody.
        expires_ms: u64,
    },
    /// Client-encrypted templates for one shard (an encoded [`encsearch::wire::Enrolment`]).
    Enrol {
        /// Request number.
        qid: u64,
        /// The shard that takes them.
        shard: usize,
        /// The encoded enrolment.
        body: Vec<u8>,
    },
    /// Ids to tombstone in one shard.
    Remove {
        /// Request number.
        qid: u64,
        /// The shard that holds them.
        shard: usize,
        /// The ids.
        ids: Vec<String>,
    },
    /// The encoded [`encsearch::wire::IdTable`] of one shard version.
    Ids {
        /// Request number.
        qid: u64,
        /// The shard.
        shard: usize,
        /// Its version.
        version: u64,
    },
    /// A 1:1 query against the chunk holding `id`.
    Verify {
        /// Request number.
        qid: u64,
        /// The shard holding the id.
        shard: usize,
        /// The claimed id.
        id: String,
        /// The encoded one-probe [`encsearch::Query`].
        query: Vec<u8>,
    },
}

impl Down {
    /// The shard a targeted command goes to (searches go to all).
    pub fn shard(&self) -> usize {
        match self {
            Down::Search { .. } => 0,
            Down::Enrol { shard, .. }
            | Down::Remove { shard, .. }
            | Down::Ids { shard, .. }
            | Down::Verify { shard, .. } => *shard,
        }
    }
}

/// A refusal or failure, as the HTTP status and message the client should get.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// HTTP status code.
    pub status: u16,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// A shard's answer to a targeted command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    /// A write is durable and its version current on the shard.
    Written {
        /// The shard's state after the write.
        state: ShardState,
        /// Templates enrolled or removed.
        changed: usize,
    },
    /// Encoded bytes (an id table, a verification response).
    Bytes(Vec<u8>),
}

/// A message from a shard to the front door.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Up {
    /// Sent once at start-up: the shard's state and every id it ever enrolled.
    Hello {
        /// The shard.
        shard: usize,
        /// Its state.
        state: ShardState,
        /// Live ids.
        live: Vec<String>,
        /// Removed ids (never reusable).
        removed: Vec<String>,
    },
    /// One scored chunk of a search, a complete stream frame with its global chunk number.
    Frame {
        /// Request number.
        qid: u64,
        /// The encoded chunk frame.
        frame: Vec<u8>,
    },
    /// The shard has sent every chunk of a search.
    Done {
        /// Request number.
        qid: u64,
    },
    /// The answer to a targeted command, or why a search failed on this shard.
    Reply {
        /// Request number.
        qid: u64,
        /// The answer or the failure.
        answer: Result<Answer, Failure>,
    },
}

impl From<Failure> for service::ApiError {
    fn from(f: Failure) -> Self {
        let status = axum::http::StatusCode::from_u16(f.status);
        Self::new(status.unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR), f.message)
    }
}
