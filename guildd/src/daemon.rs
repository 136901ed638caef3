//! What a daemon holds while it runs: the data-dir lock (one daemon per data dir), the
//! Unix socket (folder 0700, socket 0600, stale sockets probed and replaced), the optional
//! TCP listener, and the TCP token.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use guild_proto::locations::Locations;
use tokio::net::{TcpListener, UnixListener};

/// The dashboard's usual address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6333";

/// Where the TCP side listens.
#[derive(Clone, Copy, Debug)]
pub enum Listen {
    /// 127.0.0.1:6333, or a free loopback port when that one is taken.
    Default,
    /// Only the Unix socket.
    None,
    Addr(SocketAddr),
}

pub struct Listeners {
    pub unix: UnixListener,
    pub socket: PathBuf,
    pub tcp: Option<TcpListener>,
    /// The Unix socket came from systemd, which owns (and removes) its file.
    pub activated: bool,
    /// Held for the daemon's life: the data dir's lock.
    _lock: File,
}

impl Listeners {
    /// Takes the data dir's lock, then binds the socket and, when asked, TCP.
    /// `activated`: listening sockets systemd passed (see [`take_activated_sockets`]);
    /// a Unix one replaces binding the socket path, a TCP one replaces `listen`.
    pub async fn bind(locations: &Locations, listen: Listen, activated: Activated) -> anyhow::Result<Listeners> {
        create_private_dir(&locations.data_dir)?;
        let lock = lock_data_dir(&locations.lock_file())?;
        let passed_unix = activated.unix.map(UnixListener::from_std).transpose()?;
        let passed_tcp = activated.tcp.map(TcpListener::from_std).transpose()?;
        let activated = passed_unix.is_some();
        let unix = match passed_unix {
            Some(listener) => {
                // Whatever mode the activator gave the socket, it is this user's alone.
                if listener
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p == locations.socket))
                    == Some(true)
                {
                    std::fs::set_permissions(&locations.socket, std::fs::Permissions::from_mode(0o600))?;
                }
                listener
            }
            None => bind_socket(&locations.socket).await?,
        };
        let listen = if passed_tcp.is_some() { Listen::None } else { listen };
        let tcp = match listen {
            Listen::None => None,
            Listen::Addr(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?,
            ),
            Listen::Default => match TcpListener::bind(DEFAULT_LISTEN).await {
                Ok(listener) => Some(listener),
                Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
                    let listener = TcpListener::bind("127.0.0.1:0")
                        .await
                        .context("cannot listen on 127.0.0.1")?;
                    tracing::warn!("{DEFAULT_LISTEN} is taken; serving on {}", listener.local_addr()?);
                    Some(listener)
                }
                Err(err) => return Err(err).with_context(|| format!("cannot listen on {DEFAULT_LISTEN}")),
            },
        };
        Ok(Listeners {
            unix,
            socket: locations.socket.clone(),
            tcp: tcp.or(passed_tcp),
            activated,
            _lock: lock,
        })
    }
}

/// Listening sockets a service manager passed to this process (socket activation),
/// non-blocking.
#[derive(Debug, Default)]
pub struct Activated {
    pub unix: Option<std::os::unix::net::UnixListener>,
    pub tcp: Option<std::net::TcpListener>,
}

/// Takes the listening sockets systemd passes to a socket-activated service (its
/// `LISTEN_PID`/`LISTEN_FDS` protocol, read by `listenfd`, which checks each descriptor's
/// kind): the first Unix stream listener is the API's socket, the first TCP listener the
/// dashboard's port, both made non-blocking. Clears those variables so runs do not inherit
/// them. Call before any thread starts.
pub fn take_activated_sockets() -> std::io::Result<Activated> {
    let mut passed = listenfd::ListenFd::from_env();
    // SAFETY: called from main before the runtime or any other thread exists.
    unsafe { std::env::remove_var("LISTEN_FDNAMES") };
    let mut activated = Activated::default();
    for index in 0..passed.len() {
        if activated.unix.is_none()
            && let Ok(Some(listener)) = passed.take_unix_listener(index)
        {
            listener.set_nonblocking(true)?;
            activated.unix = Some(listener);
        } else if activated.tcp.is_none()
            && let Ok(Some(listener)) = passed.take_tcp_listener(index)
        {
            listener.set_nonblocking(true)?;
            activated.tcp = Some(listener);
        } else {
            tracing::warn!(
                "ignoring passed socket {index} (of LISTEN_FDS): not a Unix or TCP stream listener, or one more of a kind already taken"
            );
        }
    }
    Ok(activated)
}

/// Creates a folder only this user may enter (0700), or makes an existing one so: a data
/// folder others can read would hand them the token. A folder another user owns is
/// refused.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
        return Ok(());
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "{} belongs to uid {}, not to you (uid {me}): guildd keeps its token there, so it must be yours alone",
            dir.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
        tracing::warn!(
            "{} was mode {mode:04o} (others could enter it); it is 0700 now",
            dir.display()
        );
    }
    Ok(())
}

/// Takes the data dir's lock and records this daemon's pid in it. The pid is written over
/// the old one and the file cut after it, so a second daemon never reads an empty file
/// from a daemon that holds the lock (only from one that has not written yet).
fn lock_data_dir(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // An exclusive flock(2): released by the kernel however the daemon ends.
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let data_dir = path.parent().unwrap_or(path).display();
            return Err(match lock_holder(&file) {
                Some(pid) => anyhow::anyhow!("another guildd (pid {pid}) is running for data dir {data_dir}"),
                None => anyhow::anyhow!(
                    "another guildd (pid unknown: it holds the lock but has not recorded its pid) is running for data dir {data_dir}"
                ),
            });
        }
        Err(TryLockError::Error(err)) => return Err(err).with_context(|| format!("cannot lock {}", path.display())),
    }
    let pid = format!("{}\n", std::process::id());
    file.write_all_at(pid.as_bytes(), 0)?;
    file.set_len(pid.len() as u64)?;
    Ok(file)
}

/// The pid a lock holder recorded: the first line of its lock file. A daemon that has
/// just taken the lock writes it a moment later, so an empty file is read again for up
/// to half a second.
fn lock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::FileExt;
    for _ in 0..50 {
        let mut buf = [0u8; 32];
        let n = file.read_at(&mut buf, 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) {
            return Some(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

async fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    if path.exists() {
        // Only a socket nobody answers on may be replaced.
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!("another daemon is listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    // The socket must be 0600 before anyone can connect: bind under a umask that says so.
    // SAFETY: umask only changes this process's file-creation mask; nothing else creates
    // files while the daemon binds.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The data dir's TCP token: created once (32 random bytes, hex, mode 0600), then reused
/// while it is this user's alone. A token file others could read (or that another user
/// owns) is replaced by a new one: the old token may be known.
pub fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let private = meta.is_file() && meta.uid() == me && meta.mode() & 0o077 == 0;
        if private {
            if let Ok(token) = std::fs::read_to_string(path) {
                let token = token.trim().to_string();
                if token.len() >= 32 {
                    return Ok(token);
                }
            }
        } else {
            tracing::warn!(
                "{} was mode {:04o} (uid {}): others may have read the token, so it is replaced",
                path.display(),
                meta.mode() & 0o7777,
                meta.uid()
            );
        }
    }
    let token = crate::secret::random_hex(32).map_err(|e| anyhow::anyhow!("cannot make a token: {e}"))?;
    // Written beside it and renamed over it: a new file gets mode 0600 from its first
    // byte, whatever the old one's mode was.
    let fresh = path.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_file(&fresh);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&fresh)?;
        file.write_all(token.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&fresh, path)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&fresh);
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(token)
}

/// Raises this process's open-file limit to its hard limit: every connection, run file
/// and database holds descriptors, and a soft limit of 1,024 is soon reached. Returns the
/// limit in force.
pub fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur as u64;
            }
        }
    }
    limit.rlim_cur as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// flock conflicts between two opens of the file even in one process, so a second
    /// lock here stands for a second daemon.
    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("guild-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("guildd.lock");
        let held = lock_data_dir(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let refused = lock_data_dir(&path).unwrap_err().to_string();
        assert_eq!(
            refused,
            format!(
                "another guildd (pid {}) is running for data dir {}",
                std::process::id(),
                dir.display()
            )
        );
        drop(held);
        lock_data_dir(&path).expect("the lock is free once its holder is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
