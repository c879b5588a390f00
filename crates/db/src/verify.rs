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

/// A connection that can only read the file as it is: SQLite opens it read-only and
/// immutable, so checking a file never creates a `-wal` or `-shm` beside it, nor
/// changes it.
pub(crate) fn connect_read_only(path: &Path) -> Result<SqliteConnection, Error> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Backup("path is not UTF-8".into()))?;
    // A URI filename: `?`, `#` and `%` in the path would otherwise be read as syntax.
    let mut uri = String::from("file:");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    SqliteConnection::establish(&uri).map_err(|e| Error::Open {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The manifest beside `file`; without one, nothing is restored.
pub fn read_manifest(file: &Path) -> Result<Manifest, Error> {
    let manifest_file = manifest_path(file);
    let json = fs::read(&manifest_file).map_err(|e| {
        Error::Restore(format!(
            "no readable manifest {} ({e}); only verified backups can be restored",
            manifest_file.display()
        ))
    })?;
    serde_json::from_slice(&json)
        .map_err(|e| Error::Restore(format!("manifest {}: {e}", manifest_file.display())))
}

/// Checks the bytes of `copy` against `manifest` (the manifest of `backup`, which
/// messages name), then SQLite's own checks on it, read-only, and that this build
/// knows every migration applied to it.
pub(crate) fn verify_copy<S: MigrationSource<Sqlite>>(
    copy: &Path,
    backup: &Path,
    manifest: &Manifest,
    migrations: &S,
    progress: Progress<'_>,
) -> Result<(), Error> {
    let (sha256, size) = sha256_file(copy, progress)?;
    if size != manifest.size || sha256 != manifest.sha256 {
        return Err(Error::Restore(format!(
            "{} does not match its manifest (size {size} vs {}, sha256 differs: {}); the file is damaged",
            backup.display(),
            manifest.size,
            sha256 != manifest.sha256
        )));
    }
    let mut conn = connect_read_only(copy)?;
    verify_file(&mut conn).map_err(|e| Error::Restore(e.to_string()))?;
    let unknown = unknown_versions(
        applied_sqlite_versions(&mut conn)?,
        &known_migrations(migrations)?,
    );
    if !unknown.is_empty() {
        return Err(Error::SchemaTooNew(unknown));
    }
    Ok(())
}

/// Checks a backup against its manifest and SQLite's own checks (opening it
/// read-only), and that this build knows every migration applied to it.
pub fn verify_backup<S: MigrationSource<Sqlite>>(
    file: &Path,
    migrations: &S,
    progress: Progress<'_>,
) -> Result<Manifest, Error> {
    let manifest = read_manifest(file)?;
    verify_copy(file, file, &manifest, migrations, progress)?;
    Ok(manifest)
}
