//! `cargo run --release -p hers-bench --example search -- GALLERY_SIZE DIM [BASELINE_SIZE]`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse()).collect::<Result<_, _>>()?;
    let cfg = hers_bench::BenchConfig {
        gallery_size: a.first().copied().unwrap_or(100_000),
        dim: a.get(1).copied().unwrap_or(16),
        baseline_size: a.get(2).copied().unwrap_or(100_000),
        ..Default::default()
    };
    let r = hers_bench::run_search(&cfg)?;
    println!("{}", r.to_table());
    Ok(())
}
