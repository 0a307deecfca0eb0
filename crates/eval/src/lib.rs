//! Evaluation of embedding sets: the identification and verification protocols, plaintext
//! exact search, and the metrics the paper reports (rank-k, CMC, TAR@FAR).
//!
//! Plaintext exact search here is the reference every reduced or encrypted search is compared
//! against.

mod error;
mod metrics;
mod protocol;
mod report;
mod search;

pub use error::{Error, Result};
pub use metrics::{Identification, Verification, identification, score_all, verification};
pub use protocol::{Split, split_one_probe_per_identity};
pub use report::{EvalOptions, EvalReport, evaluate};
pub use search::{Gallery, top_k};
