//! Restoring a verified backup in place of the live database file.
//!
//! The server lock is held from the first step to the last, so no server,
//! `migrate` or `rollback` opens the file in between; `<db>` is the database path
//! with symbolic links resolved. In order:
//!
//! 1. The backup is copied to `<db>.restore.partial` and fsynced, and that copy is
//!    verified: hashed against the backup's manifest, then SQLite's checks with the
//!    copy opened read-only and immutable (so checking never creates a `-wal` or
//!    changes a byte). What is installed is the very file that was verified; a
//!    backup that changes after its copy was taken changes nothing.
//! 2. The current database, with its `-wal`, is copied into `BACKUP_DIR` as
//!    `pre-restore-*.db` under a temporary name, fsynced, then renamed. Nothing has
//!    been removed yet.
//! 3. `<db>.restore.pending` is written and fsynced: from now on a `-wal` or `-shm`
//!    beside the database may belong to the old file.
//! 4. The staged copy is renamed over the database (atomic) and the folder fsynced.
//! 5. The old `-wal`/`-shm` are removed (replayed onto the restored file, the old
//!    WAL would corrupt it), then the marker.
//!
//! Why a crash anywhere is safe: before step 3 the database and its `-wal` are
//! untouched, and the staged copy is a leftover that the next holder of the lock
//! removes. From step 3 to step 5 the marker is on disk, and whoever comes next
//! finishes the job before opening the file (every holder of the lock, and also
//! `Db::open` and a backup, which take the lock for it): if the staged copy is
//! still there, the rename did not happen, so the marker goes first and then the
//! copy, and the old file keeps its `-wal`; if it is gone, the database is the
//! restored file, so the old `-wal`/`-shm` go before anything reads it. Each folder
//! change is fsynced before the next one depends on it.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;
use diesel::migration::MigrationSource;
use diesel::sqlite::Sqlite;

use crate::backup::{Manifest, Progress};
use crate::files::{
    PARTIAL, PRE_RESTORE, canonical_database, copy_synced, create_dir, manifest_path,
    remove_if_exists, stamped_name, sync_path, with_suffix, write_synced,
};
use crate::lock::ServerLock;
use crate::retention::prune;
use crate::verify::{read_manifest, verify_copy};
use crate::{Config, Error};

/// The verified copy of the backup, beside the database it will replace.
const STAGED: &str = ".restore.partial";
/// Present while the staged copy is being swapped in; see the module's text.
const PENDING: &str = ".restore.pending";

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// The database as it was before the restore (with its `-wal`, if any).
    pub pre_restore: Option<PathBuf>,
    /// Older backups and pre-restore copies removed by retention.
    pub removed: Vec<PathBuf>,
}

/// Replaces the database with a verified backup: refuses a backup given by a
/// symbolic link and refuses while a server holds the database; installs exactly
/// the copy it verified, after keeping the current file (with its `-wal`) as a
/// pre-restore copy. Retention then applies to backups and pre-restore copies.
pub fn restore<S: MigrationSource<Sqlite>>(
    config: &Config,
    migrations: &S,
    file: &Path,
    progress: Progress<'_>,
) -> Result<Restored, Error> {
    config.sqlite_file(
        "restore",
        "pg_restore (pg_restore --clean -d \"$DATABASE_URL\" app.dump)",
    )?;
    refuse_symlink(file)?;
    refuse_symlink(&manifest_path(file))?;
    let lock = ServerLock::acquire(config)?;
    let db_path = lock.database();
    let manifest = read_manifest(file)?;
    let staged = with_suffix(db_path, STAGED);
    let prepared = copy_synced(file, &staged, "copy", progress)
        .and_then(|_| verify_copy(&staged, file, &manifest, migrations, progress))
        .and_then(|()| sync_path(folder(db_path)))
        .and_then(|()| keep_current(config, db_path, progress));
    let pre_restore = match prepared {
        Ok(pre_restore) => pre_restore,
        Err(err) => {
            let _ = fs::remove_file(&staged);
            return Err(err);
        }
    };
    swap(db_path, &staged)?;
    let removed = prune(config).map_err(|e| {
        Error::Restore(format!(
            "restored, but removing old copies beyond BACKUP_KEEP failed: {e}"
        ))
    })?;
    Ok(Restored {
        manifest,
        pre_restore,
        removed,
    })
}

/// A backup reached through a symbolic link is not restored: what is installed
/// must be the file the operator named, not whatever the link points to.
fn refuse_symlink(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Restore(format!(
            "{} is a symbolic link; name the backup file itself",
            path.display()
        ))),
        // A missing file is reported by the step that reads it.
        _ => Ok(()),
    }
}

/// The folder a canonical database path lives in.
fn folder(db_path: &Path) -> &Path {
    db_path.parent().unwrap_or(Path::new("/"))
}

/// Copies the current database, with its `-wal`, into `BACKUP_DIR` as a
/// pre-restore copy, synced before anything is removed. No server holds the file,
/// so the file plus its `-wal` is a consistent copy.
fn keep_current(
    config: &Config,
    db_path: &Path,
    progress: Progress<'_>,
) -> Result<Option<PathBuf>, Error> {
    if !db_path.exists() {
        return Ok(None);
    }
    let dir = &config.backup_dir;
    create_dir(dir)?;
    let name = format!("{PRE_RESTORE}{}", stamped_name(db_path, Utc::now()));
    let copy = dir.join(&name);
    let partial = dir.join(format!(".{name}{PARTIAL}"));
    let wal = with_suffix(db_path, "-wal");
    let wal_partial = dir.join(format!(".{name}-wal{PARTIAL}"));
    let kept = (|| {
        copy_synced(db_path, &partial, "keep", progress)?;
        if wal.exists() {
            copy_synced(&wal, &wal_partial, "keep", progress)?;
            fs::rename(&wal_partial, with_suffix(&copy, "-wal"))
                .map_err(Error::io(format!("renaming {}", wal_partial.display())))?;
        }
        fs::rename(&partial, &copy)
            .map_err(Error::io(format!("renaming {}", partial.display())))?;
        sync_path(dir)
    })();
    match kept {
        Ok(()) => Ok(Some(copy)),
        Err(err) => {
            let _ = fs::remove_file(&partial);
            let _ = fs::remove_file(&wal_partial);
            Err(err)
        }
    }
}

/// Steps 3 to 5: the marker, the rename, the removal of the old companions.
fn swap(db_path: &Path, staged: &Path) -> Result<(), Error> {
    let dir = folder(db_path);
    let pending = with_suffix(db_path, PENDING);
    let started = write_synced(
        &pending,
        b"a restore is swapping in the file beside this one; the next lock holder finishes it\n",
    )
    .and_then(|()| sync_path(dir));
    if let Err(err) = started {
        let _ = fs::remove_file(&pending).and_then(|()| fs::remove_file(staged));
        return Err(err);
    }
    if let Err(e) = fs::rename(staged, db_path) {
        // Not renamed: the marker goes before the staged copy, or the pair would
        // read as "renamed" and the old file would lose its -wal.
        let _ = fs::remove_file(&pending).and_then(|()| fs::remove_file(staged));
        return Err(Error::io(format!("replacing {}", db_path.display()))(e));
    }
    sync_path(dir)
        .and_then(|()| drop_old_companions(db_path))
        .map_err(|e| {
            Error::Restore(format!(
                "{} is the restored file, but its old -wal/-shm are still beside it ({e}); \
                 the next `restore`, `migrate`, `rollback` or server start removes them first",
                db_path.display()
            ))
        })
}

/// After the rename: the old `-wal`/`-shm` go, then the marker.
fn drop_old_companions(db_path: &Path) -> Result<(), Error> {
    for suffix in ["-wal", "-shm"] {
        remove_if_exists(&with_suffix(db_path, suffix))?;
    }
    sync_path(folder(db_path))?;
    remove_if_exists(&with_suffix(db_path, PENDING))?;
    sync_path(folder(db_path))
}

/// Finishes what an interrupted restore left beside `db_path` (canonical). Called
/// by [`ServerLock::acquire`] with the lock held.
pub(crate) fn finish_interrupted(db_path: &Path) -> Result<(), Error> {
    let staged = with_suffix(db_path, STAGED);
    let pending = with_suffix(db_path, PENDING);
    if !pending.exists() {
        // Interrupted while copying or verifying: the database was not touched.
        return remove_if_exists(&staged);
    }
    if staged.exists() {
        tracing::warn!(database = %db_path.display(), "a restore stopped before its rename; the database is unchanged");
        remove_if_exists(&pending)?;
        sync_path(folder(db_path))?;
        remove_if_exists(&staged)
    } else {
        tracing::warn!(database = %db_path.display(), "a restore stopped after its rename; removing the old -wal/-shm");
        drop_old_companions(db_path)
    }
}

/// For openers that do not hold the lock (`Db::open`, a backup): a restore
/// interrupted while it swapped the file is finished before the file is read, or
/// the opener is refused while a restore runs.
pub(crate) fn settle_interrupted(config: &Config) -> Result<(), Error> {
    // PostgreSQL: nothing of this crate's is ever restored there.
    let Some(database) = config.database.sqlite_path() else {
        return Ok(());
    };
    let Ok(db_path) = canonical_database(database) else {
        // No folder yet, so no marker either.
        return Ok(());
    };
    if with_suffix(&db_path, PENDING).exists() {
        drop(ServerLock::acquire(config)?);
    }
    Ok(())
}
