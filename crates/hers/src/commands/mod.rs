//! One module per subcommand: its clap arguments and a `run` that calls the libraries.

pub mod bench;
pub mod client;
pub mod cluster;
pub mod completions;
pub mod demo;
pub mod enroll;
pub mod eval;
pub mod gallery;
pub mod import;
pub mod keygen;
pub(crate) mod open;
pub mod project;
pub mod query;
pub mod remove;
pub mod search;
pub mod serve;
pub mod synth;
pub mod train;
pub mod verify;
