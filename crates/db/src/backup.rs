//! Taking backups, which are only called backups once verified and described by
//! a manifest.
//!
//! A backup is a `VACUUM INTO` snapshot (consistent, taken while writers go on),
//! written under a temporary name, fsynced, checked with `integrity_check` and
//! `foreign_key_check`, hashed, described by a manifest, and only then renamed to
//! its final name. Anything that fails on the way leaves no file with a final name.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};

use crate::files::{PARTIAL, create_dir, manifest_path, stamped_name, sync_path, write_synced};
use crate::migrate::applied_sqlite_versions;
use crate::retention::prune;
use crate::verify::{TextRow, connect, sha256_file, verify_file};
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

pub(crate) fn table_counts(conn: &mut SqliteConnection) -> Result<Vec<(String, i64)>, Error> {
    count_rows(
        conn,
        "SELECT name AS value FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
}

/// Rows of each table `tables` (a query of `value` rows) names, on either backend.
pub(crate) fn count_rows<C>(conn: &mut C, tables: &str) -> Result<Vec<(String, i64)>, Error>
where
    C: Connection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, TextRow>
        + diesel::query_dsl::LoadQuery<'static, C, CountRow>,
{
    let names: Vec<TextRow> = diesel::sql_query(tables).load(conn)?;
    names
        .into_iter()
        .map(|t| {
            let quoted = t.value.replace('"', "\"\"");
            let rows: Vec<CountRow> =
                diesel::sql_query(format!("SELECT count(*) AS n FROM \"{quoted}\"")).load(conn)?;
            Ok((t.value, rows.first().map_or(0, |r| r.n)))
        })
        .collect()
}

#[derive(QueryableByName)]
pub(crate) struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
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
    let database = config.sqlite_file(
        "backup",
        "pg_dump (pg_dump -Fc -f app.dump \"$DATABASE_URL\")",
    )?;
    crate::restore::settle_interrupted(config)?;
    let dir = &config.backup_dir;
    create_dir(dir)?;
    let now = Utc::now();
    let name = stamped_name(database, now);
    let final_path = dir.join(&name);
    let partial = dir.join(format!(".{name}{PARTIAL}"));
    let manifest_partial = dir.join(format!(".{name}.json{PARTIAL}"));
    let manifest_final = manifest_path(&final_path);
    let finished = snapshot_and_verify(config, database, &partial, &name, now, progress).and_then(
        |manifest| {
            // Manifest first: a backup file under its final name always has one.
            let json = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| Error::Backup(format!("manifest: {e}")))?;
            write_synced(&manifest_partial, &json)?;
            fs::rename(&manifest_partial, &manifest_final).map_err(Error::io(format!(
                "renaming {}",
                manifest_partial.display()
            )))?;
            fs::rename(&partial, &final_path)
                .map_err(Error::io(format!("renaming {}", partial.display())))?;
            Ok(manifest)
        },
    );
    let manifest = match finished {
        Ok(manifest) => manifest,
        Err(err) => {
            // Nothing half-written stays, on a full disk least of all: the space it
            // holds is what the database needs to go on taking writes.
            let _ = fs::remove_file(&partial);
            let _ = fs::remove_file(&manifest_partial);
            if !final_path.exists() {
                let _ = fs::remove_file(&manifest_final);
            }
            return Err(if err.is_disk_full() {
                Error::Backup(format!(
                    "{}: the disk is full; the partial backup was removed",
                    dir.display()
                ))
            } else {
                err
            });
        }
    };
    sync_path(dir)?;
    let removed = prune(config)?;
    Ok(Backup {
        path: final_path,
        manifest,
        removed,
    })
}

fn snapshot_and_verify(
    config: &Config,
    database: &Path,
    partial: &Path,
    name: &str,
    now: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<Manifest, Error> {
    let _ = fs::remove_file(partial);
    let source_size = fs::metadata(database)
        .map_err(Error::io(format!("reading {}", database.display())))?
        .len();
    let mut source = connect(database, config.busy_timeout_ms)?;
    let vacuum = vacuum_into(partial)?;
    watch_growth(partial, source_size, progress, || {
        source.batch_execute(&vacuum)
    })
    .map_err(|e| {
        if crate::is_disk_full(&e) {
            Error::DiskFull
        } else {
            Error::Backup(format!("snapshot failed: {e}"))
        }
    })?;
    drop(source);
    sync_path(partial)?;

    let mut copy = connect(partial, config.busy_timeout_ms)?;
    verify_file(&mut copy)?;
    let schema_version = applied_sqlite_versions(&mut copy)?.pop();
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

/// `VACUUM INTO` a new file at `target`: a consistent copy of the database, taken
/// while others read and write it.
pub(crate) fn vacuum_into(target: &Path) -> Result<String, Error> {
    let target = target
        .to_str()
        .ok_or_else(|| Error::Backup("path is not UTF-8".into()))?
        .replace('\'', "''");
    Ok(format!("VACUUM INTO '{target}'"))
}
