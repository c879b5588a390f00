//! Embedded migrations: run pending, revert the last, list applied and pending, and
//! refuse a file that a newer build has migrated.
//!
//! The migrations themselves belong to the service (`embed_migrations!` in its own
//! crate); this module only runs them, on the writer connection, taking the set of
//! the backend the database is on.

use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::{Connection, Db, Error};

/// One set of migrations per backend, with the same versions in both: SQL differs
/// (`INTEGER PRIMARY KEY AUTOINCREMENT` against an identity column, say), the
/// schema it builds does not. A single `EmbeddedMigrations` serves as both sets for
/// a service whose SQL is portable.
pub struct Migrations {
    pub sqlite: EmbeddedMigrations,
    pub postgres: EmbeddedMigrations,
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrations").finish_non_exhaustive()
    }
}

impl MigrationSource<Sqlite> for Migrations {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Sqlite>>>> {
        MigrationSource::<Sqlite>::migrations(&self.sqlite)
    }
}

impl MigrationSource<Pg> for Migrations {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        MigrationSource::<Pg>::migrations(&self.postgres)
    }
}

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
pub(crate) fn known_migrations<DB: Backend, S: MigrationSource<DB>>(
    source: &S,
) -> Result<Vec<Box<dyn Migration<DB>>>, Error> {
    let mut migrations = source.migrations().map_err(migration_err)?;
    migrations.sort_by(|a, b| a.name().version().cmp(&b.name().version()));
    Ok(migrations)
}

/// The applied versions none of `known` has: the file was migrated by a newer build.
pub(crate) fn unknown_versions<DB: Backend>(
    applied: Vec<String>,
    known: &[Box<dyn Migration<DB>>],
) -> Vec<String> {
    let known: Vec<String> = known
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let mut unknown: Vec<String> = applied.into_iter().filter(|v| !known.contains(v)).collect();
    unknown.sort();
    unknown
}

/// Where `applied` stands against `known`.
fn status_of<DB: Backend>(
    applied: Vec<String>,
    known: &[Box<dyn Migration<DB>>],
) -> MigrationStatus {
    let mut status = MigrationStatus::default();
    for migration in known {
        let name = migration.name().to_string();
        if applied.contains(&migration.name().version().to_string()) {
            status.applied.push(name);
        } else {
            status.pending.push(name);
        }
    }
    status.unknown = unknown_versions(applied, known);
    status
}

/// Runs the migrations of `known` named in `pending`, in order.
fn run_named<DB: Backend, C: MigrationHarness<DB>>(
    conn: &mut C,
    known: Vec<Box<dyn Migration<DB>>>,
    pending: &[String],
) -> Result<Vec<String>, Error> {
    // Creates the bookkeeping table on a fresh database (status only read it).
    conn.applied_migrations().map_err(migration_err)?;
    let mut applied = Vec::new();
    for migration in known {
        if pending.contains(&migration.name().to_string()) {
            conn.run_migration(&*migration).map_err(migration_err)?;
            applied.push(migration.name().to_string());
        }
    }
    Ok(applied)
}

/// Reverts the migration of `known` named `name`.
fn revert_named<DB: Backend, C: MigrationHarness<DB>>(
    conn: &mut C,
    known: Vec<Box<dyn Migration<DB>>>,
    name: &str,
) -> Result<(), Error> {
    let migration = known
        .into_iter()
        .find(|m| m.name().to_string() == name)
        .ok_or_else(|| migration_err(format!("{name} vanished")))?;
    conn.revert_migration(&*migration).map_err(migration_err)?;
    Ok(())
}

impl<S: MigrationSource<Sqlite> + MigrationSource<Pg>> Migrator<'_, S> {
    /// Applied, pending and unknown migrations. Reads on a reader connection, so
    /// readiness checks never queue behind writes.
    pub fn status(&self) -> Result<MigrationStatus, Error> {
        let applied = applied_versions(&mut *self.db.reader_conn()?)?;
        Ok(if self.db.is_postgres() {
            status_of::<Pg>(applied, &known_migrations(&self.source)?)
        } else {
            status_of::<Sqlite>(applied, &known_migrations(&self.source)?)
        })
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
        match &mut *conn {
            Connection::Sqlite(c) => run_named(c, known_migrations(&self.source)?, &status.pending),
            Connection::Pg(c) => run_named(c, known_migrations(&self.source)?, &status.pending),
        }
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
        match &mut *conn {
            Connection::Sqlite(c) => revert_named(c, known_migrations(&self.source)?, last)?,
            Connection::Pg(c) => revert_named(c, known_migrations(&self.source)?, last)?,
        }
        Ok(Some(last.clone()))
    }
}

/// Versions recorded in `__diesel_schema_migrations`, oldest first; none when
/// the table does not exist yet. Reads only, so it works on read-only readers.
pub(crate) fn applied_versions(conn: &mut Connection) -> Result<Vec<String>, Error> {
    match conn {
        Connection::Sqlite(c) => applied_sqlite_versions(c),
        Connection::Pg(c) => {
            let exists: bool = diesel::select(diesel::dsl::sql::<Bool>(
                "to_regclass('__diesel_schema_migrations') IS NOT NULL",
            ))
            .get_result(c)?;
            if !exists {
                return Ok(Vec::new());
            }
            recorded_versions(c)
        }
    }
}

/// [`applied_versions`] of a SQLite file opened on its own (a backup, say).
pub(crate) fn applied_sqlite_versions(conn: &mut SqliteConnection) -> Result<Vec<String>, Error> {
    let exists: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM sqlite_master WHERE name = '__diesel_schema_migrations')",
    ))
    .get_result(conn)?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    recorded_versions(conn)
}

fn recorded_versions<C>(conn: &mut C) -> Result<Vec<String>, Error>
where
    C: diesel::Connection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Version>,
{
    let rows: Vec<Version> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(conn)?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

impl Db {
    /// The migrations of `source` (usually a service's `embed_migrations!` constant)
    /// against this database.
    pub fn migrator<S: MigrationSource<Sqlite> + MigrationSource<Pg>>(
        &self,
        source: S,
    ) -> Migrator<'_, S> {
        Migrator { db: self, source }
    }
}
