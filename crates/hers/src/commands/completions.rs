//! `hers completions`: shell completion scripts.

use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `hers completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    shell: Shell,
}

/// Writes the completion script for the shell to stdout.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "hers", &mut std::io::stdout());
    Ok(())
}
