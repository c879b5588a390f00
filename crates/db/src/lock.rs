//! The lock held on a database file by whatever may change it: a server for as long
//! as it serves it, and `migrate`, `rollback` and `restore` while they run.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::files::{canonical_database, create_parent, with_suffix};
use crate::{Config, Error};

/// Held by a server for as long as it serves a database file, and by the commands
/// that change its schema or its content, so that none of them works on the file
/// under another. Released when dropped (or when the process dies: the lock is the
/// kernel's, not a stale file).
///
/// The lock is `<database>.lock` beside the file the database path resolves to,
/// symbolic links followed: every path to one file finds the same lock.
///
/// On PostgreSQL there is no file to replace and many servers may share the
/// database: the lock holds nothing.
#[derive(Debug)]
pub struct ServerLock {
    _file: Option<File>,
    path: PathBuf,
    database: PathBuf,
}

impl ServerLock {
    /// Takes the lock, or explains who holds it. A restore that was interrupted
    /// while it swapped the file is finished first (see the `restore` module).
    pub fn acquire(config: &Config) -> Result<ServerLock, Error> {
        let Some(database_path) = config.database.sqlite_path() else {
            return Ok(ServerLock {
                _file: None,
                path: PathBuf::new(),
                database: PathBuf::new(),
            });
        };
        create_parent(database_path)?;
        let database = canonical_database(database_path)
            .map_err(Error::io(format!("resolving {}", database_path.display())))?;
        let path = with_suffix(&database, ".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {
                let lock = ServerLock {
                    _file: Some(file),
                    path,
                    database,
                };
                crate::restore::finish_interrupted(&lock.database)?;
                Ok(lock)
            }
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(database_path.to_owned())),
            Err(fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()))(e))
            }
        }
    }

    /// The lock file; empty on PostgreSQL.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database file this lock guards, symbolic links resolved.
    pub fn database(&self) -> &Path {
        &self.database
    }
}
