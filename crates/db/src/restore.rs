//! Restoring a verified backup in place of the live database file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::Utc;
use diesel::migration::MigrationSource;
use diesel::sqlite::Sqlite;

use crate::backup::{Manifest, Progress};
use crate::files::{copy_private, create_dir, create_parent, stamped_name, sync_path, with_suffix};
use crate::lock::ServerLock;
use crate::verify::verify_backup;
use crate::{Config, Error};

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// The database as it was before the restore (with its `-wal`, if any).
    pub pre_restore: Option<PathBuf>,
}

/// Replaces the database with a verified backup. Refuses while a server holds the
/// database, keeps the current file (with its `-wal`) as a pre-restore copy,
/// stages a synced copy of the backup beside the database, removes the old
/// `-wal`/`-shm`, then renames the staged copy over the database.
pub fn restore<S: MigrationSource<Sqlite>>(
    config: &Config,
    migrations: &S,
    file: &Path,
    progress: Progress<'_>,
) -> Result<Restored, Error> {
    let manifest = verify_backup(file, migrations, progress)?;
    let _lock = ServerLock::acquire(config)?;
    let db_path = &config.database_path;
    let pre_restore = if db_path.exists() {
        let dir = &config.backup_dir;
        create_dir(dir)?;
        let copy = dir.join(format!("pre-restore-{}", stamped_name(db_path, Utc::now())));
        // No server holds the file, so the file plus its -wal is a consistent copy.
        copy_private(db_path, &copy)
            .map_err(Error::io(format!("copying {}", db_path.display())))?;
        let wal = with_suffix(db_path, "-wal");
        if wal.exists() {
            copy_private(&wal, &with_suffix(&copy, "-wal"))
                .map_err(Error::io(format!("copying {}", wal.display())))?;
        }
        Some(copy)
    } else {
        None
    };
    let parent = create_parent(db_path)?;
    let staged = with_suffix(db_path, ".restore.partial");
    copy_private(file, &staged).map_err(Error::io(format!("copying {}", file.display())))?;
    sync_path(&staged)?;
    // The old WAL belongs to the old file: replayed onto the restored one it would
    // corrupt it.
    for suffix in ["-wal", "-shm"] {
        match fs::remove_file(with_suffix(db_path, suffix)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}{suffix}", db_path.display()))(e)),
        }
    }
    fs::rename(&staged, db_path).map_err(Error::io(format!("replacing {}", db_path.display())))?;
    sync_path(parent)?;
    Ok(Restored {
        manifest,
        pre_restore,
    })
}
