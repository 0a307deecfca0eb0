//! `hers remove`: tombstone templates in a gallery (no re-encryption).

use std::path::PathBuf;

use super::open::{lock_wait, open_gallery, say_waiting};

/// Arguments of `hers remove`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Gallery directory.
    #[arg(long)]
    gallery: PathBuf,
    /// Ids to remove (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', required = true)]
    ids: Vec<String>,
    /// Fail at once when another process is writing to the gallery (default: wait for it).
    #[arg(long)]
    no_wait: bool,
}

/// Removes `--ids` from `--gallery`, holding the gallery's writer lock.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut g = open_gallery(&a.gallery)?;
    g.lock_for_writing(lock_wait(a.no_wait), |pid| say_waiting(&a.gallery, pid))?;
    let n = g.remove(&a.ids)?;
    eprintln!("removed {n} ids; {} templates remain", g.len());
    Ok(())
}
