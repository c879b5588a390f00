//! Rehearsing pending migrations (`migrate --dry-run`) on a copy of the real
//! database: a `VACUUM INTO` snapshot on SQLite, a transaction rolled back on
//! PostgreSQL. The live database is never changed.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::backup::count_rows;
use crate::files::PARTIAL;
use crate::migrate::run_on;
use crate::verify::{connect, verify_file};
use crate::{Config, Connection, Database, Db, Error, MigrationSet, Migrator, Source};

/// Rows per table, by name.
pub type Counts = Vec<(String, i64)>;

/// One pending migration, as the rehearsal ran it.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub elapsed: Duration,
    pub before: Counts,
    pub after: Counts,
    /// Tables that lost rows (`before`, `after`; a dropped table is at 0), and
    /// whether the migration declares it means to (`loses_data`).
    pub lost: Vec<Lost>,
}

/// A table that had more rows before a migration than after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub table: String,
    pub before: i64,
    pub after: i64,
    pub declared: bool,
}

/// What a rehearsal found.
#[derive(Debug, Clone, Default)]
pub struct Rehearsal {
    pub steps: Vec<Step>,
    /// How the copy was checked afterwards, in words.
    pub checks: String,
}

impl Rehearsal {
    /// The losses no migration declared: each fails the rehearsal.
    pub fn undeclared(&self) -> Vec<(&str, &Lost)> {
        self.steps
            .iter()
            .flat_map(|s| s.lost.iter().map(move |l| (s.name.as_str(), l)))
            .filter(|(_, l)| !l.declared)
            .collect()
    }
}

fn losses(before: &Counts, after: &Counts, may_lose: impl Fn(&str) -> bool) -> Vec<Lost> {
    before
        .iter()
        .filter_map(|(table, n)| {
            let now = after
                .iter()
                .find(|(t, _)| t == table)
                .map_or(0, |(_, m)| *m);
            (now < *n).then(|| Lost {
                table: table.clone(),
                before: *n,
                after: now,
                declared: may_lose(table),
            })
        })
        .collect()
}

fn pg_counts(conn: &mut PgConnection) -> Result<Counts, Error> {
    count_rows(
        conn,
        "SELECT tablename::text AS value FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename != '__diesel_schema_migrations' ORDER BY tablename",
    )
}

/// Rows per table, leaving out the bookkeeping table and the shadow tables a
/// virtual table (FTS5's) keeps its index in: their row counts go down when the
/// index merges segments, and the virtual table's own count is the one that
/// tells whether rows were lost.
pub(crate) fn sqlite_counts(conn: &mut SqliteConnection) -> Result<Counts, Error> {
    count_rows(
        conn,
        "SELECT name AS value FROM pragma_table_list \
         WHERE schema = 'main' AND type IN ('table', 'virtual') AND name NOT LIKE 'sqlite_%' \
         AND name != '__diesel_schema_migrations' ORDER BY name",
    )
}

/// Runs each of `pending` on `conn`, counting rows around it.
fn steps<S: Source>(
    source: &S,
    conn: &mut Connection,
    pending: &[String],
) -> Result<Vec<Step>, Error> {
    let set = match conn {
        Connection::Sqlite(_) => MigrationSet::Sqlite,
        Connection::Pg(_) => MigrationSet::Postgres,
    };
    let count = |conn: &mut Connection| match conn {
        Connection::Sqlite(c) => sqlite_counts(c),
        Connection::Pg(c) => pg_counts(c),
    };
    let mut steps = Vec::new();
    for name in pending {
        let before = count(conn)?;
        let started = Instant::now();
        run_on(source, conn, std::slice::from_ref(name))?;
        let elapsed = started.elapsed();
        let after = count(conn)?;
        let version = crate::migrate::version_of(name);
        let declaration = source.declaration(set, &version)?;
        let lost = losses(&before, &after, |t| declaration.may_lose(t));
        steps.push(Step {
            name: name.clone(),
            elapsed,
            before,
            after,
            lost,
        });
    }
    Ok(steps)
}

impl<S: Source> Migrator<'_, S> {
    /// Runs the pending migrations on a copy and reports what each did; the
    /// database itself is not changed. Refuses a file migrated by a newer build.
    pub fn rehearse(&self) -> Result<Rehearsal, Error> {
        let status = self.status()?;
        if !status.unknown.is_empty() {
            return Err(Error::SchemaTooNew(status.unknown));
        }
        if self.db().is_postgres() {
            self.rehearse_postgres(&status.pending)
        } else {
            self.rehearse_sqlite(&status.pending)
        }
    }

    fn rehearse_postgres(&self, pending: &[String]) -> Result<Rehearsal, Error> {
        let mut conn = self.db().writer_conn()?;
        let mut outcome = None;
        // Diesel's own transaction, so that each migration's nests as a savepoint;
        // the error at the end is what rolls everything back.
        let _ =
            diesel::Connection::transaction::<(), diesel::result::Error, _>(&mut *conn, |conn| {
                outcome = Some(steps(self.source(), conn, pending));
                Err(diesel::result::Error::RollbackTransaction)
            });
        let steps =
            outcome.ok_or_else(|| Error::Migration("the rehearsal did not run".into()))??;
        Ok(Rehearsal {
            steps,
            checks: "rolled back; PostgreSQL checked every key as it went".into(),
        })
    }

    fn rehearse_sqlite(&self, pending: &[String]) -> Result<Rehearsal, Error> {
        let config = self.db().config();
        let database = config.sqlite_file("rehearse", "a transaction")?;
        let copy = rehearsal_path(database);
        let _ = fs::remove_file(&copy);
        let result = (|| {
            connect(database, config.busy_timeout_ms)?
                .batch_execute(&crate::backup::vacuum_into(&copy)?)
                .map_err(|e| Error::Migration(format!("snapshot for the rehearsal: {e}")))?;
            let copy_config = Config {
                database: Database::Sqlite(copy.clone()),
                ..config.clone()
            };
            let db = Db::open(&copy_config)?;
            let steps = steps(self.source(), &mut *db.writer_conn()?, pending)?;
            drop(db);
            verify_file(&mut connect(&copy, config.busy_timeout_ms)?)
                .map_err(|e| Error::Migration(format!("after the rehearsal: {e}")))?;
            Ok(Rehearsal {
                steps,
                checks: "integrity_check ok, foreign_key_check ok".into(),
            })
        })();
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(crate::files::with_suffix(&copy, suffix));
        }
        result
    }
}

/// The snapshot beside the database (same disk, same permissions), under a
/// name a backup folder listing would never take for a backup.
fn rehearsal_path(database: &std::path::Path) -> PathBuf {
    let name = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    database.with_file_name(format!(".{name}.rehearsal-{}{PARTIAL}", std::process::id()))
}
