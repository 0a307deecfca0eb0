//! One module per subcommand: its clap arguments and a `run` that calls the libraries.

pub mod bench;
pub mod client;
pub mod cluster;
pub mod completions;
#[cfg(feature = "train")]
pub mod demo;
pub mod enroll;
#[cfg(feature = "train")]
pub mod eval;
pub mod gallery;
pub mod import;
pub mod keygen;
pub(crate) mod open;
#[cfg(feature = "train")]
pub mod project;
pub mod query;
pub mod remove;
pub mod search;
pub mod serve;
pub mod synth;
#[cfg(feature = "train")]
pub mod train;
pub mod verify;
