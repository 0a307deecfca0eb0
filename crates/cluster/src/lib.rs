//! `hers cluster`: one encrypted gallery sharded over timely-dataflow processes, behind the same
//! HTTP API as `hers serve`, so the same `hers client` talks to one server or a cluster.
//!
//! * `split.rs`: `hers cluster split` — whole segments hard-linked into shard galleries (no
//!   re-encryption), and `manifest.rs` the cluster manifest that says which shard holds what;
//! * `hosts.rs`: the host file (one `host:port` per process); `http.rs`: an HTTP server on a
//!   thread of its own;
//! * `messages.rs`: what the processes exchange over timely's channels;
//! * `shard.rs`: one process's shard — scoring, writes, id tables — on threads of its own, so
//!   the timely worker only moves messages and never stalls;
//! * `state.rs`: the cluster's versions, pending requests and write lane that the front door
//!   keeps; `door.rs`: its HTTP side on process 0: queries broadcast to every shard, their
//!   partial answers streamed back to the client as they arrive; writes in one sequenced lane;
//! * `process.rs`: `hers cluster serve` — one process, one timely worker and its dataflow;
//! * `supervise.rs` and `proxy.rs`: `hers cluster up` — starts the processes on this machine,
//!   restarts the cluster as a whole when one dies, and answers 503 on the public address
//!   meanwhile.
//!
//! ```no_run
//! # fn main() -> cluster::Result<()> {
//! // Shard a gallery over 3 processes (segment files hard-linked, nothing re-encrypted).
//! let m = cluster::split("gallery".as_ref(), 3, "cluster-dir".as_ref())?;
//! println!("{} shards", m.shards.len());
//! # Ok(())
//! # }
//! ```

mod door;
mod error;
mod hosts;
mod http;
mod manifest;
mod messages;
mod process;
mod proxy;
mod shard;
mod split;
mod state;
mod supervise;
mod wake;

pub use error::{Error, Result};
pub use hosts::read_hosts;
pub use manifest::{CLUSTER_FILE, ClusterManifest, ShardEntry};
pub use process::{ProcessConfig, run as run_process};
pub use split::split;
pub use state::DoorConfig;
pub use supervise::{UpConfig, UpEvent, up};
