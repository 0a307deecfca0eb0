//! The benchmarks of `hers bench`, apart from the libraries they measure: `search.rs` times
//! encrypted search against the HERS algorithm and plaintext brute force on a synthetic
//! gallery (`hers bench search`); `serve.rs` is a closed-loop load generator against a running
//! server, with the in-process reference beside it (`hers bench serve`).
//!
//! ```no_run
//! # fn main() -> encsearch::Result<()> {
//! let report = hers_bench::run_search(&hers_bench::BenchConfig { gallery_size: 100_000, ..Default::default() })?;
//! println!("{}", report.to_table());
//! # Ok(())
//! # }
//! ```

mod search;
mod serve;

pub use search::{BenchConfig, BenchReport, run as run_search};
pub use serve::{EnrolRow, InProcess, LoadConfig, LoadReport, LoadRow, in_process, run as run_load};
