//! Embedded migrations: run pending, revert the last, list applied and pending, and
//! refuse a file that a newer build has migrated; what a migration declares in its
//! `metadata.toml`, and SQLite table rebuilds run with foreign keys off.
//!
//! The migrations themselves belong to the service (`embed_migrations!` in its own
//! crate); this module only runs them, on the writer connection, taking the set of
//! the backend the database is on.
//!
//! A migration's `metadata.toml` may say, beside Diesel's `run_in_transaction`:
//!
//! - `loses_data = ["tokens"]`: the tables whose rows or columns its `up.sql`
//!   means to lose. The rehearsal (`migrate --dry-run`) fails on a table that
//!   loses rows, and the lint on a `DROP TABLE` or `DROP COLUMN`, unless the
//!   table is listed.
//! - `rebuild = true` (with `run_in_transaction = false`): a SQLite table
//!   rebuild, run as SQLite's 12-step ALTER procedure. Diesel runs every
//!   migration in a transaction, where `PRAGMA foreign_keys = OFF` does nothing,
//!   so dropping a parent table would fire its `ON DELETE CASCADE` keys; a
//!   declared rebuild runs with foreign keys off, in its own transaction, and
//!   commits only when `foreign_key_check` finds nothing.

use std::path::{Path, PathBuf};

use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, FileBasedMigrations, MigrationHarness};

use crate::{Connection, Db, Error};

/// What a migration's `metadata.toml` declares (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Declaration {
    /// Diesel's key. Absent from a `metadata.toml` that exists, Diesel takes it as
    /// false: the lint asks for it to be written out.
    #[serde(default)]
    pub run_in_transaction: bool,
    /// Tables whose rows or columns `up.sql` means to lose.
    #[serde(default)]
    pub loses_data: Vec<String>,
    /// A SQLite table rebuild, run with foreign keys off in its own transaction.
    #[serde(default)]
    pub rebuild: bool,
}

impl Default for Declaration {
    /// What a migration without `metadata.toml` declares.
    fn default() -> Self {
        Self {
            run_in_transaction: true,
            loses_data: Vec::new(),
            rebuild: false,
        }
    }
}

impl Declaration {
    /// Reads a `metadata.toml`; `origin` names it in the error.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Migration(format!("{origin}: {e}")))
    }

    /// The declaration beside `up.sql` in `dir`; the default when there is none.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("metadata.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()))(e)),
        }
    }

    /// True when `up.sql` means to lose data of `table`.
    pub fn may_lose(&self, table: &str) -> bool {
        self.loses_data
            .iter()
            .any(|t| t.eq_ignore_ascii_case(table))
    }
}

/// Which migration set: SQLite's or PostgreSQL's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationSet {
    Sqlite,
    Postgres,
}

/// A source of both migration sets that also knows what each migration declares.
pub trait Source: MigrationSource<Sqlite> + MigrationSource<Pg> {
    /// The declaration of migration `version` (as Diesel records it) in the set of
    /// `backend`. A source that keeps no `metadata.toml` declares nothing.
    fn declaration(&self, backend: MigrationSet, version: &str) -> Result<Declaration, Error> {
        let _ = (backend, version);
        Ok(Declaration::default())
    }
}

impl Source for EmbeddedMigrations {}

/// One set of migrations per backend, with the same versions in both: SQL differs
/// (`INTEGER PRIMARY KEY AUTOINCREMENT` against an identity column, say), the
/// schema it builds does not. A single `EmbeddedMigrations` serves as both sets for
/// a service whose SQL is portable.
pub struct Migrations {
    pub sqlite: EmbeddedMigrations,
    pub postgres: EmbeddedMigrations,
    /// `(version, metadata.toml)` of the SQLite migrations that have one.
    pub sqlite_metadata: &'static [(&'static str, &'static str)],
    /// The same for the PostgreSQL set.
    pub postgres_metadata: &'static [(&'static str, &'static str)],
}

impl Source for Migrations {
    fn declaration(&self, backend: MigrationSet, version: &str) -> Result<Declaration, Error> {
        let table = match backend {
            MigrationSet::Sqlite => self.sqlite_metadata,
            MigrationSet::Postgres => self.postgres_metadata,
        };
        match table.iter().find(|(v, _)| *v == version) {
            Some((_, text)) => Declaration::parse(text, &format!("metadata.toml of {version}")),
            None => Ok(Declaration::default()),
        }
    }
}

/// Both migration sets read from folders at run time (`<dir>/sqlite`,
/// `<dir>/postgres`), declarations included: for tools and tests that work on
/// migrations not compiled in.
#[derive(Debug, Clone)]
pub struct MigrationDirs {
    pub sqlite: PathBuf,
    pub postgres: PathBuf,
}

impl MigrationDirs {
    /// `<dir>/sqlite` and `<dir>/postgres`.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            sqlite: dir.as_ref().join("sqlite"),
            postgres: dir.as_ref().join("postgres"),
        }
    }

    fn dir(&self, backend: MigrationSet) -> &Path {
        match backend {
            MigrationSet::Sqlite => &self.sqlite,
            MigrationSet::Postgres => &self.postgres,
        }
    }
}

impl MigrationSource<Sqlite> for MigrationDirs {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Sqlite>>>> {
        FileBasedMigrations::from_path(&self.sqlite)?.migrations()
    }
}

impl MigrationSource<Pg> for MigrationDirs {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        FileBasedMigrations::from_path(&self.postgres)?.migrations()
    }
}

/// The version Diesel records for a migration folder: its name up to the first
/// `_`, without dashes (`2026-12-01-000004_x` is `20261201000004`). `build.rs`
/// derives it the same way.
pub(crate) fn version_of(name: &str) -> String {
    name.split('_').next().unwrap_or(name).replace('-', "")
}

impl Source for MigrationDirs {
    fn declaration(&self, backend: MigrationSet, version: &str) -> Result<Declaration, Error> {
        let dir = self.dir(backend);
        let entries =
            std::fs::read_dir(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if version_of(&name) == version {
                return Declaration::read(&entry.path());
            }
        }
        Ok(Declaration::default())
    }
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

/// Runs the migrations of `known` named in `pending`, in order; on SQLite, a
/// declared rebuild runs through [`rebuild`].
fn run_named<DB: Backend, C: MigrationHarness<DB>>(
    conn: &mut C,
    known: Vec<Box<dyn Migration<DB>>>,
    pending: &[String],
    mut rebuilds: impl FnMut(&mut C, &dyn Migration<DB>) -> Result<bool, Error>,
) -> Result<Vec<String>, Error> {
    // Creates the bookkeeping table on a fresh database (status only read it).
    conn.applied_migrations().map_err(migration_err)?;
    let mut applied = Vec::new();
    for migration in known {
        if pending.contains(&migration.name().to_string()) {
            if !rebuilds(conn, &*migration)? {
                conn.run_migration(&*migration).map_err(migration_err)?;
            }
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
    rebuilds: impl FnOnce(&mut C, &dyn Migration<DB>) -> Result<bool, Error>,
) -> Result<(), Error> {
    let migration = known
        .into_iter()
        .find(|m| m.name().to_string() == name)
        .ok_or_else(|| migration_err(format!("{name} vanished")))?;
    if !rebuilds(conn, &*migration)? {
        conn.revert_migration(&*migration).map_err(migration_err)?;
    }
    Ok(())
}

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// SQLite's 12-step ALTER procedure around one migration declared `rebuild`:
/// foreign keys off (outside any transaction, where the pragma takes), the
/// migration and its bookkeeping row in one `BEGIN IMMEDIATE` transaction,
/// `foreign_key_check` before the commit (a violation rolls everything back),
/// then foreign keys as they were.
fn rebuild(
    conn: &mut SqliteConnection,
    migration: &dyn Migration<Sqlite>,
    direction: Direction,
) -> Result<(), Error> {
    let enforced: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT foreign_keys FROM pragma_foreign_keys)",
    ))
    .get_result(conn)?;
    conn.batch_execute("PRAGMA foreign_keys = OFF")?;
    conn.batch_execute("BEGIN IMMEDIATE")?;
    let version = migration.name().version().to_string();
    let name = migration.name().to_string();
    let work = (|| -> Result<(), Error> {
        match direction {
            Direction::Up => migration.run(conn),
            Direction::Down => migration.revert(conn),
        }
        .map_err(migration_err)?;
        let violations: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM pragma_foreign_key_check)",
        ))
        .get_result(conn)?;
        if violations > 0 {
            return Err(Error::Migration(format!(
                "{name}: foreign_key_check found {violations} violation(s); nothing was changed"
            )));
        }
        let bookkeeping = match direction {
            Direction::Up => "INSERT INTO __diesel_schema_migrations (version) VALUES (?)",
            Direction::Down => "DELETE FROM __diesel_schema_migrations WHERE version = ?",
        };
        diesel::sql_query(bookkeeping)
            .bind::<Text, _>(&version)
            .execute(conn)?;
        Ok(())
    })();
    let ended = match &work {
        Ok(()) => conn.batch_execute("COMMIT"),
        Err(_) => conn.batch_execute("ROLLBACK"),
    };
    let restored = conn.batch_execute(&format!("PRAGMA foreign_keys = {enforced}"));
    work?;
    ended?;
    restored?;
    Ok(())
}

/// The hook [`run_named`] and [`revert_named`] take on SQLite: runs a migration
/// `source` declares a rebuild through [`rebuild`] and says so.
fn sqlite_rebuilds<'s, S: Source>(
    source: &'s S,
    direction: Direction,
) -> impl FnMut(&mut SqliteConnection, &dyn Migration<Sqlite>) -> Result<bool, Error> + 's {
    move |conn, migration| {
        let version = migration.name().version().to_string();
        if !source.declaration(MigrationSet::Sqlite, &version)?.rebuild {
            return Ok(false);
        }
        rebuild(conn, migration, direction)?;
        Ok(true)
    }
}

/// Runs the migrations of `source` named in `names` on `conn`, in order.
pub(crate) fn run_on<S: Source>(
    source: &S,
    conn: &mut Connection,
    names: &[String],
) -> Result<Vec<String>, Error> {
    match conn {
        Connection::Sqlite(c) => run_named(
            c,
            known_migrations(source)?,
            names,
            sqlite_rebuilds(source, Direction::Up),
        ),
        Connection::Pg(c) => run_named(c, known_migrations(source)?, names, no_rebuilds),
    }
}

/// Reverts the migration of `source` named `name` on `conn`.
pub(crate) fn revert_on<S: Source>(
    source: &S,
    conn: &mut Connection,
    name: &str,
) -> Result<(), Error> {
    match conn {
        Connection::Sqlite(c) => revert_named(
            c,
            known_migrations(source)?,
            name,
            sqlite_rebuilds(source, Direction::Down),
        ),
        Connection::Pg(c) => revert_named(c, known_migrations(source)?, name, no_rebuilds),
    }
}

/// PostgreSQL alters tables in place: no migration there needs a rebuild.
fn no_rebuilds<C>(_: &mut C, _: &dyn Migration<Pg>) -> Result<bool, Error> {
    Ok(false)
}

impl<S: Source> Migrator<'_, S> {
    /// The database these migrations run on.
    pub fn db(&self) -> &Db {
        self.db
    }

    /// The migrations.
    pub fn source(&self) -> &S {
        &self.source
    }

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
        run_on(&self.source, &mut conn, &status.pending)
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
        revert_on(&self.source, &mut conn, last)?;
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
    pub fn migrator<S: Source>(&self, source: S) -> Migrator<'_, S> {
        Migrator { db: self, source }
    }
}
