//! `hers gallery check`: verify a gallery directory and, with `--repair`, remove the files a
//! crash left that no manifest names (never a committed segment).

use std::path::PathBuf;

use anyhow::Context;
use encsearch::store::check_gallery;

use super::open::{lock_wait, say_waiting};

/// Arguments of `hers gallery`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: GalleryCommand,
}

/// `hers gallery` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GalleryCommand {
    /// Verify the manifest, every segment's size and checksum and the id map, and list files
    /// no manifest names.
    Check {
        /// Gallery directory.
        gallery: PathBuf,
        /// Remove the files no manifest names (under the writer lock).
        #[arg(long)]
        repair: bool,
        /// With --repair: fail at once when another process is writing to the gallery.
        #[arg(long)]
        no_wait: bool,
    },
}

/// Runs `hers gallery …`; exits non-zero when committed data has a problem.
pub fn run(a: Args) -> anyhow::Result<()> {
    match a.command {
        GalleryCommand::Check { gallery, repair, no_wait } => {
            let r = check_gallery(&gallery, repair, lock_wait(no_wait), |pid| say_waiting(&gallery, pid))
                .with_context(|| format!("checking gallery {}", gallery.display()))?;
            println!("{}: {} segments, {} templates listed", gallery.display(), r.segments, r.templates);
            for p in &r.problems {
                println!("problem: {p}");
            }
            for p in &r.unlisted {
                let what = if r.removed.contains(p) { "removed" } else { "unlisted" };
                println!(
                    "{what}: {} (no manifest names it: left by an interrupted write, or being written right now)",
                    p.display()
                );
            }
            if !repair && !r.unlisted.is_empty() {
                println!("run `hers gallery check {} --repair` to remove the unlisted files", gallery.display());
            }
            if !r.is_sound() {
                anyhow::bail!("{} problem(s) with committed data in {}", r.problems.len(), gallery.display());
            }
            println!("ok: every committed segment verified");
            Ok(())
        }
    }
}
