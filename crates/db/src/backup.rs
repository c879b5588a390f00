//! Backups that are only called backups once verified, and restores that replace
//! the live file atomically.
//!
//! A backup is a `VACUUM INTO` snapshot (consistent, taken while writers go on),
//! written under a temporary name, fsynced, checked with `integrity_check` and
//! `foreign_key_check`, hashed, described by a manifest, and only then renamed to
//! its final name. Anything that fails on the way leaves no file with a final name.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::migrate::{applied_versions, known_migrations, unknown_versions};
use crate::{Config, Db, Error};

/// Written beside each backup as `<backup>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// File name of the backup this manifest describes.
    pub file: String,
    pub created_at: DateTime<Utc>,
    /// The newest applied migration version, if any.
    pub schema_version: Option<String>,
    /// Rows per table, as counted on the verified copy.
    pub tables: Vec<(String, i64)>,
    pub size: u64,
    pub sha256: String,
}

/// What a finished backup produced.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// Older backups removed by retention.
    pub removed: Vec<PathBuf>,
}

/// Progress of a long step: `(step, done, total)` in bytes.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

const PARTIAL: &str = ".partial";

fn stem(db_path: &Path) -> String {
    db_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("db")
        .to_owned()
}

/// `path` with `suffix` appended to its file name (`app.db` + `-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn manifest_path(backup: &Path) -> PathBuf {
    with_suffix(backup, ".json")
}

/// Flushes a file's contents, or a folder's entries, to disk.
fn sync_path(path: &Path) -> Result<(), Error> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(Error::io(format!("syncing {}", path.display())))
}

/// `<stem>-<UTC time to the millisecond>.db`, the name of a copy of `db_path`.
fn stamped_name(db_path: &Path, at: DateTime<Utc>) -> String {
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

fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))
}

/// A fresh connection outside the pools: backups and checks must not hold a
/// pooled reader (which is `query_only`) for their whole duration.
fn connect(path: &Path, busy_timeout_ms: u32) -> Result<SqliteConnection, Error> {
    let url = path
        .to_str()
        .ok_or_else(|| Error::Backup("path is not UTF-8".into()))?;
    let mut conn = SqliteConnection::establish(url).map_err(|e| Error::Open {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_timeout_ms};"))?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    value: String,
}

/// `integrity_check` is `ok` and `foreign_key_check` finds nothing.
fn verify_file(conn: &mut SqliteConnection) -> Result<(), Error> {
    let integrity: Vec<TextRow> =
        diesel::sql_query("SELECT integrity_check AS value FROM pragma_integrity_check")
            .load(conn)
            .map_err(|e| Error::Backup(format!("integrity_check could not run: {e}")))?;
    let verdict: Vec<String> = integrity.into_iter().map(|r| r.value).collect();
    if verdict != ["ok"] {
        return Err(Error::Backup(format!(
            "integrity_check failed: {}",
            verdict.join("; ")
        )));
    }
    let violations: Vec<TextRow> = diesel::sql_query(
        "SELECT \"table\" || ' row ' || coalesce(rowid, '?') AS value FROM pragma_foreign_key_check",
    )
    .load(conn)
    .map_err(|e| Error::Backup(format!("foreign_key_check could not run: {e}")))?;
    if !violations.is_empty() {
        return Err(Error::Backup(format!(
            "foreign_key_check found {} violation(s), first: {}",
            violations.len(),
            violations[0].value
        )));
    }
    Ok(())
}

fn table_counts(conn: &mut SqliteConnection) -> Result<Vec<(String, i64)>, Error> {
    let names: Vec<TextRow> = diesel::sql_query(
        "SELECT name AS value FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load(conn)?;
    names
        .into_iter()
        .map(|t| {
            let quoted = t.value.replace('"', "\"\"");
            let count: i64 = diesel::select(diesel::dsl::sql::<BigInt>(&format!(
                "(SELECT count(*) FROM \"{quoted}\")"
            )))
            .get_result(conn)?;
            Ok((t.value, count))
        })
        .collect()
}

fn sha256_file(path: &Path, progress: Progress<'_>) -> Result<(String, u64), Error> {
    let mut file = File::open(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress("hash", done, total);
    }
    Ok((hex::encode(hasher.finalize()), done))
}

/// Runs `work` while a watcher reports how far `growing` has grown toward `total`.
fn watch_growth<T>(
    growing: &Path,
    total: u64,
    progress: Progress<'_>,
    work: impl FnOnce() -> T,
) -> T {
    let finished = Arc::new(AtomicBool::new(false));
    thread::scope(|scope| {
        let watcher_done = finished.clone();
        scope.spawn(move || {
            while !watcher_done.load(Ordering::Relaxed) {
                let size = fs::metadata(growing).map(|m| m.len()).unwrap_or(0);
                progress("snapshot", size.min(total), total);
                thread::sleep(Duration::from_millis(200));
            }
        });
        let out = work();
        finished.store(true, Ordering::Relaxed);
        out
    })
}

impl Db {
    /// Takes a verified backup of the live database into `config.backup_dir`, then
    /// keeps only the newest `config.backup_keep` backups.
    pub fn backup(&self, progress: Progress<'_>) -> Result<Backup, Error> {
        backup_file(self.config(), progress)
    }
}

/// [`Db::backup`] without a `Db`: used by commands that must not keep pools open.
pub fn backup_file(config: &Config, progress: Progress<'_>) -> Result<Backup, Error> {
    let dir = &config.backup_dir;
    create_dir(dir)?;
    let now = Utc::now();
    let name = stamped_name(&config.database_path, now);
    let final_path = dir.join(&name);
    let partial = dir.join(format!(".{name}{PARTIAL}"));
    let outcome = snapshot_and_verify(config, &partial, &name, now, progress);
    let manifest = match outcome {
        Ok(manifest) => manifest,
        Err(err) => {
            let _ = fs::remove_file(&partial);
            return Err(err);
        }
    };
    // Manifest first: a backup file under its final name always has one.
    let manifest_final = manifest_path(&final_path);
    let manifest_partial = dir.join(format!(".{name}.json{PARTIAL}"));
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Backup(format!("manifest: {e}")))?;
    write_synced(&manifest_partial, &json)?;
    fs::rename(&manifest_partial, &manifest_final).map_err(Error::io(format!(
        "renaming {}",
        manifest_partial.display()
    )))?;
    fs::rename(&partial, &final_path)
        .map_err(Error::io(format!("renaming {}", partial.display())))?;
    sync_path(dir)?;
    let removed = prune(config)?;
    Ok(Backup {
        path: final_path,
        manifest,
        removed,
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    };
    write().map_err(Error::io(format!("writing {}", path.display())))
}

fn snapshot_and_verify(
    config: &Config,
    partial: &Path,
    name: &str,
    now: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<Manifest, Error> {
    let _ = fs::remove_file(partial);
    let source_size = fs::metadata(&config.database_path)
        .map_err(Error::io(format!(
            "reading {}",
            config.database_path.display()
        )))?
        .len();
    let mut source = connect(&config.database_path, config.busy_timeout_ms)?;
    let target = partial
        .to_str()
        .ok_or_else(|| Error::Backup("path is not UTF-8".into()))?
        .replace('\'', "''");
    watch_growth(partial, source_size, progress, || {
        source.batch_execute(&format!("VACUUM INTO '{target}'"))
    })
    .map_err(|e| Error::Backup(format!("snapshot failed: {e}")))?;
    drop(source);
    sync_path(partial)?;

    let mut copy = connect(partial, config.busy_timeout_ms)?;
    verify_file(&mut copy)?;
    let schema_version = applied_versions(&mut copy)?.pop();
    let tables = table_counts(&mut copy)?;
    drop(copy);
    let (sha256, size) = sha256_file(partial, progress)?;
    Ok(Manifest {
        file: name.to_owned(),
        created_at: now,
        schema_version,
        tables,
        size,
        sha256,
    })
}

/// Final-named backups of this database in `dir`, oldest first.
pub fn list_backups(config: &Config) -> Result<Vec<PathBuf>, Error> {
    let prefix = format!("{}-", stem(&config.database_path));
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
fn prune(config: &Config) -> Result<Vec<PathBuf>, Error> {
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

/// Checks a backup against its manifest and SQLite's own checks, and that this
/// build knows every migration applied to it.
pub fn verify_backup<S: MigrationSource<Sqlite>>(
    file: &Path,
    migrations: &S,
    progress: Progress<'_>,
) -> Result<Manifest, Error> {
    let manifest_file = manifest_path(file);
    let json = fs::read(&manifest_file).map_err(|e| {
        Error::Restore(format!(
            "no readable manifest {} ({e}); only verified backups can be restored",
            manifest_file.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| Error::Restore(format!("manifest {}: {e}", manifest_file.display())))?;
    let (sha256, size) = sha256_file(file, progress)?;
    if size != manifest.size || sha256 != manifest.sha256 {
        return Err(Error::Restore(format!(
            "{} does not match its manifest (size {size} vs {}, sha256 differs: {}); the file is damaged",
            file.display(),
            manifest.size,
            sha256 != manifest.sha256
        )));
    }
    let mut conn = connect(file, 1000)?;
    verify_file(&mut conn).map_err(|e| Error::Restore(e.to_string()))?;
    let unknown = unknown_versions(applied_versions(&mut conn)?, &known_migrations(migrations)?);
    if !unknown.is_empty() {
        return Err(Error::SchemaTooNew(unknown));
    }
    Ok(manifest)
}

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

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// The database as it was before the restore (with its `-wal`, if any).
    pub pre_restore: Option<PathBuf>,
}

/// Replaces the database with a verified backup. Refuses while a server holds the
/// database, keeps the current file as a pre-restore copy, swaps the file in
/// atomically and removes the old `-wal`/`-shm`.
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
        fs::copy(db_path, &copy).map_err(Error::io(format!("copying {}", db_path.display())))?;
        let wal = with_suffix(db_path, "-wal");
        if wal.exists() {
            fs::copy(&wal, with_suffix(&copy, "-wal"))
                .map_err(Error::io(format!("copying {}", wal.display())))?;
        }
        Some(copy)
    } else {
        None
    };
    let parent = create_parent(db_path)?;
    let staged = with_suffix(db_path, ".restore.partial");
    fs::copy(file, &staged).map_err(Error::io(format!("copying {}", file.display())))?;
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
