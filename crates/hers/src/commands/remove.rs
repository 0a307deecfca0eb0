//! `hers remove`: tombstone templates in a gallery (no re-encryption).

use std::path::PathBuf;

/// Arguments of `hers remove`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Gallery directory.
    #[arg(long)]
    gallery: PathBuf,
    /// Ids to remove (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', required = true)]
    ids: Vec<String>,
}

/// Removes `--ids` from `--gallery`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut g = super::open::open_gallery(&a.gallery)?;
    let n = g.remove(&a.ids)?;
    eprintln!("removed {n} ids; {} templates remain", g.len());
    Ok(())
}
