//! Python packages some tests need beyond the standard library. CI installs them and sets
//! a `GUILD_REQUIRE_*` variable, which makes their absence a failure; elsewhere such a
//! test says why it skips.

use std::process::{Command, Stdio};

/// Whether python3 imports `modules` (as an import statement lists them: `a, b`). When
/// it cannot: a failure if the environment variable `require` is set, else a line saying
/// the test skips and how to install them (`install`), and false.
#[track_caller]
pub fn python_imports(modules: &str, require: &str, install: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = match &probe {
        Ok(o) => String::from_utf8_lossy(&o.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set but python3 cannot import {modules} ({install}): {why}"
    );
    eprintln!("skipped: python3 cannot import {modules} ({install}): {why}");
    false
}

/// tensorboardX, which writes the event files of the collector and original-form tests
/// (`GUILD_REQUIRE_TBX`).
pub fn tensorboardx_available() -> bool {
    python_imports("tensorboardX", "GUILD_REQUIRE_TBX", "pip install tensorboardX")
}
