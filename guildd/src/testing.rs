//! What unit tests of full disks need: a small tmpfs mounted for the test (root only;
//! others skip with the reason, unless GUILD_REQUIRE_ROOT is set, as CI sets it), and a
//! file that fills it.

use std::path::{Path, PathBuf};

/// A tmpfs mounted on a folder; unmounted when dropped, however the test ends.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`) on `dir`, or says why it cannot and
    /// returns None (a panic when GUILD_REQUIRE_ROOT is set).
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = format!("cannot mount a tmpfs on {} (needs root): {other:?}", dir.display());
                assert!(
                    std::env::var_os("GUILD_REQUIRE_ROOT").is_none(),
                    "GUILD_REQUIRE_ROOT is set: {why}"
                );
                eprintln!("skipped: {why}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes zeros to `path` until the file system is full.
pub fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("cannot create the filler file");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    // What is left is smaller than a chunk.
    while file.write_all(&chunk[..512]).is_ok() {}
}
