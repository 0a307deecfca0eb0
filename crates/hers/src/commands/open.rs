//! Opening what several commands share — key sets and galleries — with errors that name the
//! path and, for a gallery used with keys, check that the keys are the gallery's.

use std::path::Path;

use anyhow::Context;
use encsearch::{ClientKeys, Gallery};

/// Loads the key set in `path`.
pub(crate) fn load_keys(path: &Path) -> anyhow::Result<ClientKeys> {
    ClientKeys::load(path).with_context(|| format!("loading keys {}", path.display()))
}

/// Opens the gallery in `path`.
pub(crate) fn open_gallery(path: &Path) -> anyhow::Result<Gallery> {
    Gallery::open(path).with_context(|| format!("opening gallery {}", path.display()))
}

/// Opens the gallery in `path` and checks that `keys` enrolled it.
pub(crate) fn open_gallery_for(path: &Path, keys: &ClientKeys) -> anyhow::Result<Gallery> {
    let g = open_gallery(path)?;
    g.manifest().public.key_id.ensure_eq(keys.key_id()).context("the gallery was enrolled with another key")?;
    Ok(g)
}
