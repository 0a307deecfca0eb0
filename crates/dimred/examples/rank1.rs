//! Fits a config (optionally overriding its method), then measures rank-1 on a test set.
//!
//! ```text
//! cargo run --release -p dimred --example rank1 -- CONFIG TEST.parquet OUT_DIR [METHOD] [DIMS]
//! ```
//! DIMS is a comma list (default 16,32,64); rank-1 is the mean of 5 seeded probe draws (one
//! probe per identity, the rest as gallery, cosine).

use std::path::PathBuf;

use dimred::{Config, Method, Reducer, TrainOptions, metrics::rank1};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).init();
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        return Err("usage: rank1 CONFIG TEST.parquet OUT_DIR [METHOD] [DIMS]".into());
    }
    let mut cfg = Config::from_file(&a[0])?;
    if let Some(m) = a.get(3) {
        cfg.train.method = m.parse::<Method>()?;
    }
    let dims: Vec<usize> = a.get(4).map_or(Ok(vec![16, 32, 64]), |d| d.split(',').map(str::parse).collect())?;
    let train = embeddings::read_set(&cfg.data.train)?;
    let test = embeddings::read_set(&a[1])?;
    let opts = TrainOptions {
        out_dir: Some(PathBuf::from(&a[2])),
        resume: std::env::var_os("RESUME").is_some(),
        progress: true,
    };
    let t = std::time::Instant::now();
    let (r, _meta) = Reducer::fit(&cfg, &train, &opts)?;
    let secs = t.elapsed().as_secs_f64();
    let mut row = format!("| {} | {secs:.1} s |", cfg.train.method);
    for k in dims {
        if !r.output_dims().contains(&k) {
            row += " – |";
            continue;
        }
        let y = r.project(&test.data, k)?;
        let mean = (0..5).map(|s| rank1(&y, k, &test.labels, s)).sum::<f64>() / 5.0;
        row += &format!(" {mean:.3} |");
    }
    println!("{row}");
    Ok(())
}
