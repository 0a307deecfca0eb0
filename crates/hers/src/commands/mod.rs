//! One module per subcommand: its clap arguments and a `run` that calls the libraries.

pub mod completions;
pub mod demo;
pub mod eval;
pub mod import;
pub mod synth;
