//! The one error type of this crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value could not be parsed; `key` names the variable or the
    /// flag it came from.
    #[error("configuration: {key}: {message}")]
    Config { key: String, message: String },

    /// No connection came free within the pool timeout, or SQLite stayed locked
    /// past `busy_timeout`. Retrying later may succeed.
    #[error("the database is busy; try again shortly")]
    Busy,

    /// The disk holding the database is full (SQLite's `SQLITE_FULL`, also given
    /// when the file reaches `max_page_count`): the write was rolled back, nothing
    /// of it was kept, and reads go on. Writes succeed again, on the same
    /// connections, once space is freed.
    #[error("the disk holding the database is full")]
    DiskFull,

    /// The [`Executor`](crate::Executor) has stopped and takes no more work.
    #[error("the database threads have stopped")]
    Stopped,

    /// A job on an [`Executor`](crate::Executor) panicked before it answered.
    #[error("a database job panicked")]
    Panicked,

    /// The database could not be opened or a connection could not be set up.
    #[error("cannot open the database {path}: {message}")]
    Open { path: PathBuf, message: String },

    /// A PostgreSQL server could not be connected to. `database` is the URL without
    /// its password; `message` is the server's (or libpq's) own.
    #[error("cannot connect to {database}: {message}")]
    Connect { database: String, message: String },

    /// The operation exists for SQLite files only (`backup`, `restore`): on
    /// PostgreSQL the message names the server's own tool.
    #[error("{0}")]
    Unsupported(String),

    /// A pragma (SQLite) or setting (PostgreSQL) read back at start-up does not
    /// hold the configured value.
    #[error("setting {name} did not take: expected {expected}, the database reports {actual}")]
    Pragma {
        name: &'static str,
        expected: String,
        actual: String,
    },

    /// The file was migrated by a newer build than this one.
    #[error(
        "the database has migrations this build does not know ({}); run a newer build or restore a backup",
        .0.join(", ")
    )]
    SchemaTooNew(Vec<String>),

    /// Migrations are pending, so the schema is not the one this build expects.
    #[error("{} migration(s) pending ({}); run `make migrate`", .0.len(), .0.join(", "))]
    MigrationsPending(Vec<String>),

    #[error("migration failed: {0}")]
    Migration(String),

    /// A schema command stopped before changing anything: what it would do loses
    /// data it was not told to lose (`force`, `loses_data`), or has nothing to
    /// work on. The message says how to go on.
    #[error("{0}")]
    Refused(String),

    #[error("backup: {0}")]
    Backup(String),

    /// A server holds the database (see `ServerLock`).
    #[error("{} is in use by a running server; stop it first", .0.display())]
    Locked(PathBuf),

    #[error("restore: {0}")]
    Restore(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Query(diesel::result::Error),
}

/// `Result` with this crate's error: what a closure given to [`Db::write`] or
/// [`Db::read`](crate::Db::read) returns when it runs plain Diesel queries (`?`
/// converts their errors).
///
/// [`Db::write`]: crate::Db::write
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        if is_busy(&err) {
            Self::Busy
        } else if is_disk_full(&err) {
            Self::DiskFull
        } else {
            Self::Query(err)
        }
    }
}

impl Error {
    /// True when the failure was a lack of space: SQLite's `SQLITE_FULL`, or a
    /// file write that met `ENOSPC` or `EDQUOT`.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::DiskFull => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ),
            Self::Query(err) => is_disk_full(err),
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// True when the database could not run the statement for now, and the request
/// may succeed if retried: SQLite gave up waiting for a lock (`SQLITE_BUSY` /
/// `SQLITE_LOCKED` after `busy_timeout`); PostgreSQL's connection was lost (the
/// server stopped or restarted: the pool opens a new one when it is back), or
/// the statement ran past `statement_timeout`.
pub fn is_busy(err: &diesel::result::Error) -> bool {
    use diesel::result::DatabaseErrorKind;
    match err {
        diesel::result::Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                // SQLite
                "database is locked",
                "database table is locked",
                // PostgreSQL (libpq and server messages)
                "server closed the connection",
                "no connection to the server",
                "terminating connection due to administrator command",
                "connection to server",
                "canceling statement due to statement timeout",
            ]
            .iter()
            .any(|known| message.contains(known))
        }
        _ => false,
    }
}

/// True when SQLite could not write for lack of space (`SQLITE_FULL`, "database
/// or disk is full"), in a statement or in the `COMMIT` that writes the WAL.
///
/// On a full filesystem SQLite's unix VFS reports a write that meets `ENOSPC` as
/// `SQLITE_FULL`: a full tmpfs (`tests/disk_full.rs`) and a full ext4 image both
/// gave it, from the statement or from the `COMMIT`, and never `SQLITE_IOERR`.
/// The `SQLITE_IOERR` family ("disk I/O error") is not matched: from a failed
/// fsync or `-shm` mapping it does not tell a lack of space from a failing
/// device, so it stays an internal error.
pub fn is_disk_full(err: &diesel::result::Error) -> bool {
    match err {
        diesel::result::Error::DatabaseError(_, info) => {
            info.message().contains("database or disk is full")
        }
        // The COMMIT failed for lack of space and the ROLLBACK after it failed too.
        diesel::result::Error::RollbackErrorOnCommit { commit_error, .. } => {
            is_disk_full(commit_error)
        }
        _ => false,
    }
}
