//! Where a daemon keeps its data and listens. Both the daemon and the CLI resolve the
//! same way, so `--data-dir`/`GUILD_DATA_DIR` and `--socket`/`GUILD_SOCKET` pick a daemon.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("cannot find a home folder for Guild's data; set GUILD_DATA_DIR or pass --data-dir")]
    NoHome,
}

#[derive(Debug, Clone)]
pub struct Locations {
    pub data_dir: PathBuf,
    pub socket: PathBuf,
}

impl Locations {
    /// `data_dir` and `socket` are what the user asked for (flag or environment).
    ///
    /// Defaults: data in `$XDG_DATA_HOME/guild`; socket in `$XDG_RUNTIME_DIR/guild/guildd.sock`.
    /// When the data dir is given but the socket is not, the socket lives in the data dir,
    /// so two daemons with their own data dirs never share a socket. Without a runtime
    /// dir the socket also lives in the data dir.
    pub fn resolve(data_dir: Option<PathBuf>, socket: Option<PathBuf>) -> Result<Self, LocationError> {
        let explicit_data = data_dir.is_some();
        let data_dir = match data_dir {
            Some(dir) => absolute(&dir),
            None => directories::ProjectDirs::from("", "", "guild")
                .ok_or(LocationError::NoHome)?
                .data_dir()
                .to_path_buf(),
        };
        let socket = match socket {
            Some(path) => absolute(&path),
            None if explicit_data => data_dir.join("guildd.sock"),
            None => directories::BaseDirs::new()
                .and_then(|dirs| dirs.runtime_dir().map(|dir| dir.join("guild").join("guildd.sock")))
                .unwrap_or_else(|| data_dir.join("guildd.sock")),
        };
        Ok(Locations { data_dir, socket })
    }

    pub fn index_db(&self) -> PathBuf {
        self.data_dir.join("index.db")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join("guildd.lock")
    }

    pub fn token_file(&self) -> PathBuf {
        self.data_dir.join("token")
    }

    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join("guildd.log")
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
