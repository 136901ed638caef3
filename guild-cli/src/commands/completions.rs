//! `guild completions bash|zsh|fish`: the shell code that registers guild's completions.
//! It calls `guild` back while completing (`COMPLETE=SHELL guild -- WORDS...`), so the
//! candidates come from this binary's own argument definitions and, for runs, models,
//! flags and keys, from the daemon (`candidates`).

use clap::{Args, ValueEnum};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

/// The variable that switches `guild` into completing (clap_complete's default).
pub const VAR: &str = "COMPLETE";

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to write the registration for.
    pub shell: Shell,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    let mut script = Vec::new();
    shell.write_registration(VAR, "guild", "guild", &completer(), &mut script)?;
    crate::out::write_bytes(&script)?;
    Ok(0)
}

/// How the shell calls guild back: as it was called now (`guild` on PATH stays `guild`;
/// a path is made absolute), as `COMPLETE=bash guild` does.
fn completer() -> String {
    let called = std::path::PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "guild".into()));
    let called = if called.components().count() > 1 {
        std::path::absolute(&called).unwrap_or(called)
    } else {
        called
    };
    called.to_string_lossy().into_owned()
}
