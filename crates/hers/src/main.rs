//! `hers`: encrypted search over biometric and image embeddings — the command line.
//!
//! This binary only parses arguments, calls the libraries and prints; every command lives in
//! its own file under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod progress;

/// mimalloc instead of the system allocator: a scan allocates and frees multi-megabyte
/// buffers per chunk, which glibc hands back to the OS each time (mmap/munmap, page faults
/// and zeroing: half of a streamed scan's time, measured).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Search biometric and image embeddings while they stay encrypted.
///
/// Typical flow: `synth` or `import` an embedding set, `eval` it in plaintext, reduce it with
/// DeepMDS++, then enrol and search it under homomorphic encryption. `hers demo` runs it all
/// on the shipped data.
#[derive(Debug, Parser)]
#[command(name = "hers", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Vector builds of the encrypted-search kernels: `auto` (every build the CPU has), `avx2`
    /// (no AVX-512: as on a CPU with AVX2 only) or `off` (the portable builds only); the last
    /// two are for A/B measurements.
    #[arg(long, global = true, env = "HERS_SIMD", default_value = "auto", value_parser = ["auto", "avx2", "off"])]
    simd: String,
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand; each variant's arguments live with its implementation.
#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a synthetic embedding set imitating ArcFace, DeepPrint or ImageNet features.
    Synth(commands::synth::Args),
    /// Convert the `.npy` feature files of the original HERS code to a parquet embedding set.
    Import(commands::import::Args),
    /// Plaintext identification (rank-k, CMC) and verification (TAR@FAR) of an embedding set.
    #[cfg(feature = "train")]
    Eval(commands::eval::Args),
    /// Train a dimensionality reduction (DeepMDS++, ablations, PCA, LDA) from a TOML config.
    #[cfg(feature = "train")]
    Train(commands::train::Args),
    /// Project an embedding set to 16/32/64-D with a trained model.
    #[cfg(feature = "train")]
    Project(commands::project::Args),
    /// Generate a key set: secret key for the client, public parameters for the server.
    Keygen(commands::keygen::Args),
    /// Encrypt an embedding set and append it to an encrypted gallery (client).
    Enroll(commands::enroll::Args),
    /// One role of an encrypted search: encrypt (client), score (server), decrypt (client);
    /// the fine-* steps are the same for the second stage of a two-stage search.
    Query(commands::query::Args),
    /// Encrypted 1:N search, all roles in one process.
    Search(commands::search::Args),
    /// Encrypted 1:1 verification against a claimed identity.
    Verify(commands::verify::Args),
    /// Serve a gallery over HTTP: encrypted queries in, encrypted scores out; online enrolment.
    Serve(commands::serve::Args),
    /// The client of `hers serve`: search, verify, enroll and remove over the network.
    Client(commands::client::Args),
    /// A gallery sharded over timely-dataflow processes, behind the same HTTP API
    /// (`cluster split | serve | up`).
    Cluster(commands::cluster::Args),
    /// Remove templates from an encrypted gallery (no re-encryption).
    Remove(commands::remove::Args),
    /// Gallery maintenance (`gallery check [--repair]`).
    Gallery(commands::gallery::Args),
    /// Benchmarks (`bench search`: encrypted search vs HERS vs plaintext).
    Bench(commands::bench::Args),
    /// Run the whole pipeline on the shipped data and print one table.
    #[cfg(feature = "train")]
    Demo(commands::demo::Args),
    /// Print a shell completion script.
    Completions(commands::completions::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    commands::open::set_simd(&cli.simd);
    let result = match cli.command {
        Command::Synth(a) => commands::synth::run(a),
        Command::Import(a) => commands::import::run(a),
        #[cfg(feature = "train")]
        Command::Eval(a) => commands::eval::run(a),
        #[cfg(feature = "train")]
        Command::Train(a) => commands::train::run(a),
        #[cfg(feature = "train")]
        Command::Project(a) => commands::project::run(a),
        Command::Keygen(a) => commands::keygen::run(a),
        Command::Enroll(a) => commands::enroll::run(a),
        Command::Query(a) => commands::query::run(a),
        Command::Search(a) => commands::search::run(a),
        Command::Verify(a) => commands::verify::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Client(a) => commands::client::run(a),
        Command::Cluster(a) => commands::cluster::run(a),
        Command::Remove(a) => commands::remove::run(a),
        Command::Gallery(a) => commands::gallery::run(a),
        Command::Bench(a) => commands::bench::run(a),
        #[cfg(feature = "train")]
        Command::Demo(a) => commands::demo::run(a),
        Command::Completions(a) => commands::completions::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,hers=debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
