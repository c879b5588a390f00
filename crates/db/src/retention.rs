//! Which backups exist, which is the newest, and which are pruned: backups and
//! pre-restore copies beyond `backup_keep`, and leftovers of interrupted backups
//! and restores.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::backup::Manifest;
use crate::files::{PARTIAL, PRE_RESTORE, manifest_path, stem, with_suffix};
use crate::{Config, Error};

/// Final-named backups of this database in `dir`, oldest first.
pub fn list_backups(config: &Config) -> Result<Vec<PathBuf>, Error> {
    // PostgreSQL has no backups of this crate's making.
    let Some(database) = config.database.sqlite_path() else {
        return Ok(Vec::new());
    };
    list_named(config, &format!("{}-", stem(database)))
}

/// Final-named `<prefix>*.db` files in the backup folder, oldest first (the names
/// end in their UTC time).
fn list_named(config: &Config, prefix: &str) -> Result<Vec<PathBuf>, Error> {
    let dir = &config.backup_dir;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()))(e)),
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".db"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The manifest of the newest verified backup, if there is one.
pub fn latest_backup(config: &Config) -> Result<Option<Manifest>, Error> {
    let Some(newest) = list_backups(config)?.pop() else {
        return Ok(None);
    };
    let path = manifest_path(&newest);
    let json = fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| Error::Backup(format!("manifest {}: {e}", path.display())))
}

/// Removes backups and pre-restore copies beyond `backup_keep` (oldest first, each
/// kept apart) and, after an hour, leftovers of interrupted backups and restores.
pub(crate) fn prune(config: &Config) -> Result<Vec<PathBuf>, Error> {
    let keep = config.backup_keep.max(1);
    let mut removed = Vec::new();
    let backups = list_backups(config)?;
    let excess = backups.len().saturating_sub(keep);
    for old in backups.into_iter().take(excess) {
        let _ = fs::remove_file(manifest_path(&old));
        fs::remove_file(&old).map_err(Error::io(format!("removing {}", old.display())))?;
        removed.push(old);
    }
    let Some(database) = config.database.sqlite_path() else {
        return Ok(removed);
    };
    let pre_prefix = format!("{PRE_RESTORE}{}-", stem(database));
    let copies = list_named(config, &pre_prefix)?;
    let excess = copies.len().saturating_sub(keep);
    for old in copies.into_iter().take(excess) {
        // Its -wal holds the newest commits of that copy: it goes with it.
        for suffix in ["-wal", "-shm"] {
            let _ = fs::remove_file(with_suffix(&old, suffix));
        }
        fs::remove_file(&old).map_err(Error::io(format!("removing {}", old.display())))?;
        removed.push(old);
    }
    if let Ok(entries) = fs::read_dir(&config.backup_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // A pre-restore -wal without its file: the restore stopped between the
            // two renames.
            let orphan_wal = name.starts_with(&pre_prefix)
                && name
                    .strip_suffix("-wal")
                    .is_some_and(|main| !path.with_file_name(main).exists());
            let stale = (name.ends_with(PARTIAL) || orphan_wal)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600));
            if stale {
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(removed)
}
