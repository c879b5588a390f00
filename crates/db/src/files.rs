//! Paths and durable writes: how backup files and a database's companions
//! (`-wal`, `.json`, `.lock`) are named, who may read them, folder creation,
//! copies and fsync.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::Error;
use crate::backup::Progress;

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

/// Prefix of the copy a restore keeps of the database it replaces.
pub(crate) const PRE_RESTORE: &str = "pre-restore-";

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

/// The database file's path with every symbolic link resolved (the file itself when
/// it exists, else its folder, which must exist), so that every path to one file
/// finds the same lock and the same companions.
pub(crate) fn canonical_database(path: &Path) -> io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path.file_name().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the path names no file")
            })?;
            Ok(fs::canonicalize(parent)?.join(name))
        }
        other => other,
    }
}

/// Copies `from` into a new file `to` (never over an existing one) and fsyncs it,
/// reporting progress as `step`.
pub(crate) fn copy_synced(
    from: &Path,
    to: &Path,
    step: &str,
    progress: Progress<'_>,
) -> Result<u64, Error> {
    let mut source = File::open(from).map_err(Error::io(format!("reading {}", from.display())))?;
    let total = source.metadata().map(|m| m.len()).unwrap_or(0);
    let mut target = File::options()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(Error::io(format!("creating {}", to.display())))?;
    // Owner-only whatever the source's mode or the umask: these are copies of the
    // database (staged restores, pre-restore copies).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        target
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(Error::io(format!("restricting {}", to.display())))?;
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = io::Read::read(&mut source, &mut buf)
            .map_err(Error::io(format!("reading {}", from.display())))?;
        if n == 0 {
            break;
        }
        io::Write::write_all(&mut target, &buf[..n])
            .map_err(Error::io(format!("writing {}", to.display())))?;
        done += n as u64;
        progress(step, done, total);
    }
    target
        .sync_all()
        .map_err(Error::io(format!("syncing {}", to.display())))?;
    Ok(done)
}

/// Removes a file; one that is already gone is fine.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    };
    write().map_err(Error::io(format!("writing {}", path.display())))
}
