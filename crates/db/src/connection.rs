//! The one connection type every query runs on: SQLite or PostgreSQL, chosen by
//! `DATABASE_URL`, and the pool manager that opens it.

use std::cell::Cell;

use diesel::connection::{
    AnsiTransactionManager, Instrumentation, InstrumentationEvent, TransactionManager,
};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;

use crate::config::Database;

/// A connection to either backend. Queries are written once against it (its
/// backend is `MultiBackend`); what Diesel cannot express for both is written per
/// variant, matching on it.
// Pg first: the derive tries the variants in order, and a SQLite "URL" accepts any text.
// Named `AnyConnection` because the derive's generated code names diesel's
// `Connection` trait unqualified; `db::Connection` is the name callers use.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for AnyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pg(_) => "Connection::Pg",
            Self::Sqlite(_) => "Connection::Sqlite",
        })
    }
}

impl AnyConnection {
    /// Opens `database` by its kind. Never the derived `establish`, which tries each
    /// backend in turn, drops their errors, and opens a new SQLite file named after
    /// a PostgreSQL URL it could not connect to.
    pub fn open(database: &Database) -> Result<AnyConnection, diesel::ConnectionError> {
        use diesel::Connection as _;
        match database {
            Database::Postgres(url) => PgConnection::establish(url).map(Self::Pg),
            Database::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::ConnectionError::InvalidConnectionUrl(
                        "the path must be valid UTF-8".into(),
                    )
                })?;
                SqliteConnection::establish(path).map(Self::Sqlite)
            }
        }
    }

    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Pg(_))
    }

    /// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite, so the write
    /// lock is taken before the first read; `BEGIN ISOLATION LEVEL SERIALIZABLE` on
    /// PostgreSQL, so a check-then-write that raced another writer fails with a
    /// serialization failure instead of committing on a stale check. Committed on
    /// `Ok`, rolled back on `Err` or on a failed `COMMIT`. Inside another
    /// transaction, a savepoint.
    pub fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.transaction_begun_by("BEGIN IMMEDIATE", "BEGIN ISOLATION LEVEL SERIALIZABLE", f)
    }

    /// Runs `f` in a read transaction whose statements all see one snapshot of
    /// the database, however long it takes and whatever writers commit meanwhile:
    /// on SQLite a deferred transaction (in WAL mode its first read fixes the
    /// snapshot), on PostgreSQL `REPEATABLE READ READ ONLY`.
    pub fn snapshot_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.transaction_begun_by(
            "BEGIN DEFERRED",
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f,
        )
    }

    /// Runs `f` in a transaction opened with the statement of this backend:
    /// committed on `Ok`, rolled back on `Err` or on a failed `COMMIT`; a
    /// savepoint inside another transaction.
    fn transaction_begun_by<T, E, F>(&mut self, sqlite: &str, postgres: &str, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        let begin = match self {
            Self::Sqlite(conn) => AnsiTransactionManager::begin_transaction_sql(conn, sqlite),
            Self::Pg(conn) => AnsiTransactionManager::begin_transaction_sql(conn, postgres),
        };
        match begin {
            Err(DieselError::AlreadyInTransaction) => {
                <Self as diesel::Connection>::TransactionManager::begin_transaction(self)?;
            }
            other => other?,
        }
        type Tx = <AnyConnection as diesel::Connection>::TransactionManager;
        match f(self) {
            Ok(value) => match Tx::commit_transaction(self) {
                Ok(()) => Ok(value),
                Err(err) => {
                    // A COMMIT that failed (a full disk, a lost race) may leave the
                    // transaction open: roll it back. The commit's error is the cause.
                    let still_open = Tx::transaction_manager_status_mut(self)
                        .transaction_depth()
                        .is_ok_and(|depth| depth.is_some());
                    if still_open {
                        let _ = Tx::rollback_transaction(self);
                    }
                    Err(err.into())
                }
            },
            Err(err) => {
                // `f`'s error is the cause even when the ROLLBACK fails (SQLite
                // ends the transaction itself on some SQLITE_FULL and IOERR
                // failures); a connection left broken is dropped by its pool.
                let _ = Tx::rollback_transaction(self);
                Err(err)
            }
        }
    }
}

/// True when PostgreSQL refused a transaction because it raced another one
/// (serialization failure or deadlock): running it again may succeed.
pub fn is_serialization_failure(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        // 40P01 deadlock_detected has no kind of its own.
        DieselError::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

thread_local! {
    /// Set when a statement on this thread failed with a serialization failure.
    static LOST_RACE: Cell<bool> = const { Cell::new(false) };
}

/// Watches a PostgreSQL connection's statements for serialization failures, so
/// that [`Db::write`](crate::Db::write) can tell a write that lost a race (and may
/// run again) from one that failed, whatever error type its closure turned the
/// failure into. Statements run on the caller's thread, hence a thread-local.
struct RaceWatch;

impl Instrumentation for RaceWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery {
            error: Some(err), ..
        } = event
            && is_serialization_failure(err)
        {
            LOST_RACE.set(true);
        }
    }
}

/// Clears the lost-race mark of this thread, returning it.
pub(crate) fn take_lost_race() -> bool {
    LOST_RACE.replace(false)
}

/// The r2d2 manager of [`AnyConnection`]s: opens the backend the URL names and keeps
/// the server's own message when it cannot.
#[derive(Debug, Clone)]
pub struct Manager {
    pub(crate) database: Database,
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        let mut conn =
            AnyConnection::open(&self.database).map_err(diesel::r2d2::Error::ConnectionError)?;
        if let AnyConnection::Pg(pg) = &mut conn {
            diesel::Connection::set_instrumentation(pg, RaceWatch);
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}
