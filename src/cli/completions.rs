//! `reflow completions SHELL`: prints a completion script generated from the CLI definition.

use clap::Args;
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = super::command();
    clap_complete::generate(args.shell, &mut cmd, "reflow", &mut std::io::stdout());
    Ok(())
}
