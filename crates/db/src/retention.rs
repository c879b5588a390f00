//! Which backups exist, which is the newest, and which are pruned: those beyond
//! `backup_keep` and leftovers of interrupted backups.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::backup::Manifest;
use crate::files::{PARTIAL, manifest_path, stem};
use crate::{Config, Error};

/// Final-named backups of this database in `dir`, oldest first.
pub fn list_backups(config: &Config) -> Result<Vec<PathBuf>, Error> {
    // PostgreSQL has no backups of this crate's making.
    let Some(database) = config.database.sqlite_path() else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}-", stem(database));
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
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".db"))
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

/// Removes backups beyond `backup_keep` (oldest first) and leftovers of
/// interrupted backups.
pub(crate) fn prune(config: &Config) -> Result<Vec<PathBuf>, Error> {
    let backups = list_backups(config)?;
    let excess = backups.len().saturating_sub(config.backup_keep.max(1));
    let mut removed = Vec::new();
    for old in backups.into_iter().take(excess) {
        let _ = fs::remove_file(manifest_path(&old));
        fs::remove_file(&old).map_err(Error::io(format!("removing {}", old.display())))?;
        removed.push(old);
    }
    if let Ok(entries) = fs::read_dir(&config.backup_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let stale = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(PARTIAL))
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
