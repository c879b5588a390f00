//! Paths and durable writes: how backup files and a database's companions
//! (`-wal`, `.json`, `.lock`) are named, who may read them, folder creation and
//! fsync.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::Error;

/// Makes every file and folder this process creates from now on private to its
/// owner (umask `077`: files `0600`, folders `0700`). Call it first in `main`,
/// before reading `.env` or opening anything, in every binary that uses this
/// crate.
///
/// The database holds token hashes and every row, and SQLite gives the `-wal` and
/// `-shm` the database file's own mode; backups, manifests and the lock are made
/// through the process umask too, so one call covers them all. Files that already
/// exist keep their mode. Without a umask (not Unix) it does nothing.
pub fn restrict_new_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
}

pub(crate) const PARTIAL: &str = ".partial";

pub(crate) fn stem(db_path: &Path) -> String {
    db_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("db")
        .to_owned()
}

/// `path` with `suffix` appended to its file name (`app.db` + `-wal`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn manifest_path(backup: &Path) -> PathBuf {
    with_suffix(backup, ".json")
}

/// Flushes a file's contents, or a folder's entries, to disk.
pub(crate) fn sync_path(path: &Path) -> Result<(), Error> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(Error::io(format!("syncing {}", path.display())))
}

/// `<stem>-<UTC time to the millisecond>.db`, the name of a copy of `db_path`.
pub(crate) fn stamped_name(db_path: &Path, at: DateTime<Utc>) -> String {
    format!("{}-{}.db", stem(db_path), at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Creates the folder `path` lives in; returns it (`.` for a bare file name).
pub(crate) fn create_parent(path: &Path) -> Result<&Path, Error> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dir(parent)?;
    Ok(parent)
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))
}

/// Copies `from` to `to`, which ends up readable by its owner only, whatever the
/// mode of `from` (`fs::copy` would carry a world-readable backup's mode over).
pub(crate) fn copy_private(from: &Path, to: &Path) -> io::Result<u64> {
    let mut source = File::open(from)?;
    let mut target = File::create(to)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Also when `to` was left behind by an earlier run with a wider mode.
        target.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    io::copy(&mut source, &mut target)
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    };
    write().map_err(Error::io(format!("writing {}", path.display())))
}
