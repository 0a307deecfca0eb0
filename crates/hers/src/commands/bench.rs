//! `hers bench search`: our encrypted search vs the HERS algorithm vs plaintext, in one run;
//! `hers bench serve`: closed-loop load against a running `hers serve`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use encsearch::{Client, Preset};
use hers_bench::{BenchConfig, LoadConfig, in_process, run_load};
use service::{ConnectOptions, Connection, Remote, RetryPolicy, read_token};

/// Arguments of `hers bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which benchmark.
    #[command(subcommand)]
    what: What,
}

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
enum What {
    /// Encrypted 1:N search on a synthetic gallery.
    Search {
        /// Templates in the gallery.
        #[arg(long, default_value_t = 100_000)]
        gallery_size: usize,
        /// Template dimension.
        #[arg(long, default_value_t = 16)]
        dim: usize,
        /// Templates over which the HERS algorithm is timed against ours.
        #[arg(long, default_value_t = 100_000)]
        baseline_size: usize,
        /// Parameter preset (n4096, n8192).
        #[arg(long, default_value = "n4096")]
        preset: String,
        /// Times each step runs; the table gives the median.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Probes of a batch scored in one pass and timed against as many single scans (0: skip).
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Also print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Closed-loop load against a running `hers serve`: latency percentiles, queries/s, bytes
    /// per query, enrolment throughput and visibility.
    Serve {
        /// Server address.
        #[arg(long, default_value = "http://127.0.0.1:7878")]
        server: String,
        /// The gallery's key directory.
        #[arg(long)]
        keys: PathBuf,
        /// Probes (parquet, the gallery's dimension); each query is one of the first 16.
        #[arg(long)]
        probes: PathBuf,
        /// Concurrent clients of each phase.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        clients: Vec<usize>,
        /// Seconds per phase.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Token file: also time enrolments (their templates are removed afterwards).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Enrolment requests (one chunk each) to time.
        #[arg(long, default_value_t = 4)]
        enrolments: usize,
        /// The served gallery's directory, when on this machine: also score it in-process for
        /// the service's overhead.
        #[arg(long)]
        gallery: Option<PathBuf>,
        /// Ask for full answers (15 B per template) instead of compact ones (7.6 B), as
        /// `hers client --full-answers` does.
        #[arg(long)]
        full_answers: bool,
        /// Make each query a whole key-holder search through the client library (encrypt, send,
        /// decrypt the answer while it streams, top-k), as an application's, instead of the
        /// service alone (a query encrypted up front, its answer checked but not decrypted).
        #[arg(long)]
        key_holder: bool,
        /// Also print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the benchmark and prints a table.
pub fn run(a: Args) -> anyhow::Result<()> {
    match a.what {
        What::Search { gallery_size, dim, baseline_size, preset, repeats, batch, json } => {
            let cfg = BenchConfig {
                gallery_size,
                dim,
                baseline_size,
                preset: Preset::from_name(&preset)?,
                repeats,
                batch,
                simd: super::open::simd(),
                ..Default::default()
            };
            let r = hers_bench::run_search(&cfg)?;
            println!("{}", r.to_table());
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            }
        }
        What::Serve {
            server,
            keys: keys_dir,
            probes,
            clients,
            duration,
            token_file,
            enrolments,
            gallery,
            full_answers,
            key_holder,
            json,
        } => {
            let info = Remote::new(&server, None, Duration::from_secs(60))?.info()?;
            let keys = super::open::load_keys(&keys_dir)?;
            anyhow::ensure!(keys.public() == &info.public, "--keys are not the served gallery's key set");
            let client = Client::with_quantizer(keys, info.quantizer)?;
            let (_, dim, rows) = super::open::load_probes(&probes)?;
            anyhow::ensure!(dim == info.quantizer.dim, "probes are {dim}-D, the gallery {}-D", info.quantizer.dim);
            let cfg = LoadConfig {
                url: server,
                token: token_file.as_deref().map(read_token).transpose()?,
                clients,
                duration: Duration::from_secs(duration),
                enrolments,
                compact: !full_answers,
            };
            eprintln!("client CPU: {}", super::open::simd().describe());
            let mut rng = rand::rng();
            // The key holder's connection: its own copy of the keys, no retries (429s are counted).
            let conn = match key_holder {
                true => {
                    let options = ConnectOptions {
                        retry: RetryPolicy::none(),
                        compact_answers: !full_answers,
                        in_flight: 1,
                        ..ConnectOptions::default()
                    };
                    Some(Connection::connect(&cfg.url, super::open::load_keys(&keys_dir)?, options)?)
                }
                false => None,
            };
            let mut r = run_load(&cfg, &client, &rows, &mut rng, conn.as_ref())?;
            if let Some(g) = &gallery {
                r.in_process = Some(
                    in_process(g, &client, &rows, super::open::simd(), !full_answers, key_holder, &mut rng)
                        .with_context(|| format!("scoring {} in-process", g.display()))?,
                );
            }
            println!("{}", r.to_table());
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            }
        }
    }
    Ok(())
}
