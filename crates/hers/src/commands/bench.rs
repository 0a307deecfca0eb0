//! `hers bench search`: our encrypted search vs the HERS algorithm vs plaintext, in one run.

use encsearch::{BenchConfig, Preset};

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
        /// Also print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the benchmark and prints a table.
pub fn run(a: Args) -> anyhow::Result<()> {
    match a.what {
        What::Search { gallery_size, dim, baseline_size, preset, repeats, json } => {
            let cfg = BenchConfig {
                gallery_size,
                dim,
                baseline_size,
                preset: Preset::from_name(&preset)?,
                repeats,
                simd: super::open::simd(),
                ..Default::default()
            };
            let r = encsearch::run_bench(&cfg)?;
            println!("{}", r.to_table());
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            }
        }
    }
    Ok(())
}
