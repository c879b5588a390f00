//! The lock a server holds on its database file for as long as it serves it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::files::{create_parent, with_suffix};
use crate::{Config, Error};

/// Held by a server for as long as it serves a database file, so that a restore
/// cannot replace the file under it. Released when dropped (or when the process
/// dies: the lock is the kernel's, not a stale file). On PostgreSQL there is no
/// file to replace and many servers may share the database: it holds nothing.
#[derive(Debug)]
pub struct ServerLock {
    _file: Option<File>,
    path: PathBuf,
}

impl ServerLock {
    /// Takes the lock, or explains who holds it.
    pub fn acquire(config: &Config) -> Result<ServerLock, Error> {
        let Some(database) = config.database.sqlite_path() else {
            return Ok(ServerLock {
                _file: None,
                path: PathBuf::new(),
            });
        };
        let path = with_suffix(database, ".lock");
        create_parent(&path)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock {
                _file: Some(file),
                path,
            }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(database.to_owned())),
            Err(fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()))(e))
            }
        }
    }

    /// The lock file; empty on PostgreSQL.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
