//! File systems and files: a small tmpfs to fill (full-disk tests), and a path's mode.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The permission bits of a path.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A small tmpfs mounted for one test, unmounted when dropped however the test ends.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. "4m") on `dir`, created if needed.
    /// Where that cannot be done (not root), prints why the test skips and returns None;
    /// with GUILD_REQUIRE_ROOT set (CI sets it) that is a failure instead.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir: dir.to_path_buf() }),
            other => {
                let why = format!(
                    "cannot mount a tmpfs on {} (this test needs root): {other:?}",
                    dir.display()
                );
                assert!(
                    std::env::var_os("GUILD_REQUIRE_ROOT").is_none(),
                    "GUILD_REQUIRE_ROOT is set: {why}"
                );
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    /// Fills the file system with one file of zeros; returns the file (remove it to free
    /// the space).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(".filler");
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..512]).is_ok() {}
        while file.write_all(&chunk[..1]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
