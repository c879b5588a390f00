//! SQLite (and PostgreSQL) for Diesel services, set up the way production needs it.
//!
//! `db` is the part of this project meant to be reused by any other service that
//! keeps its data in one SQLite file, or on a PostgreSQL server through the same
//! code:
//!
//! - [`ConfigArgs`] declares every setting for clap (flag, environment variable,
//!   default, help); it becomes a [`Config`]. [`Config::from_env`] reads the same
//!   settings from the environment alone. `DATABASE_URL` picks the backend: a path
//!   or `sqlite://path` is SQLite, `postgres://` or `postgresql://` PostgreSQL.
//! - [`Connection`] is a Diesel `MultiConnection` of both backends: queries are
//!   written once against it, and what differs is written per variant.
//! - [`Db::open`] creates the file (and its folder), builds a one-connection writer
//!   pool and a reader pool, applies the pragmas (`journal_mode=WAL`,
//!   `busy_timeout`, `synchronous`, `foreign_keys`, `journal_size_limit`,
//!   `wal_autocheckpoint`, and `query_only` on readers) to every connection, and
//!   reads them back: a pragma that did not take is an [`Error::Pragma`] naming
//!   it. On PostgreSQL it builds a writer pool of `DB_WRITERS` connections and
//!   read-only readers, with `statement_timeout`,
//!   `idle_in_transaction_session_timeout` and `application_name` set and read
//!   back the same way; a server it cannot reach is an [`Error::Connect`] with
//!   the server's message.
//! - [`Db::write`] runs a closure in `BEGIN IMMEDIATE`, so concurrent writers queue
//!   on the lock instead of failing with "database is locked" (on PostgreSQL, in a
//!   serializable transaction run again when it loses a race); [`Db::read`] runs
//!   one on a reader. Past the pool timeout both give the typed [`Error::Busy`].
//!   [`Db::read_here`] runs a short read on the calling thread's own reader, which
//!   keeps its read snapshot from one call to the next for at most
//!   `SQLITE_SNAPSHOT_MS` and never past a write through the same `Db`.
//! - [`Executor`] runs the same closures for async code on shared threads: a read
//!   lane and a write lane, each a bounded queue that answers [`Error::Busy`] when
//!   full.
//! - [`Db::migrator`] runs the service's embedded migrations (one set per
//!   backend, [`Migrations`], or one portable set): pending, revert last, status,
//!   and a refusal to use a database that a newer build migrated;
//!   [`Migrator::rehearse`] runs the pending ones on a copy (a `VACUUM INTO`
//!   snapshot, or a PostgreSQL transaction rolled back) and reports rows lost. A
//!   migration's `metadata.toml` may declare the data it means to lose and a
//!   SQLite table rebuild, run with foreign keys off ([`Declaration`]);
//!   [`lint`] checks a folder of migrations before they run anywhere.
//! - [`restrict_new_files`], called first in `main`, keeps the database, its
//!   companions and backups readable by their owner only.
//!
//! ```no_run
//! # fn main() -> Result<(), db::Error> {
//! db::restrict_new_files();
//! let db = db::Db::open(&db::Config::from_env()?)?;
//! db.migrator(db::MIGRATIONS).run_pending()?;
//! let rows = db.write(|conn| {
//!     use diesel::RunQueryDsl;
//!     diesel::sql_query("UPDATE users SET name = trim(name)").execute(conn)
//!         .map_err(db::Error::from)
//! })?;
//! # let _ = rows;
//! # Ok(())
//! # }
//! ```
//!
//! See `examples/notes.rs` for a complete service built on it.

mod backup;
pub mod cli;
mod config;
mod connection;
mod error;
mod executor;
mod files;
pub mod lint;
mod lock;
mod migrate;
mod pool;
mod rehearse;
mod restore;
mod retention;
mod snapshot;
mod verify;

pub use backup::{Backup, Manifest, Progress, backup_file};
pub use config::{Config, ConfigArgs, Database, Setting, Synchronous};
pub use connection::{AnyConnection, Manager, MultiBackend, is_serialization_failure};

/// The connection every query takes, SQLite or PostgreSQL: the one place that
/// names the backends.
pub type Connection = AnyConnection;
pub use error::{Error, Result, is_busy, is_disk_full};
pub use executor::Executor;
pub use files::restrict_new_files;
pub use lock::ServerLock;
pub use migrate::{
    Declaration, MigrationDirs, MigrationSet, MigrationStatus, Migrations, Migrator, Source,
};
pub use pool::{Db, PooledConnection, pg_setting, pragma};
pub use rehearse::{Counts, Lost, Rehearsal, Step};
pub use restore::{Restored, restore};
pub use retention::{latest_backup, list_backups};
pub use verify::{read_manifest, verify_backup};

use diesel_migrations::embed_migrations;

/// The migrations that build this project's schema (users, posts, tokens,
/// idempotency keys),
/// compiled in: `migrations/sqlite` and `migrations/postgres`, the same versions in
/// both. A service on the same database runs these; one with tables of its own
/// passes its own `embed_migrations!` (or its own [`Migrations`]) to
/// [`Db::migrator`].
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/sqlite"),
    postgres: embed_migrations!("../../migrations/postgres"),
    sqlite_metadata: metadata::SQLITE_METADATA,
    postgres_metadata: metadata::POSTGRES_METADATA,
};

/// The `metadata.toml` of each migration that has one, embedded by `build.rs`.
mod metadata {
    include!(concat!(env!("OUT_DIR"), "/metadata.rs"));
}
