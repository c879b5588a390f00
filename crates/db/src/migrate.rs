//! Embedded migrations: run pending, revert the last, list applied and pending, and
//! refuse a file that a newer build has migrated.
//!
//! The migrations themselves belong to the service (`embed_migrations!` in its own
//! crate); this module only runs them, on the writer connection.

use diesel::migration::{Migration, MigrationSource};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use diesel_migrations::MigrationHarness;

use crate::{Db, Error};

/// Where a database stands against a set of migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied migrations this build knows, oldest first.
    pub applied: Vec<String>,
    /// Known migrations not yet applied, oldest first.
    pub pending: Vec<String>,
    /// Applied migrations this build does not know: a newer build migrated the file.
    pub unknown: Vec<String>,
}

/// Runs a service's migrations against a [`Db`].
pub struct Migrator<'a, S> {
    db: &'a Db,
    source: S,
}

impl<S> std::fmt::Debug for Migrator<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator").finish_non_exhaustive()
    }
}

fn migration_err(err: impl std::fmt::Display) -> Error {
    Error::Migration(err.to_string())
}

/// The migrations `source` holds, oldest first.
pub(crate) fn known_migrations<S: MigrationSource<Sqlite>>(
    source: &S,
) -> Result<Vec<Box<dyn Migration<Sqlite>>>, Error> {
    let mut migrations = source.migrations().map_err(migration_err)?;
    migrations.sort_by(|a, b| a.name().version().cmp(&b.name().version()));
    Ok(migrations)
}

/// The applied versions none of `known` has: the file was migrated by a newer build.
pub(crate) fn unknown_versions(
    applied: Vec<String>,
    known: &[Box<dyn Migration<Sqlite>>],
) -> Vec<String> {
    let known: Vec<String> = known
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let mut unknown: Vec<String> = applied.into_iter().filter(|v| !known.contains(v)).collect();
    unknown.sort();
    unknown
}

impl<S: MigrationSource<Sqlite>> Migrator<'_, S> {
    fn known(&self) -> Result<Vec<Box<dyn Migration<Sqlite>>>, Error> {
        known_migrations(&self.source)
    }

    /// Applied, pending and unknown migrations. Reads on a reader connection, so
    /// readiness checks never queue behind writes.
    pub fn status(&self) -> Result<MigrationStatus, Error> {
        let applied = applied_versions(&mut *self.db.reader_conn()?)?;
        let known = self.known()?;
        let mut status = MigrationStatus::default();
        for migration in &known {
            let name = migration.name().to_string();
            if applied.contains(&migration.name().version().to_string()) {
                status.applied.push(name);
            } else {
                status.pending.push(name);
            }
        }
        status.unknown = unknown_versions(applied, &known);
        Ok(status)
    }

    /// Errors unless the file is exactly at this build's schema: nothing pending,
    /// nothing unknown. Servers call this before serving.
    pub fn ensure_current(&self) -> Result<(), Error> {
        let status = self.status()?;
        if !status.unknown.is_empty() {
            return Err(Error::SchemaTooNew(status.unknown));
        }
        if !status.pending.is_empty() {
            return Err(Error::MigrationsPending(status.pending));
        }
        Ok(())
    }

    /// Applies every pending migration in order; returns the names applied.
    /// Refuses a file migrated by a newer build.
    pub fn run_pending(&self) -> Result<Vec<String>, Error> {
        let status = self.status()?;
        if !status.unknown.is_empty() {
            return Err(Error::SchemaTooNew(status.unknown));
        }
        let mut conn = self.db.writer_conn()?;
        // Creates the bookkeeping table on a fresh file (status only read it).
        conn.applied_migrations().map_err(migration_err)?;
        let mut applied = Vec::new();
        for migration in self.known()? {
            if status.pending.contains(&migration.name().to_string()) {
                conn.run_migration(&*migration).map_err(migration_err)?;
                applied.push(migration.name().to_string());
            }
        }
        Ok(applied)
    }

    /// Reverts the most recently applied migration; returns its name, or `None`
    /// when nothing is applied.
    pub fn revert_last(&self) -> Result<Option<String>, Error> {
        let status = self.status()?;
        if !status.unknown.is_empty() {
            return Err(Error::SchemaTooNew(status.unknown));
        }
        let Some(last) = status.applied.last() else {
            return Ok(None);
        };
        let mut conn = self.db.writer_conn()?;
        let migration = self
            .known()?
            .into_iter()
            .find(|m| m.name().to_string() == *last)
            .ok_or_else(|| migration_err(format!("{last} vanished")))?;
        conn.revert_migration(&*migration).map_err(migration_err)?;
        Ok(Some(last.clone()))
    }
}

/// Versions recorded in `__diesel_schema_migrations`, oldest first; none when
/// the table does not exist yet. Reads only, so it works on `query_only` readers.
pub(crate) fn applied_versions(conn: &mut SqliteConnection) -> Result<Vec<String>, Error> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let exists: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM sqlite_master WHERE name = '__diesel_schema_migrations')",
    ))
    .get_result(conn)?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<Version> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(conn)?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

impl Db {
    /// The migrations of `source` (usually a service's `embed_migrations!` constant)
    /// against this database.
    pub fn migrator<S: MigrationSource<Sqlite>>(&self, source: S) -> Migrator<'_, S> {
        Migrator { db: self, source }
    }
}
