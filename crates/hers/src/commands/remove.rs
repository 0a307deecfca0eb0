//! `hers remove`: tombstone templates in a gallery (no re-encryption).

use std::path::PathBuf;

use super::open::{load_keys, lock_wait, open_gallery, say_waiting};

/// Arguments of `hers remove`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Gallery directory.
    #[arg(long)]
    gallery: PathBuf,
    /// Key directory of the gallery: the removal is sealed with it (a gallery a key holder
    /// enrolled is sealed, and takes only sealed writes).
    #[arg(long)]
    keys: Option<PathBuf>,
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
    let seal = match &a.keys {
        Some(keys) => {
            let client = encsearch::Client::with_quantizer(load_keys(keys)?, g.quantizer())?;
            let expect = encsearch::seal::Expect { key_id: client.keys().key_id(), quantizer: client.quantizer() };
            Some(client.keys().seal_key()?.seal_remove(&g.id_table(), expect, &a.ids, &mut rand::rng())?)
        }
        None => None,
    };
    let n = g.remove_sealed(&a.ids, seal)?;
    eprintln!("removed {n} ids; {} templates remain", g.len());
    Ok(())
}
