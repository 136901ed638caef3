//! Shell completion as clap_complete's engine answers it (the protocol fish and zsh use):
//! candidates from this test's daemon.

use std::process::Command;

use super::{Env, guild_exe};

/// `guild` as a shell calls it back to complete: this test's daemon, no other arguments.
pub fn completing(env: &Env, shell: &str) -> Command {
    let mut cmd = Command::new(guild_exe());
    cmd.env("COMPLETE", shell)
        .env("GUILD_DATA_DIR", &env.data_dir)
        .env("GUILD_SOCKET", &env.socket)
        .stdin(std::process::Stdio::null());
    cmd
}

/// What clap_complete's engine answers fish for `guild -C PROJECT WORDS...` (the last
/// word is the one being completed): one candidate a line, `VALUE<TAB>HELP`.
#[track_caller]
pub fn fish_lines(env: &Env, words: &[&str]) -> Vec<String> {
    let out = completing(env, "fish")
        .args(["--", "guild", "-C"])
        .arg(&env.project)
        .args(words)
        .output()
        .expect("cannot run guild");
    assert!(out.status.success(), "completion failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The values of [`fish_lines`], without their help.
#[track_caller]
pub fn fish(env: &Env, words: &[&str]) -> Vec<String> {
    fish_lines(env, words)
        .iter()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}
