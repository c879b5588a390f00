//! The lock a server holds on its database file for as long as it serves it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::files::{create_parent, with_suffix};
use crate::{Config, Error};

/// Held by a server for as long as it serves a database file, so that a restore
/// cannot replace the file under it. Released when dropped (or when the process
/// dies: the lock is the kernel's, not a stale file).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
}

impl ServerLock {
    /// Takes the lock, or explains who holds it.
    pub fn acquire(config: &Config) -> Result<ServerLock, Error> {
        let path = with_suffix(&config.database_path, ".lock");
        create_parent(&path)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { _file: file, path }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(config.database_path.clone())),
            Err(fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()))(e))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
