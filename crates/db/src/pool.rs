//! The `Db` handle: a writer pool (one connection on SQLite, `DB_WRITERS` on
//! PostgreSQL), a pool of read-only readers, and the session settings applied to
//! every connection either pool opens.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::r2d2::{self, CustomizeConnection, Pool};
use diesel::sql_types::Text;

use crate::Connection;
use crate::config::Database;
use crate::connection::{Manager, take_lost_race};
use crate::snapshot::{Reader, Slot, Snapshots};
use crate::{Config, Error};

/// A connection checked out of one of [`Db`]'s pools; back in the pool when dropped.
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// The pragmas one connection gets before first use.
#[derive(Debug, Clone)]
struct Pragmas {
    busy_timeout_ms: u32,
    synchronous: crate::Synchronous,
    foreign_keys: bool,
    journal_size_limit: i64,
    wal_autocheckpoint: u32,
    cache_kib: i64,
    mmap_size: i64,
    query_only: bool,
}

impl Pragmas {
    fn sql(&self) -> String {
        // busy_timeout first: switching to WAL may have to wait for another process.
        format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
             PRAGMA foreign_keys = {}; PRAGMA journal_size_limit = {}; \
             PRAGMA wal_autocheckpoint = {}; PRAGMA cache_size = -{}; \
             PRAGMA mmap_size = {}; PRAGMA temp_store = MEMORY; PRAGMA query_only = {};",
            self.busy_timeout_ms,
            self.synchronous,
            if self.foreign_keys { "ON" } else { "OFF" },
            self.journal_size_limit,
            self.wal_autocheckpoint,
            self.cache_kib,
            self.mmap_size,
            if self.query_only { "ON" } else { "OFF" },
        )
    }

    /// What each pragma must read back as.
    fn expected(&self) -> [(&'static str, String); 9] {
        [
            ("cache_size", (-self.cache_kib).to_string()),
            ("mmap_size", self.mmap_size.to_string()),
            ("journal_mode", "wal".into()),
            ("busy_timeout", self.busy_timeout_ms.to_string()),
            ("synchronous", self.synchronous.level().to_string()),
            ("foreign_keys", i64::from(self.foreign_keys).to_string()),
            ("journal_size_limit", self.journal_size_limit.to_string()),
            ("wal_autocheckpoint", self.wal_autocheckpoint.to_string()),
            ("query_only", i64::from(self.query_only).to_string()),
        ]
    }
}

/// The session settings one PostgreSQL connection gets before first use.
#[derive(Debug, Clone)]
struct PgSession {
    statement_timeout_ms: u64,
    idle_in_transaction_timeout_ms: u64,
    application_name: String,
    read_only: bool,
}

impl PgSession {
    fn sql(&self) -> String {
        format!(
            "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
             SET application_name = '{}'; SET default_transaction_read_only = {};",
            self.statement_timeout_ms,
            self.idle_in_transaction_timeout_ms,
            self.application_name.replace('\'', "''"),
            if self.read_only { "on" } else { "off" },
        )
    }

    /// What each setting must read back as (`pg_settings.setting`: milliseconds
    /// as a number).
    fn expected(&self) -> [(&'static str, String); 4] {
        [
            ("statement_timeout", self.statement_timeout_ms.to_string()),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_timeout_ms.to_string(),
            ),
            ("application_name", self.application_name.clone()),
            (
                "default_transaction_read_only",
                if self.read_only { "on" } else { "off" }.into(),
            ),
        ]
    }
}

/// Sets up every connection a pool opens: the pragmas on SQLite, the session
/// settings on PostgreSQL.
#[derive(Debug, Clone)]
struct Setup {
    pragmas: Pragmas,
    pg: PgSession,
}

impl Setup {
    fn reader(&self) -> Setup {
        Setup {
            pragmas: Pragmas {
                query_only: true,
                ..self.pragmas.clone()
            },
            pg: PgSession {
                read_only: true,
                ..self.pg.clone()
            },
        }
    }

    fn sql(&self, conn: &Connection) -> String {
        match conn {
            Connection::Sqlite(_) => self.pragmas.sql(),
            Connection::Pg(_) => self.pg.sql(),
        }
    }

    /// Reads each setting back and errors on the first that did not take.
    fn check(&self, conn: &mut Connection) -> Result<(), Error> {
        let expected: Vec<(&'static str, String)> = match conn {
            Connection::Sqlite(_) => self.pragmas.expected().into(),
            Connection::Pg(_) => self.pg.expected().into(),
        };
        for (name, expected) in expected {
            let actual = match conn {
                Connection::Sqlite(_) => pragma(conn, name)?,
                Connection::Pg(_) => pg_setting(conn, name)?,
            };
            if actual != expected {
                return Err(Error::Pragma {
                    name,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }
}

impl CustomizeConnection<Connection, r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), r2d2::Error> {
        conn.batch_execute(&self.sql(conn))
            .map_err(r2d2::Error::QueryError)
    }
}

/// Reads one PostgreSQL setting as `pg_settings` shows it (durations in
/// milliseconds, switches as `on`/`off`).
pub fn pg_setting(conn: &mut Connection, name: &str) -> Result<String, Error> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        setting: String,
    }
    Ok(
        diesel::sql_query("SELECT setting FROM pg_settings WHERE name = $1")
            .bind::<Text, _>(name)
            .get_result::<Row>(conn)?
            .setting,
    )
}

/// Reads one pragma as text, e.g. `pragma(conn, "journal_mode")` gives `"wal"`.
/// Knows the pragmas this crate sets; SQLite only.
pub fn pragma(conn: &mut Connection, name: &str) -> Result<String, Error> {
    macro_rules! read {
        ($column:ident) => {{
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = Text)]
                $column: String,
            }
            diesel::sql_query(format!("PRAGMA {name}"))
                .get_result::<Row>(conn)
                .map(|row| row.$column)?
        }};
    }
    Ok(match name {
        "busy_timeout" => read!(timeout),
        "journal_mode" => read!(journal_mode),
        "synchronous" => read!(synchronous),
        "foreign_keys" => read!(foreign_keys),
        "journal_size_limit" => read!(journal_size_limit),
        "wal_autocheckpoint" => read!(wal_autocheckpoint),
        "query_only" => read!(query_only),
        "cache_size" => read!(cache_size),
        "mmap_size" => read!(mmap_size),
        _ => {
            return Err(Error::Config {
                key: "pragma".into(),
                message: format!("{name:?} is not a pragma this crate reads"),
            });
        }
    })
}

/// Handle to one database, SQLite or PostgreSQL: cheap to clone, shared by every
/// thread.
///
/// Writes go through [`Db::write`]. On SQLite it holds the only writer connection
/// inside a `BEGIN IMMEDIATE` transaction, so concurrent writers queue instead of
/// failing with "database is locked"; on PostgreSQL writers run in parallel on
/// `DB_WRITERS` connections, each in a serializable transaction retried when it
/// loses a race. Reads go through [`Db::read`] on read-only connections that never
/// block a writer.
#[derive(Clone, Debug)]
pub struct Db {
    writer: Pool<Manager>,
    readers: Pool<Manager>,
    config: Config,
    /// Tells this database's [`Db::read_here`] connections from another's.
    id: u64,
    reader_setup: Setup,
    snapshots: Arc<Snapshots>,
}

/// The ids of [`Db`]s, one per [`Db::open`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Where this thread keeps its reader of [`Db::read_here`], with the id of its
    /// database.
    static OWN_READER: Cell<Option<(u64, Arc<Slot>)>> = const { Cell::new(None) };
}

impl Db {
    /// Opens the database. A SQLite file is created (with its folder) if needed; a
    /// PostgreSQL server that cannot be reached is an [`Error::Connect`] with the
    /// server's message. Builds both pools and checks that every setting took on a
    /// connection of each.
    pub fn open(config: &Config) -> Result<Db, Error> {
        let manager = Manager {
            database: config.database.clone(),
        };
        match &config.database {
            Database::Sqlite(path) => {
                crate::files::create_parent(path)?;
                crate::restore::settle_interrupted(config)?;
                if path.to_str().is_none() {
                    return Err(Error::Config {
                        key: "DATABASE_URL".into(),
                        message: "the path must be valid UTF-8".into(),
                    });
                }
            }
            // One connection first, for the server's own message: the pool would
            // only say that it timed out.
            Database::Postgres(_) => {
                Connection::open(&config.database).map_err(|err| Error::Connect {
                    database: config.database.to_string(),
                    message: one_line(&err.to_string()),
                })?;
            }
        }
        let setup = Setup {
            pg: PgSession {
                statement_timeout_ms: config.pg_statement_timeout_ms,
                idle_in_transaction_timeout_ms: config.pg_idle_in_transaction_timeout_ms,
                application_name: config
                    .pg_application_name
                    .clone()
                    .unwrap_or_else(program_name),
                read_only: false,
            },
            pragmas: Pragmas {
                busy_timeout_ms: config.busy_timeout_ms,
                synchronous: config.synchronous,
                foreign_keys: config.foreign_keys,
                journal_size_limit: config.journal_size_limit,
                wal_autocheckpoint: config.wal_autocheckpoint,
                cache_kib: config.cache_kib,
                mmap_size: config.mmap_size,
                query_only: false,
            },
        };
        let writers = match config.database {
            Database::Sqlite(_) => 1,
            Database::Postgres(_) => config.writers,
        };
        // The writer is built first: it switches the file to WAL before any reader,
        // which cannot change the journal mode once query_only is on.
        let snapshots = Arc::new(Snapshots::new(config.snapshot_hold));
        // A writer back in its pool has finished its write: reads after that see it.
        let writer = build_pool(
            &manager,
            writers,
            config,
            setup.clone(),
            Some(snapshots.writes()),
        )?;
        let reader_setup = setup.reader();
        let readers = build_pool(&manager, config.readers, config, reader_setup.clone(), None)?;
        let db = Db {
            writer,
            readers,
            config: config.clone(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            reader_setup,
            snapshots,
        };
        setup.check(&mut *db.writer_conn()?)?;
        db.reader_setup.check(&mut *db.reader_conn()?)?;
        Ok(db)
    }

    /// `"sqlite"` or `"postgresql"`.
    pub fn backend(&self) -> &'static str {
        self.config.database.backend()
    }

    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.config.database, Database::Postgres(_))
    }

    /// The configuration this handle was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs `f` in a write transaction on a writer connection (see
    /// [`Connection::write_transaction`]): committed if it returns `Ok`, rolled
    /// back if it returns `Err`. On PostgreSQL a transaction that lost a
    /// serialization race runs again, from the start, until `DB_POOL_TIMEOUT_MS`
    /// (`Config::pool_timeout`) has passed since the write began, and then
    /// answers [`Error::Busy`]: a count of tries would give up sooner on a
    /// busier machine, where each try takes longer. So `f` must have no effect
    /// outside the database that a second run would repeat. (The race is seen on
    /// the connection, not in `f`'s error, so any error type works; a connection
    /// given an instrumentation of its own is not retried.)
    ///
    /// A failed `COMMIT` (a full disk, say) is rolled back too, and `f`'s own
    /// error is what the caller gets even when the `ROLLBACK` after it fails.
    /// The writer is never kept inside a transaction: a connection whose
    /// rollback failed is dropped by the pool when it comes back, and the next
    /// write opens a fresh one.
    pub fn write<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        F: FnMut(&mut Connection) -> Result<T, E>,
        E: From<diesel::result::Error> + From<Error>,
    {
        let deadline = Instant::now() + self.config.pool_timeout;
        let mut conn = self.writer_conn()?;
        let mut attempt = 1;
        loop {
            take_lost_race();
            match conn.write_transaction(&mut f) {
                Err(_) if take_lost_race() => {
                    let wait = backoff(attempt);
                    if Instant::now() + wait > deadline {
                        return Err(Error::Busy.into());
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// Runs `f` on a reader connection. Each statement sees a consistent snapshot
    /// of its own; a closure that needs several statements to agree wraps them in
    /// `conn.transaction(...)` (a read transaction: it never blocks the writer).
    /// Single-statement reads, the common case, skip the `BEGIN`/`COMMIT`.
    pub fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E>,
        E: From<Error>,
    {
        let mut conn = self.reader_conn()?;
        f(&mut conn)
    }

    /// Runs `f` on a reader connection of the calling thread's own, opened on
    /// its first call (with the pool's settings, outside the pool) and kept for
    /// the next: no hop to another thread and no checkout, for reads short enough
    /// to run where the caller is (a point read takes a few microseconds). A
    /// thread keeps one such connection, for the database it read last; one whose
    /// `f` panicked is closed. On PostgreSQL, whose reads wait on the network, it
    /// is [`Db::read`].
    ///
    /// `f` runs in a read transaction that the thread keeps from one call to the
    /// next (see `snapshot.rs`): it sees every write through this `Db` that
    /// finished before the call, and another process's commits at most
    /// `SQLITE_SNAPSHOT_MS` (`Config::snapshot_hold`) late. Statements in `f` see
    /// one snapshot, and `conn.transaction(...)` in `f` is a savepoint.
    pub fn read_here<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E>,
        E: From<Error>,
    {
        if self.is_postgres() {
            return self.read(f);
        }
        // Taken out while `f` runs (a read inside `f` opens its own), and put back
        // after; a slot whose `f` panicked is dropped with its reader.
        let slot = match OWN_READER.take() {
            Some((id, slot)) if id == self.id => slot,
            other => {
                // The reader of another database is closed with its slot.
                drop(other);
                self.snapshots.slot(Reader::new(self.open_reader()?))
            }
        };
        let mut reader = match Snapshots::take(&slot) {
            Some(reader) => reader,
            None => Reader::new(self.open_reader()?),
        };
        if !self.snapshots.refresh(&mut reader) {
            // Closed: its transaction could not end or begin. A new one that cannot
            // begin one either reads without.
            reader = Reader::new(self.open_reader()?);
            let _ = self.snapshots.refresh(&mut reader);
        }
        let outcome = f(reader.conn());
        self.snapshots.give_back(&slot, reader);
        OWN_READER.set(Some((self.id, slot)));
        outcome
    }

    fn open_reader(&self) -> Result<Connection, Error> {
        let open_error = |err: &dyn std::fmt::Display| Error::Open {
            path: self
                .config
                .database
                .sqlite_path()
                .unwrap_or(Path::new(""))
                .into(),
            message: err.to_string(),
        };
        let manager = Manager {
            database: self.config.database.clone(),
        };
        let mut conn = r2d2::ManageConnection::connect(&manager).map_err(|e| open_error(&e))?;
        self.reader_setup
            .on_acquire(&mut conn)
            .map_err(|e| open_error(&e))?;
        Ok(conn)
    }

    /// The writer connection itself, for work that manages its own transactions
    /// (migrations, checkpoints). Waits at most the pool timeout.
    pub fn writer_conn(&self) -> Result<PooledConnection, Error> {
        self.writer.get().map_err(|_| Error::Busy)
    }

    /// A reader connection (`query_only`). Waits at most the pool timeout.
    pub fn reader_conn(&self) -> Result<PooledConnection, Error> {
        self.readers.get().map_err(|_| Error::Busy)
    }

    /// Checks the database answers a query.
    pub fn ping(&self) -> Result<(), Error> {
        let mut conn = self.reader_conn()?;
        diesel::select(sql::<diesel::sql_types::Integer>("1")).get_result::<i32>(&mut conn)?;
        Ok(())
    }

    /// Copies the WAL back into the database and truncates it (`wal_checkpoint(TRUNCATE)`);
    /// returns `false` when readers kept it from completing. Waits for readers up
    /// to `busy_timeout` while holding the writer: for shutdown and maintenance
    /// windows. See [`Db::checkpoint_passive`] for a running server.
    pub fn checkpoint(&self) -> Result<bool, Error> {
        // PostgreSQL runs its own checkpoints.
        if self.is_postgres() {
            return Ok(true);
        }
        wal_checkpoint(&mut *self.writer_conn()?, "TRUNCATE")
    }

    /// Copies as much of the WAL as readers allow without waiting for anyone, on a
    /// reader (a passive checkpoint takes no lock writers wait for), so writes go
    /// on meanwhile; the next writer then restarts the WAL and
    /// `journal_size_limit` truncates it. An [`Executor`](crate::Executor) does
    /// this after writes on a thread of its own.
    pub fn checkpoint_passive(&self) -> Result<bool, Error> {
        if self.is_postgres() {
            return Ok(true);
        }
        wal_checkpoint(&mut *self.reader_conn()?, "PASSIVE")
    }
}

/// `PRAGMA wal_checkpoint(mode)` on `conn`: true when it completed, false when
/// readers (or, for the modes that wait, writers) kept it from it.
fn wal_checkpoint(conn: &mut Connection, mode: &str) -> Result<bool, Error> {
    #[derive(QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
    }
    let outcome: Outcome =
        diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(conn)?;
    Ok(outcome.busy == 0)
}

fn build_pool(
    manager: &Manager,
    size: u32,
    config: &Config,
    setup: Setup,
    events: Option<Box<dyn r2d2::HandleEvent>>,
) -> Result<Pool<Manager>, Error> {
    let postgres = matches!(config.database, Database::Postgres(_));
    let builder = Pool::builder();
    let builder = match events {
        Some(events) => builder.event_handler(events),
        None => builder,
    };
    builder
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(config.pool_timeout)
        // SQLite connections do not go stale; a probe query per checkout is waste.
        // A PostgreSQL connection dies with its server: the probe finds it dead
        // and the pool opens a new one, so requests recover when the server does.
        .test_on_check_out(postgres)
        .connection_customizer(Box::new(setup))
        .build(manager.clone())
        .map_err(|e| match &config.database {
            Database::Sqlite(path) => Error::Open {
                path: path.clone(),
                message: e.to_string(),
            },
            Database::Postgres(_) => Error::Connect {
                database: config.database.to_string(),
                message: one_line(&e.to_string()),
            },
        })
}

/// libpq's messages span lines ("connection to server ... failed: FATAL: ...").
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name PostgreSQL shows for this program's sessions by default.
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "db".into())
}

/// Doubling each attempt from 2-4 ms up to 32-64 ms, the wait drawn from the
/// upper half at random so that writers that collided do not collide again in
/// step: a burst of writers on an empty table, whose index is one page, keeps
/// colliding for a while.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 2_000_000_u64 << attempt.clamp(1, 5);
    let noise = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| u64::from(t.subsec_nanos()));
    Duration::from_nanos(ceiling / 2 + noise % (ceiling / 2))
}
