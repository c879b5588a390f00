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
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
    database: PathBuf,
}

impl ServerLock {
    /// Takes the lock, or explains who holds it. A restore that was interrupted
    /// while it swapped the file is finished first (see the `restore` module).
    pub fn acquire(config: &Config) -> Result<ServerLock, Error> {
        create_parent(&config.database_path)?;
        let database = canonical_database(&config.database_path).map_err(Error::io(format!(
            "resolving {}",
            config.database_path.display()
        )))?;
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
                    _file: file,
                    path,
                    database,
                };
                crate::restore::finish_interrupted(&lock.database)?;
                Ok(lock)
            }
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(config.database_path.clone())),
            Err(fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()))(e))
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database file this lock guards, symbolic links resolved.
    pub fn database(&self) -> &Path {
        &self.database
    }
}
