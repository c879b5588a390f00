//! The `Db` handle: one writer connection, a pool of `query_only` readers, and the
//! pragmas applied to every connection either pool opens.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::r2d2::{self, ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::Text;

use crate::{Config, Error};

/// A connection checked out of one of [`Db`]'s pools; back in the pool when dropped.
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager<SqliteConnection>>;

/// The pragmas one connection gets before first use.
#[derive(Debug, Clone)]
struct Pragmas {
    busy_timeout_ms: u32,
    synchronous: crate::Synchronous,
    foreign_keys: bool,
    journal_size_limit: i64,
    cache_kib: i64,
    mmap_size: i64,
    query_only: bool,
}

impl Pragmas {
    fn sql(&self) -> String {
        // busy_timeout first: switching to WAL may have to wait for another process.
        format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
             PRAGMA foreign_keys = {}; PRAGMA journal_size_limit = {}; PRAGMA cache_size = -{}; \
             PRAGMA mmap_size = {}; PRAGMA temp_store = MEMORY; PRAGMA query_only = {};",
            self.busy_timeout_ms,
            self.synchronous,
            if self.foreign_keys { "ON" } else { "OFF" },
            self.journal_size_limit,
            self.cache_kib,
            self.mmap_size,
            if self.query_only { "ON" } else { "OFF" },
        )
    }

    /// What each pragma must read back as.
    fn expected(&self) -> [(&'static str, String); 8] {
        [
            ("cache_size", (-self.cache_kib).to_string()),
            ("mmap_size", self.mmap_size.to_string()),
            ("journal_mode", "wal".into()),
            ("busy_timeout", self.busy_timeout_ms.to_string()),
            ("synchronous", self.synchronous.level().to_string()),
            ("foreign_keys", i64::from(self.foreign_keys).to_string()),
            ("journal_size_limit", self.journal_size_limit.to_string()),
            ("query_only", i64::from(self.query_only).to_string()),
        ]
    }
}

impl CustomizeConnection<SqliteConnection, r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute(&self.sql())
            .map_err(r2d2::Error::QueryError)
    }
}

/// Reads one pragma as text, e.g. `pragma(conn, "journal_mode")` gives `"wal"`.
/// Knows the pragmas this crate sets.
pub fn pragma(conn: &mut SqliteConnection, name: &str) -> Result<String, Error> {
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

/// Handle to one SQLite database: cheap to clone, shared by every thread.
///
/// Writes go through [`Db::write`], which holds the only writer connection inside
/// a `BEGIN IMMEDIATE` transaction, so concurrent writers queue instead of failing
/// with "database is locked". Reads go through [`Db::read`] on `query_only`
/// connections that never block the writer (WAL).
#[derive(Clone, Debug)]
pub struct Db {
    writer: Pool<ConnectionManager<SqliteConnection>>,
    readers: Pool<ConnectionManager<SqliteConnection>>,
    config: Config,
}

impl Db {
    /// Opens (creating if needed) the database file and its parent folder, builds
    /// both pools, and checks that every pragma took on a connection of each.
    pub fn open(config: &Config) -> Result<Db, Error> {
        let path = &config.database_path;
        crate::files::create_parent(path)?;
        crate::restore::settle_interrupted(config)?;
        let url = path.to_str().ok_or_else(|| Error::Config {
            key: "DATABASE_URL".into(),
            message: "the path must be valid UTF-8".into(),
        })?;
        let pragmas = Pragmas {
            busy_timeout_ms: config.busy_timeout_ms,
            synchronous: config.synchronous,
            foreign_keys: config.foreign_keys,
            journal_size_limit: config.journal_size_limit,
            cache_kib: config.cache_kib,
            mmap_size: config.mmap_size,
            query_only: false,
        };
        // The writer is built first: it switches the file to WAL before any reader,
        // which cannot change the journal mode once query_only is on.
        let writer = build_pool(url, path, 1, config, pragmas.clone())?;
        let readers = build_pool(
            url,
            path,
            config.readers,
            config,
            Pragmas {
                query_only: true,
                ..pragmas.clone()
            },
        )?;
        let db = Db {
            writer,
            readers,
            config: config.clone(),
        };
        db.check_pragmas(&pragmas)?;
        Ok(db)
    }

    fn check_pragmas(&self, pragmas: &Pragmas) -> Result<(), Error> {
        let reader_pragmas = Pragmas {
            query_only: true,
            ..pragmas.clone()
        };
        for (mut conn, expected) in [
            (self.writer_conn()?, pragmas.expected()),
            (self.reader_conn()?, reader_pragmas.expected()),
        ] {
            for (name, expected) in expected {
                let actual = pragma(&mut conn, name)?;
                if actual != expected {
                    return Err(Error::Pragma {
                        name,
                        expected,
                        actual,
                    });
                }
            }
        }
        Ok(())
    }

    /// The configuration this handle was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer connection:
    /// committed if it returns `Ok`, rolled back if it returns `Err`.
    ///
    /// A failed `COMMIT` (a full disk, say) is rolled back too, and `f`'s own
    /// error is what the caller gets even when the `ROLLBACK` after it fails.
    /// The writer is never kept inside a transaction: a connection whose
    /// rollback failed is dropped by the pool when it comes back, and the next
    /// write opens a fresh one.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, E>,
        E: From<diesel::result::Error> + From<Error>,
    {
        let mut conn = self.writer_conn()?;
        let mut failed = None;
        let outcome = conn.immediate_transaction(|conn| {
            f(conn).map_err(|err| {
                failed = Some(err);
                diesel::result::Error::RollbackTransaction
            })
        });
        match (outcome, failed) {
            (Ok(value), _) => Ok(value),
            // SQLite may already have ended the transaction itself (it does on
            // some SQLITE_FULL and SQLITE_IOERR failures), so the ROLLBACK then
            // fails with "no transaction is active": the cause is `f`'s error.
            (Err(_), Some(err)) => Err(err),
            (Err(err), None) => Err(Error::from(err).into()),
        }
    }

    /// Runs `f` on a reader connection. Each statement sees a consistent snapshot
    /// of its own; a closure that needs several statements to agree wraps them in
    /// `conn.transaction(...)` (a read transaction: it never blocks the writer).
    /// Single-statement reads, the common case, skip the `BEGIN`/`COMMIT`.
    pub fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let mut conn = self.reader_conn()?;
        f(&mut conn)
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
        self.run_checkpoint("TRUNCATE")
    }

    /// Copies as much of the WAL as readers allow without waiting for anyone; the
    /// next writer then restarts the WAL and `journal_size_limit` truncates it.
    pub fn checkpoint_passive(&self) -> Result<bool, Error> {
        self.run_checkpoint("PASSIVE")
    }

    fn run_checkpoint(&self, mode: &str) -> Result<bool, Error> {
        let mut conn = self.writer_conn()?;
        #[derive(QueryableByName)]
        struct Outcome {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            busy: i32,
        }
        let outcome: Outcome =
            diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(&mut *conn)?;
        Ok(outcome.busy == 0)
    }
}

fn build_pool(
    url: &str,
    path: &Path,
    size: u32,
    config: &Config,
    pragmas: Pragmas,
) -> Result<Pool<ConnectionManager<SqliteConnection>>, Error> {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(config.pool_timeout)
        // SQLite connections do not go stale; a probe query per checkout is waste.
        .test_on_check_out(false)
        .connection_customizer(Box::new(pragmas))
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .map_err(|e| Error::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })
}
