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
    /// run.db (`store::rundb`), and index.db's bulk reads (`store::select`, `compare`).
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

/// The most of a client's text an error message quotes, in characters.
pub const MAX_QUOTED: usize = 80;
/// The longest error message sent to a client, in bytes: it travels in a header.
pub const MAX_MESSAGE: usize = 4096;

/// Text from a request as an error message quotes it: in double quotes, control
/// characters escaped, cut after [`MAX_QUOTED`] characters with an ellipsis (a 1 MB
/// selector must not come back whole).
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED {
            out.push('…');
            break;
        }
        if c.is_control() || c == '"' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A message cut to at most `max` bytes (on a character boundary), ending in an ellipsis
/// when cut.
pub fn bounded(message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = bounded(err.to_string(), MAX_MESSAGE);
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
            Error::Sqlite { ref source, .. } if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_bounded_and_escaped() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\x1b[2Jb\n"), "\"a\\u{1b}[2Jb\\n\"");
        let long = quote(&"x".repeat(1_000_000));
        assert_eq!(long.chars().count(), MAX_QUOTED + 3);
        assert!(long.ends_with("…\""));
        let cut = bounded("é".repeat(5000), 100);
        assert!(cut.len() <= 100 && cut.ends_with('…'), "{cut}");
        assert_eq!(bounded("short".into(), 100), "short");
    }
}
