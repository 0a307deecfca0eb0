//! Evaluation of embedding sets: the identification and verification protocols, plaintext
//! exact search, the metrics the paper reports (rank-k, CMC, TAR@FAR, retrieval mAP), and
//! config-driven sweeps over datasets × methods × dimensions × search modes × gallery sizes
//! with tables and plots.
//!
//! Plaintext exact search here is the reference every reduced or encrypted search is compared
//! against. eval drives both dimred and encsearch; they never import each other.
//!
//! ```no_run
//! # fn main() -> eval::Result<()> {
//! // A sweep from its config: every cell run (or resumed), then tables and plots.
//! let config = eval::SweepConfig::from_file("configs/sweep-bible-minilm.toml")?;
//! let out = eval::run_sweep(&config, true)?;
//! # let _ = out;
//! # Ok(())
//! # }
//! ```

mod atomic;
mod cells;
mod config;
mod dataset;
mod encrypted;
mod error;
mod metrics;
mod models;
mod plan;
mod plot;
mod report;
mod search;
mod sweep;
mod table;
mod twostage;

pub use cells::CellResult;
pub use config::{DatasetConfig, Mode, SweepConfig, SyntheticConfig};
pub use dataset::Dataset;
/// The identification protocol is dimred's (its validation draws the same probes).
pub use dimred::{Split, split_one_probe_per_identity};
pub use encrypted::{EncryptedRun, encrypted_scores};
pub use error::{Error, Result};
pub use metrics::{Identification, Verification, from_score_rows, identification, retrieval, score_all, verification};
pub use plan::plan_keys;
pub use plot::write_plots;
pub use report::{EvalOptions, EvalReport, evaluate};
pub use search::{PlainGallery, top_k};
pub use sweep::{SweepOutput, run_sweep};
pub use table::{results_frame, summary, write_results};
pub use twostage::{TwoStageRun, two_stage_scores};
