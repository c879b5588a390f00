//! Checks shared by backups and restores: SQLite's integrity and foreign-key
//! checks, hashing, and a backup checked against its manifest.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::backup::{Manifest, Progress};
use crate::files::manifest_path;
use crate::migrate::{applied_sqlite_versions, known_migrations, unknown_versions};

/// A fresh connection outside the pools: backups and checks must not hold a
/// pooled reader (which is `query_only`) for their whole duration.
pub(crate) fn connect(path: &Path, busy_timeout_ms: u32) -> Result<SqliteConnection, Error> {
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
pub(crate) struct TextRow {
    #[diesel(sql_type = Text)]
    pub(crate) value: String,
}

/// `integrity_check` is `ok` and `foreign_key_check` finds nothing.
pub(crate) fn verify_file(conn: &mut SqliteConnection) -> Result<(), Error> {
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

pub(crate) fn sha256_file(path: &Path, progress: Progress<'_>) -> Result<(String, u64), Error> {
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
    let unknown = unknown_versions(
        applied_sqlite_versions(&mut conn)?,
        &known_migrations(migrations)?,
    );
    if !unknown.is_empty() {
        return Err(Error::SchemaTooNew(unknown));
    }
    Ok(manifest)
}
