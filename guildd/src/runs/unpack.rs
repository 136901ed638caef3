//! Bringing run folders in from elsewhere (import): an archive or a folder may come from
//! anyone, so only plain files, folders and symbolic links that stay inside their own run
//! are taken. Guild's own `guild.d` holds no links at all (a `guild.d` linked to another
//! run would let an import rewrite that run). Files land with modes 0644 or 0755 (0755
//! when any execute bit was set), folders 0755, whatever the source said; nothing is
//! written through a link. An archive's unpacked size is bounded, so a small gzip bomb
//! cannot fill the disk.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// What an archive may unpack to unless the request says otherwise: 256 MiB plus 32 times
/// the archive's own size (run folders compress 2-10x; a gzip bomb a thousandfold).
pub fn default_limit(archive_bytes: u64) -> u64 {
    (256 << 20) + archive_bytes.saturating_mul(32)
}

const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;
const DIR_MODE: u32 = 0o755;

/// The mode a file lands with: 0755 when the source had any execute bit, else 0644.
fn file_mode(source_mode: u32) -> u32 {
    if source_mode & 0o111 != 0 { EXEC_MODE } else { FILE_MODE }
}

fn refused(source: &Path, what: String) -> Error {
    Error::Invalid(format!("{}: {what}; nothing was imported", source.display()))
}

/// A relative path with only normal parts (no `/`, `..`, `.` prefixes), or an error.
fn plain_relative(source: &Path, path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            _ => {
                return Err(refused(
                    source,
                    format!(
                        "entry {} leaves the archive's folder",
                        crate::error::quote(&path.to_string_lossy())
                    ),
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refused(source, "an entry has an empty name".into()));
    }
    Ok(out)
}

/// Whether `rel` (a path inside a folder of runs: `RUN/...`) is in a run's `guild.d`, or
/// is that `guild.d` itself.
fn in_guild_d(rel: &Path) -> bool {
    rel.components().nth(1).is_some_and(|c| c.as_os_str() == "guild.d")
}

/// Checks a symbolic link at `rel` (relative to the folder of runs, `RUN/...`) pointing to
/// `target`: it must be relative, climb only at its start (`../x`, never `x/../..`, whose
/// meaning depends on what `x` is), and land inside the same run. Links in `guild.d` are
/// refused outright.
pub fn check_link(source: &Path, rel: &Path, target: &Path) -> Result<()> {
    let name = || crate::error::quote(&rel.to_string_lossy());
    if in_guild_d(rel) {
        return Err(refused(
            source,
            format!(
                "{} is a link; Guild's own guild.d must hold only files and folders",
                name()
            ),
        ));
    }
    let mut depth = rel.components().count() as isize - 1; // the link's folder, from the runs' folder
    let mut climbing = true;
    for part in target.components() {
        match part {
            Component::ParentDir if climbing => depth -= 1,
            Component::Normal(_) => {
                climbing = false;
                depth += 1;
            }
            Component::CurDir => {}
            _ => {
                return Err(refused(
                    source,
                    format!(
                        "link {} points to {}, outside its run (links must be relative and stay inside the run)",
                        name(),
                        crate::error::quote(&target.to_string_lossy())
                    ),
                ));
            }
        }
        // Depth 0 is the folder of runs; a link must stay at depth 1 or below (in its run).
        if depth < 1 {
            return Err(refused(
                source,
                format!(
                    "link {} points to {}, outside its run",
                    name(),
                    crate::error::quote(&target.to_string_lossy())
                ),
            ));
        }
    }
    Ok(())
}

/// Makes the folders of `rel` under `root`, refusing to pass through anything that is not
/// a real folder (a link unpacked earlier must not redirect later entries).
fn make_parents(source: &Path, root: &Path, rel: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(refused(
                    source,
                    format!(
                        "entry {} lies under {}, which is not a folder",
                        crate::error::quote(&rel.to_string_lossy()),
                        at.strip_prefix(root).unwrap_or(&at).display()
                    ),
                ));
            }
            Err(_) => {
                std::fs::create_dir(&at).map_err(|e| Error::io("cannot create", &at, e))?;
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(DIR_MODE))
                    .map_err(|e| Error::io("cannot set the mode of", &at, e))?;
            }
        }
    }
    Ok(())
}

/// Counts what an unpack writes against its bound.
struct Budget<'a> {
    source: &'a Path,
    limit: u64,
    used: u64,
}

impl Budget<'_> {
    fn take(&mut self, bytes: u64) -> Result<()> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(Error::Invalid(format!(
                "{}: unpacks to more than {} (the import limit; pass --max-size to allow more); nothing was imported",
                self.source.display(),
                human_bytes(self.limit)
            )));
        }
        Ok(())
    }
}

/// `268435456` -> `256 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{} {}", value as u64, UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Unpacks a `.tar.gz` of runs into `into` (which must not exist), taking at most `limit`
/// bytes of file contents.
pub fn unpack_archive(archive: &Path, into: &Path, limit: u64) -> Result<()> {
    let file = File::open(archive).map_err(|e| Error::io("cannot open", archive, e))?;
    std::fs::create_dir(into).map_err(|e| Error::io("cannot create", into, e))?;
    let not_an_archive = |e: std::io::Error| {
        Error::Invalid(format!(
            "{}: not a .tar.gz of runs ({e}); nothing was imported",
            archive.display()
        ))
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut budget = Budget {
        source: archive,
        limit,
        used: 0,
    };
    for entry in tar.entries().map_err(not_an_archive)? {
        let mut entry = entry.map_err(not_an_archive)?;
        let raw_path = entry.path().map_err(not_an_archive)?.into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let rel = plain_relative(archive, &raw_path)?;
        let dest = into.join(&rel);
        make_parents(archive, into, &rel)?;
        match kind {
            tar::EntryType::Directory => match std::fs::symlink_metadata(&dest) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(refused(
                        archive,
                        format!("{} appears twice", crate::error::quote(&rel.to_string_lossy())),
                    ));
                }
                Err(_) => {
                    std::fs::create_dir(&dest).map_err(|e| Error::io("cannot create", &dest, e))?;
                    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(DIR_MODE))
                        .map_err(|e| Error::io("cannot set the mode of", &dest, e))?;
                }
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let declared = entry.header().size().map_err(not_an_archive)?;
                budget.take(declared)?;
                let mode = file_mode(entry.header().mode().unwrap_or(0));
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&dest)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => refused(
                            archive,
                            format!("{} appears twice", crate::error::quote(&rel.to_string_lossy())),
                        ),
                        _ => Error::io("cannot create", &dest, e),
                    })?;
                // The declared size was counted; the copy stops there whatever follows.
                copy_bounded(&mut (&mut entry).take(declared), &mut out, &dest)?;
                out.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::io("cannot set the mode of", &dest, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(not_an_archive)?
                    .ok_or_else(|| refused(archive, format!("link {} has no target", rel.display())))?
                    .into_owned();
                check_link(archive, &rel, &target)?;
                std::os::unix::fs::symlink(&target, &dest).map_err(|e| Error::io("cannot create", &dest, e))?;
            }
            tar::EntryType::Link => {
                return Err(refused(
                    archive,
                    format!(
                        "{} is a hard link; Guild archives hold none",
                        crate::error::quote(&rel.to_string_lossy())
                    ),
                ));
            }
            other => {
                return Err(refused(
                    archive,
                    format!(
                        "{} is a {other:?} entry; only files, folders and links are taken",
                        crate::error::quote(&rel.to_string_lossy())
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn copy_bounded(from: &mut impl Read, to: &mut File, dest: &Path) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "{}: the archive is cut short or corrupt ({e}); nothing was imported",
                    dest.display()
                )));
            }
        };
        to.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write", dest, e))?;
    }
}

/// Checks a run folder that is already on disk (an import from a folder) before it is
/// copied: `guild.d` and `guild.d/run.db` are real, every link stays inside the run, and
/// there is nothing but files, folders and links.
pub fn check_folder(run_dir: &Path) -> Result<()> {
    let Some(run_name) = run_dir.file_name() else {
        return Err(refused(run_dir, "not a run folder".into()));
    };
    let guild_d = run_dir.join("guild.d");
    for path in [guild_d.clone(), guild_d.join("run.db")] {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        if meta.file_type().is_symlink() {
            return Err(refused(
                run_dir,
                format!(
                    "{} is a link; Guild's own guild.d must hold only files and folders",
                    path.display()
                ),
            ));
        }
    }
    for entry in walkdir::WalkDir::new(run_dir).min_depth(1) {
        let entry = entry.map_err(|e| walk_error(run_dir, e))?;
        let rel = entry.path().strip_prefix(run_dir).unwrap_or(entry.path());
        let kind = entry.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| Error::io("cannot read", entry.path(), e))?;
            check_link(run_dir, &Path::new(run_name).join(rel), &target)?;
        } else if !kind.is_dir() && !kind.is_file() {
            return Err(refused(
                run_dir,
                format!("{} is not a file, folder or link", rel.display()),
            ));
        }
    }
    Ok(())
}

/// A walk's error as ours, naming the path it could not read.
fn walk_error(root: &Path, err: walkdir::Error) -> Error {
    let path = err.path().unwrap_or(root).to_path_buf();
    let io = err
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("a link loop"));
    Error::io("cannot read", path, io)
}

/// Copies a checked run folder: files with normalised modes, folders 0755, links as
/// links. `skip` leaves out paths (relative to `from`).
pub fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<()> {
    let entries = walk(from)?;
    std::fs::create_dir_all(to).map_err(|e| Error::io("cannot create", to, e))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| Error::io("cannot set the mode of", to, e))?;
    for rel in entries {
        if skip(&rel) {
            continue;
        }
        let (src, dst) = (from.join(&rel), to.join(&rel));
        let meta = std::fs::symlink_metadata(&src).map_err(|e| Error::io("cannot read", &src, e))?;
        if meta.is_dir() {
            std::fs::create_dir_all(&dst).map_err(|e| Error::io("cannot create", &dst, e))?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| Error::io("cannot set the mode of", &dst, e))?;
        } else if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&src).map_err(|e| Error::io("cannot read", &src, e))?;
            std::os::unix::fs::symlink(link, &dst).map_err(|e| Error::io("cannot create", &dst, e))?;
        } else if meta.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("cannot copy", &src, e))?;
            std::fs::set_permissions(
                &dst,
                std::fs::Permissions::from_mode(file_mode(meta.permissions().mode())),
            )
            .map_err(|e| Error::io("cannot set the mode of", &dst, e))?;
        }
    }
    Ok(())
}

/// Relative paths of everything under `root` (folders before their contents, each
/// folder's entries by name); links are not followed.
pub fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| walk_error(root, e))?;
        out.push(entry.path().strip_prefix(root).unwrap_or(entry.path()).to_path_buf());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_ok(rel: &str, target: &str) -> bool {
        check_link(Path::new("a.tar.gz"), Path::new(rel), Path::new(target)).is_ok()
    }

    #[test]
    fn links_must_stay_inside_their_run() {
        assert!(link_ok("run/latest", "checkpoints/10"));
        assert!(link_ok("run/a/b", "../c"));
        assert!(link_ok("run/a/b", "./c"));
        assert!(!link_ok("run/a", "../other-run/guild.d"));
        assert!(!link_ok("run/a", ".."));
        assert!(!link_ok("run/a", "/etc/passwd"));
        assert!(!link_ok("run/a/b", "../../x"));
        // `c/..` means the run itself only while c is a folder: refused.
        assert!(!link_ok("run/a", "c/../d"));
        // Nothing in guild.d is a link, nor guild.d itself.
        assert!(!link_ok("run/guild.d", "../other/guild.d"));
        assert!(!link_ok("run/guild.d/run.db", "x"));
    }

    #[test]
    fn modes_are_normalised() {
        assert_eq!(file_mode(0o777), 0o755);
        assert_eq!(file_mode(0o666), 0o644);
        assert_eq!(file_mode(0o100), 0o755);
        assert_eq!(file_mode(0o600), 0o644);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 bytes");
    }
}
