//! The daemon's errors, and the one place they become gRPC statuses.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong: a bad flag, an unknown model, a bad Guild file.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is fine but the run's state forbids it (deleting a running run).
    #[error("{0}")]
    Conflict(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {}: {source}", path.display())]
    Db {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration of {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// A bulk read through rusqlite (compare, selection): see `store::compare`.
    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub fn db(path: &std::path::Path) -> impl FnOnce(sqlx::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| Error::Db { path, source }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::Invalid(_) => tonic::Status::invalid_argument(message),
            Error::NotFound(_) => tonic::Status::not_found(message),
            Error::Conflict(_) => tonic::Status::failed_precondition(message),
            Error::ShuttingDown => tonic::Status::unavailable(message),
            // The file system said no: the user can act on that (space, permissions).
            Error::Io { ref source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                tracing::error!("{message}");
                tonic::Status::resource_exhausted(message)
            }
            Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::error!("{message}");
                tonic::Status::permission_denied(message)
            }
            // SQLITE_FULL: the disk (or quota) is full.
            Error::Db { ref source, .. }
                if source.as_database_error().and_then(|e| e.code()).as_deref() == Some("13") =>
            {
                tracing::error!("{message}");
                tonic::Status::resource_exhausted(format!("{message} (is the disk full?)"))
            }
            Error::Io { .. } | Error::Db { .. } | Error::Migrate { .. } | Error::Sqlite { .. } => {
                tracing::error!("{message}");
                tonic::Status::internal(message)
            }
        }
    }
}
