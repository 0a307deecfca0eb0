//! `hers keygen`: generate the client's key set (secret key 0600, public parameters apart).

use std::path::PathBuf;

use anyhow::Context;
use encsearch::{ClientKeys, Preset};

/// Arguments of `hers keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory: `secret.key` (mode 0600, client only) and `public.json` (for the server).
    #[arg(long)]
    out: PathBuf,
    /// Parameter preset: n4096 (default, 4096 templates per ciphertext) or n8192.
    #[arg(long, default_value = "n4096")]
    preset: String,
}

/// Generates and saves a key set.
pub fn run(a: Args) -> anyhow::Result<()> {
    let params = Preset::from_name(&a.preset)?.params()?;
    let keys = ClientKeys::generate(params, &mut rand::rng())?;
    keys.save(&a.out).with_context(|| format!("writing keys to {}", a.out.display()))?;
    let p = &keys.public().params;
    eprintln!(
        "key {} (N = {}, t = {}, log q = {:.0}) → {}",
        keys.key_id(),
        p.degree,
        p.plaintext,
        p.log_q(),
        a.out.display()
    );
    Ok(())
}
