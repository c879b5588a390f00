//! Typed configuration. Every setting is declared once, in [`ConfigArgs`]: a flag, the
//! environment variable behind it and its default, all shown by `--help`; the
//! arguments become a [`Config`]. Every key is documented in `.env.example`.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Args, FromArgMatches};

use crate::Error;

// The defaults, shared by `--help` and `Config::for_path`.
const DATABASE_URL: &str = "data/app.db";
const READERS: u32 = 4;
const POOL_TIMEOUT_MS: u64 = 5000;
const BUSY_TIMEOUT_MS: u32 = 5000;
const SYNCHRONOUS: Synchronous = Synchronous::Normal;
const FOREIGN_KEYS: bool = true;
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
const CACHE_KIB: i64 = 2 * 1024;
/// The writer folds the WAL back into the file itself (blocking writes while it
/// copies and syncs) only once the WAL holds 10 000 pages, about 40 MiB: an
/// executor's checkpoint thread does it sooner, beside the writes. Under 64
/// writers with the WAL folded back by the writer every 1 000 pages (SQLite's
/// default), commits stalled for 30-500 ms and the p99 of `POST /posts` was 13-30
/// ms; with the thread, 7.5-9.6 ms (BENCHMARKS.md, 2026-12-01).
const WAL_AUTOCHECKPOINT: u32 = 10_000;
/// Up to 1 GiB of the file read through a memory map. At 128 MiB, on 2 cores
/// `GET /posts/{id}` served 1.39x the requests at 0.79x the CPU each against no
/// map; at 1 GiB a one-word search of a 1 000 000-post file (461 MiB) took a p99
/// of 14-16 ms against 21 ms, its bm25 reading each match's length from pages
/// beyond the first 128 MiB (BENCHMARKS.md, 2026-12-01). The mapped pages are page
/// cache, shared and reclaimable, not the server's own memory (its `RssAnon`
/// stayed under 10 MiB).
const MMAP_SIZE: i64 = 1024 * 1024 * 1024;
/// Every write of a batch is answered after its one COMMIT, so the first waits
/// for the last: 64 is the bench's 64 connections' worth of writes, about 3 ms of
/// inserts, beside the 1-2 ms a COMMIT takes to sync. Larger batches save next to
/// nothing (the COMMIT is already shared 64 ways) and only make the first wait longer.
const WRITE_BATCH: usize = 64;
/// A thread's point reads share one read snapshot for up to 1 ms: on 2 cores
/// `GET /posts/{id}` served 1.19x the requests at 0.85x the CPU each against a
/// snapshot per read (BENCHMARKS.md, 2026-12-01), and another process's commit is
/// seen at most 1 ms late (this server's own writes at once).
const SNAPSHOT_MS: u64 = 1;
const BACKUP_KEEP: usize = 7;
const WRITERS: u32 = 4;
const PG_STATEMENT_TIMEOUT_MS: u64 = 30_000;
const PG_IDLE_IN_TRANSACTION_TIMEOUT_MS: u64 = 60_000;
/// Seconds between scheduled backups; 0 = never.
const BACKUP_INTERVAL: u64 = 0;

/// `PRAGMA synchronous`: how hard SQLite works to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Off,
    Normal,
    Full,
    Extra,
}

impl Synchronous {
    /// The number `PRAGMA synchronous` reports.
    pub fn level(self) -> i64 {
        match self {
            Self::Off => 0,
            Self::Normal => 1,
            Self::Full => 2,
            Self::Extra => 3,
        }
    }
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        })
    }
}

impl FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "OFF" | "0" => Ok(Self::Off),
            "NORMAL" | "1" => Ok(Self::Normal),
            "FULL" | "2" => Ok(Self::Full),
            "EXTRA" | "3" => Ok(Self::Extra),
            _ => Err("expected OFF, NORMAL, FULL or EXTRA".into()),
        }
    }
}

/// Which database `DATABASE_URL` names: a SQLite file, or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The path of a SQLite file (written as a path, `sqlite://path` or `sqlite:path`).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, as given (with its password).
    Postgres(String),
}

impl Database {
    /// `"sqlite"` or `"postgresql"`, as `/health` reports it.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }

    /// The SQLite file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

/// Reads a `DATABASE_URL`-style value: `postgres://` or `postgresql://` is a
/// PostgreSQL server, anything else the path of a SQLite file (`sqlite://` or
/// `sqlite:` in front is dropped).
impl FromStr for Database {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        database_url(url)
    }
}

/// The path, or the URL with its password replaced by `***`: safe to print and log.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// Never shows the password: `Debug` reaches logs as easily as `Display`.
impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(_) => f.debug_tuple("Postgres").field(&self.to_string()).finish(),
        }
    }
}

/// `scheme://user:secret@host/db` as `scheme://user:***@host/db`; a password given
/// as a `password=` query parameter is hidden the same way.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority_end, _) = rest
        .char_indices()
        .find(|&(_, c)| c == '/' || c == '?')
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Everything needed to open a database and run it well.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The SQLite file or the PostgreSQL server (`DATABASE_URL`).
    pub database: Database,
    /// Connections in the read pool (`DB_READERS`).
    pub readers: u32,
    /// Connections in the write pool on PostgreSQL, and the threads an
    /// [`Executor`](crate::Executor) runs writes on (`DB_WRITERS`). SQLite has
    /// exactly one writer whatever this says: its writes are serial anyway.
    pub writers: u32,
    /// Threads an [`Executor`](crate::Executor) runs reads on (`DB_READ_THREADS`);
    /// at most `readers` are used.
    pub read_threads: usize,
    /// How long a request waits for a free connection, or in an executor's queue,
    /// before `Error::Busy` (`DB_POOL_TIMEOUT_MS`); on PostgreSQL, also how long
    /// a write that keeps losing serialization races runs again.
    pub pool_timeout: Duration,
    /// `PRAGMA busy_timeout` in milliseconds (`SQLITE_BUSY_TIMEOUT_MS`).
    pub busy_timeout_ms: u32,
    /// `PRAGMA synchronous` (`SQLITE_SYNCHRONOUS`).
    pub synchronous: Synchronous,
    /// `PRAGMA foreign_keys` (`SQLITE_FOREIGN_KEYS`).
    pub foreign_keys: bool,
    /// `PRAGMA journal_size_limit` in bytes: the `-wal` file is truncated back to
    /// this after a checkpoint (`SQLITE_JOURNAL_SIZE_LIMIT`).
    pub journal_size_limit: i64,
    /// `PRAGMA wal_autocheckpoint` in pages (`SQLITE_WAL_AUTOCHECKPOINT`): how
    /// large the WAL grows before the writer folds it back into the file itself.
    /// An [`Executor`](crate::Executor) folds it back sooner on a thread of its
    /// own, which writes do not wait for. 0: never by the writer.
    pub wal_autocheckpoint: u32,
    /// `PRAGMA cache_size` in KiB per connection (`SQLITE_CACHE_KIB`).
    pub cache_kib: i64,
    /// `PRAGMA mmap_size` in bytes (`SQLITE_MMAP_SIZE`); 0 turns memory mapping off.
    pub mmap_size: i64,
    /// The most writes an [`Executor`](crate::Executor) commits together in one
    /// SQLite transaction (`SQLITE_WRITE_BATCH`); 1 commits each alone.
    pub write_batch: usize,
    /// How long a thread's point reads ([`Db::read_here`](crate::Db::read_here))
    /// may share one read snapshot (`SQLITE_SNAPSHOT_MS`): the most another
    /// process's commit may go unseen. Zero gives each read its own.
    pub snapshot_hold: Duration,
    /// Where backups go (`BACKUP_DIR`).
    pub backup_dir: PathBuf,
    /// How many backups to keep (`BACKUP_KEEP`).
    pub backup_keep: usize,
    /// PostgreSQL `statement_timeout` in milliseconds (`PG_STATEMENT_TIMEOUT_MS`); 0 = none.
    pub pg_statement_timeout_ms: u64,
    /// PostgreSQL `idle_in_transaction_session_timeout` in milliseconds
    /// (`PG_IDLE_IN_TRANSACTION_TIMEOUT_MS`); 0 = none.
    pub pg_idle_in_transaction_timeout_ms: u64,
    /// PostgreSQL `application_name` (`PG_APPLICATION_NAME`); `None` = the program's name.
    pub pg_application_name: Option<String>,
    /// How often a server takes a backup (`BACKUP_INTERVAL`, seconds; 0 = never).
    pub backup_interval: Option<Duration>,
}

/// The settings of a [`Config`] as clap arguments, to `#[command(flatten)]` into a
/// service's own: each is a flag named after its environment variable
/// (`--db-readers` for `DB_READERS`), and `--help` shows the variable and the
/// default. A flag wins over the variable; a blank variable (`DB_READERS=` in
/// `.env`) means the default. A bad value is a one-line error naming the variable.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(next_help_heading = "Database")]
pub struct ConfigArgs {
    /// A SQLite file (a path, or sqlite://path; its folder is created) or a
    /// PostgreSQL server (postgres:// or postgresql://)
    #[arg(long, env = "DATABASE_URL", value_name = "URL", default_value = DATABASE_URL,
          value_parser = Setting::new(database_url).blank_as_is())]
    pub database_url: Database,
    /// Connections in the read pool
    #[arg(long, env = "DB_READERS", value_name = "N", default_value_t = READERS,
          value_parser = Setting::<u32>::count())]
    pub db_readers: u32,
    /// PostgreSQL: connections in the write pool and threads writes run on (SQLite has one writer)
    #[arg(long, env = "DB_WRITERS", value_name = "N", default_value_t = WRITERS,
          value_parser = Setting::<u32>::count())]
    pub db_writers: u32,
    /// Threads a server runs reads on, at most DB_READERS (default: one per CPU)
    #[arg(long, env = "DB_READ_THREADS", value_name = "N", default_value_t = default_read_threads(),
          value_parser = Setting::<usize>::count())]
    pub db_read_threads: usize,
    /// How long a request waits for a connection or a database thread (or a PostgreSQL write retries lost races) before giving up as busy
    #[arg(long, env = "DB_POOL_TIMEOUT_MS", value_name = "MS", default_value_t = POOL_TIMEOUT_MS,
          value_parser = Setting::<u64>::parsed())]
    pub db_pool_timeout_ms: u64,
    /// PRAGMA busy_timeout in milliseconds
    #[arg(long, env = "SQLITE_BUSY_TIMEOUT_MS", value_name = "MS",
          default_value_t = BUSY_TIMEOUT_MS, value_parser = Setting::<u32>::parsed())]
    pub sqlite_busy_timeout_ms: u32,
    /// PRAGMA synchronous: OFF, NORMAL, FULL or EXTRA, or its level 0 to 3
    #[arg(long, env = "SQLITE_SYNCHRONOUS", value_name = "LEVEL", default_value_t = SYNCHRONOUS,
          value_parser = Setting::<Synchronous>::parsed())]
    pub sqlite_synchronous: Synchronous,
    /// PRAGMA foreign_keys: on or off
    #[arg(long, env = "SQLITE_FOREIGN_KEYS", value_name = "ON|OFF", action = ArgAction::Set,
          default_value = on_off(FOREIGN_KEYS), value_parser = Setting::new(switch))]
    pub sqlite_foreign_keys: bool,
    /// PRAGMA journal_size_limit: bytes the -wal file is truncated back to after a
    /// checkpoint; -1 = no limit
    #[arg(long, env = "SQLITE_JOURNAL_SIZE_LIMIT", value_name = "BYTES",
          allow_negative_numbers = true, default_value_t = JOURNAL_SIZE_LIMIT,
          value_parser = Setting::<i64>::parsed())]
    pub sqlite_journal_size_limit: i64,
    /// PRAGMA wal_autocheckpoint: WAL pages after which the writer itself folds the WAL
    /// back into the file (a server's checkpoint thread does it sooner); 0 = never
    #[arg(long, env = "SQLITE_WAL_AUTOCHECKPOINT", value_name = "PAGES",
          default_value_t = WAL_AUTOCHECKPOINT, value_parser = Setting::<u32>::parsed())]
    pub sqlite_wal_autocheckpoint: u32,
    /// PRAGMA cache_size in KiB per connection
    #[arg(long, env = "SQLITE_CACHE_KIB", value_name = "KIB", default_value_t = CACHE_KIB,
          value_parser = Setting::<i64>::parsed())]
    pub sqlite_cache_kib: i64,
    /// PRAGMA mmap_size in bytes; 0 turns memory mapping off
    #[arg(long, env = "SQLITE_MMAP_SIZE", value_name = "BYTES", default_value_t = MMAP_SIZE,
          value_parser = Setting::<i64>::parsed())]
    pub sqlite_mmap_size: i64,
    /// The most queued writes a server commits together in one transaction; 1 = each alone
    #[arg(long, env = "SQLITE_WRITE_BATCH", value_name = "N", default_value_t = WRITE_BATCH,
          value_parser = Setting::<usize>::count())]
    pub sqlite_write_batch: usize,
    /// How long a thread's point reads may share one read snapshot: another
    /// process's commit is seen at most this late (this server's own writes at
    /// once); 0 = a snapshot per read
    #[arg(long, env = "SQLITE_SNAPSHOT_MS", value_name = "MS", default_value_t = SNAPSHOT_MS,
          value_parser = Setting::<u64>::parsed())]
    pub sqlite_snapshot_ms: u64,
    /// Where backups go (default: backups beside the database file)
    #[arg(long, env = "BACKUP_DIR", value_name = "DIR", value_parser = Setting::new(path))]
    pub backup_dir: Option<PathBuf>,
    /// How many backups to keep
    #[arg(long, env = "BACKUP_KEEP", value_name = "N", default_value_t = BACKUP_KEEP,
          value_parser = Setting::<usize>::parsed())]
    pub backup_keep: usize,
    /// Seconds between the backups a server takes; 0 = never
    #[arg(long, env = "BACKUP_INTERVAL", value_name = "SECONDS", default_value_t = BACKUP_INTERVAL,
          value_parser = Setting::<u64>::parsed())]
    pub backup_interval: u64,
    /// PostgreSQL statement_timeout in milliseconds; 0 = none
    #[arg(long, env = "PG_STATEMENT_TIMEOUT_MS", value_name = "MS",
          default_value_t = PG_STATEMENT_TIMEOUT_MS, value_parser = Setting::<u64>::parsed())]
    pub pg_statement_timeout_ms: u64,
    /// PostgreSQL idle_in_transaction_session_timeout in milliseconds; 0 = none
    #[arg(long, env = "PG_IDLE_IN_TRANSACTION_TIMEOUT_MS", value_name = "MS",
          default_value_t = PG_IDLE_IN_TRANSACTION_TIMEOUT_MS, value_parser = Setting::<u64>::parsed())]
    pub pg_idle_in_transaction_timeout_ms: u64,
    /// PostgreSQL application_name, shown in pg_stat_activity (default: the program's name)
    #[arg(long, env = "PG_APPLICATION_NAME", value_name = "NAME", value_parser = Setting::new(path_text))]
    pub pg_application_name: Option<String>,
}

impl Config {
    /// Defaults for a database at `path`: the contract's pragmas, four readers.
    pub fn for_path(path: impl Into<PathBuf>) -> Self {
        Self::for_database(Database::Sqlite(path.into()))
    }

    /// Defaults for `database`, a SQLite file or a PostgreSQL server.
    pub fn for_database(database: Database) -> Self {
        Self {
            backup_dir: backups_beside(&database),
            database,
            readers: READERS,
            writers: WRITERS,
            read_threads: default_read_threads(),
            pool_timeout: Duration::from_millis(POOL_TIMEOUT_MS),
            busy_timeout_ms: BUSY_TIMEOUT_MS,
            synchronous: SYNCHRONOUS,
            foreign_keys: FOREIGN_KEYS,
            journal_size_limit: JOURNAL_SIZE_LIMIT,
            wal_autocheckpoint: WAL_AUTOCHECKPOINT,
            cache_kib: CACHE_KIB,
            mmap_size: MMAP_SIZE,
            write_batch: WRITE_BATCH,
            snapshot_hold: Duration::from_millis(SNAPSHOT_MS),
            backup_keep: BACKUP_KEEP,
            backup_interval: every(BACKUP_INTERVAL),
            pg_statement_timeout_ms: PG_STATEMENT_TIMEOUT_MS,
            pg_idle_in_transaction_timeout_ms: PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
            pg_application_name: None,
        }
    }

    /// The SQLite file, for the operations that exist on SQLite only (backup,
    /// restore): on PostgreSQL an [`Error::Unsupported`] naming `instead`, the
    /// server's own tool for it.
    pub fn sqlite_file(&self, operation: &str, instead: &str) -> Result<&Path, Error> {
        self.database.sqlite_path().ok_or_else(|| {
            Error::Unsupported(format!(
                "{operation} works on SQLite files; {} is PostgreSQL: use {instead}",
                self.database
            ))
        })
    }

    /// The settings of [`ConfigArgs`] from the environment alone: no `.env` (a
    /// binary loads it first if it wants one) and no command line. Unset or blank
    /// variables take their defaults.
    pub fn from_env() -> Result<Self, Error> {
        let command = ConfigArgs::augment_args(clap::Command::new("db").no_binary_name(true));
        let matches = command
            .try_get_matches_from(std::iter::empty::<&str>())
            .map_err(config_error)?;
        let args = ConfigArgs::from_arg_matches(&matches).map_err(config_error)?;
        Ok(args.into())
    }
}

impl From<ConfigArgs> for Config {
    fn from(args: ConfigArgs) -> Self {
        Self {
            backup_dir: args
                .backup_dir
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or_else(|| backups_beside(&args.database_url)),
            database: args.database_url,
            readers: args.db_readers,
            writers: args.db_writers,
            read_threads: args.db_read_threads,
            pool_timeout: Duration::from_millis(args.db_pool_timeout_ms),
            busy_timeout_ms: args.sqlite_busy_timeout_ms,
            synchronous: args.sqlite_synchronous,
            foreign_keys: args.sqlite_foreign_keys,
            journal_size_limit: args.sqlite_journal_size_limit,
            wal_autocheckpoint: args.sqlite_wal_autocheckpoint,
            cache_kib: args.sqlite_cache_kib,
            mmap_size: args.sqlite_mmap_size,
            write_batch: args.sqlite_write_batch,
            snapshot_hold: Duration::from_millis(args.sqlite_snapshot_ms),
            backup_keep: args.backup_keep,
            backup_interval: every(args.backup_interval),
            pg_statement_timeout_ms: args.pg_statement_timeout_ms,
            pg_idle_in_transaction_timeout_ms: args.pg_idle_in_transaction_timeout_ms,
            pg_application_name: args.pg_application_name.filter(|name| !name.is_empty()),
        }
    }
}

/// `backups` beside a SQLite file; for PostgreSQL, `backups` in the working folder
/// (which backups then refuse: they are pg_dump's job).
fn backups_beside(database: &Database) -> PathBuf {
    database
        .sqlite_path()
        .and_then(Path::parent)
        .map(|p| p.join("backups"))
        .unwrap_or_else(|| PathBuf::from("backups"))
}

fn every(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// One read thread per CPU. Fewer starve heavy reads: on 2 cores one thread served
/// `GET /posts?limit=20` at about 17k req/s against 23k for two, because a page of
/// 20 rows costs SQLite more than its HTTP side costs a worker.
fn default_read_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A clap value parser for one setting, for this crate's arguments and those of the
/// service around it. A blank value (`KEY=` in `.env`) means the argument's
/// default, as if unset; a bad one is a one-line error naming the variable when
/// the value came from the environment, the flag when it came from the command
/// line.
#[derive(Debug, Clone, Copy)]
pub struct Setting<T> {
    parse: fn(&str) -> Result<T, String>,
    blank_is_default: bool,
}

impl<T> Setting<T> {
    /// Parses with `parse`, which gets the value as written.
    pub const fn new(parse: fn(&str) -> Result<T, String>) -> Self {
        Self {
            parse,
            blank_is_default: true,
        }
    }

    /// Hands a blank value to the parser instead of taking the default: for a
    /// setting where blank is an error of its own.
    pub const fn blank_as_is(self) -> Self {
        Self {
            blank_is_default: false,
            ..self
        }
    }
}

impl<T> Setting<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    /// Any value `T` parses, surrounding spaces ignored.
    pub const fn parsed() -> Self {
        Self::new(|raw| raw.trim().parse().map_err(|e: T::Err| e.to_string()))
    }
}

impl<T> Setting<T>
where
    T: FromStr + PartialOrd + Default,
    T::Err: fmt::Display,
{
    /// A count of connections or threads: a whole number of at least 1.
    pub const fn count() -> Self {
        Self::new(|raw| match raw.trim().parse::<T>() {
            Ok(count) if count > T::default() => Ok(count),
            Ok(_) => Err("must be at least 1".into()),
            Err(e) => Err(e.to_string()),
        })
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Setting<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        self.parse_ref_(cmd, arg, value, ValueSource::CommandLine)
    }

    fn parse_ref_(
        &self,
        _cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
        source: ValueSource,
    ) -> Result<T, clap::Error> {
        let invalid = |why: &str| invalid(arg, source, value, why);
        let raw = value.to_str().ok_or_else(|| invalid("not valid UTF-8"))?;
        let default = arg
            .and_then(|arg| arg.get_default_values().first())
            .and_then(|default| default.to_str());
        let text = match default {
            Some(default) if self.blank_is_default && raw.trim().is_empty() => default,
            _ => raw,
        };
        (self.parse)(text).map_err(|why| invalid(&why))
    }
}

/// A clap error whose message reads like [`Error::Config`], with the key and the
/// message kept as context so [`Config::from_env`] can return that error.
fn invalid(arg: Option<&Arg>, source: ValueSource, value: &OsStr, why: &str) -> clap::Error {
    let key = match (arg, source) {
        (Some(arg), ValueSource::EnvVariable) => {
            arg.get_env().map(|k| k.to_string_lossy().into_owned())
        }
        (Some(arg), _) => arg.get_long().map(|long| format!("--{long}")),
        (None, _) => None,
    }
    .unwrap_or_else(|| "value".into());
    let message = format!("{:?}: {why}", value.to_string_lossy());
    let mut err = clap::Error::raw(
        ErrorKind::ValueValidation,
        format!("configuration: {key}: {message}\n"),
    );
    err.insert(ContextKind::InvalidArg, ContextValue::String(key));
    err.insert(ContextKind::Custom, ContextValue::String(message));
    err
}

fn config_error(err: clap::Error) -> Error {
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    match (
        context(ContextKind::InvalidArg),
        context(ContextKind::Custom),
    ) {
        (Some(key), Some(message)) => Error::Config { key, message },
        _ => Error::Config {
            key: "environment".into(),
            message: err.to_string().trim().to_owned(),
        },
    }
}

/// `DATABASE_URL`: `postgres://` or `postgresql://` for PostgreSQL, else a file
/// path, with or without a `sqlite://` or `sqlite:` prefix.
fn database_url(url: &str) -> Result<Database, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_owned()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || path == ":memory:" {
        return Err("must be the path of a database file".into());
    }
    Ok(Database::Sqlite(PathBuf::from(path)))
}

/// Text as written; blank stands for "unset".
fn path_text(raw: &str) -> Result<String, String> {
    Ok(raw.trim().to_owned())
}

/// A path as written; blank stands for "unset" (see [`Config`]'s `From`).
fn path(raw: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(if raw.trim().is_empty() { "" } else { raw }))
}

fn switch(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

const fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses flags only: the variables of whoever runs the tests must not leak in.
    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let command = ConfigArgs::augment_args(clap::Command::new("t").no_binary_name(true))
            .mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(args)?;
        Ok(ConfigArgs::from_arg_matches(&matches)?.into())
    }

    fn refusal(args: &[&str]) -> Error {
        config_error(parse(args).unwrap_err())
    }

    #[test]
    fn synchronous_parses_names_and_levels() {
        assert_eq!("normal".parse(), Ok(Synchronous::Normal));
        assert_eq!("2".parse(), Ok(Synchronous::Full));
        assert!("fast".parse::<Synchronous>().is_err());
    }

    #[test]
    fn defaults_are_the_contract() {
        let c = Config::for_path("data/app.db");
        assert_eq!(c.busy_timeout_ms, 5000);
        assert_eq!(c.synchronous, Synchronous::Normal);
        assert!(c.foreign_keys);
        assert_eq!(c.backup_dir, PathBuf::from("data/backups"));
    }

    #[test]
    fn the_arguments_declare_valid_clap_arguments() {
        ConfigArgs::augment_args(clap::Command::new("t")).debug_assert();
    }

    #[test]
    fn unset_arguments_give_the_defaults_of_for_path() {
        assert_eq!(parse(&[]).unwrap(), Config::for_path("data/app.db"));
    }

    #[test]
    fn every_setting_has_its_flag() {
        let c = parse(&[
            "--database-url=sqlite://x/y.db",
            "--db-readers=8",
            "--db-writers=6",
            "--db-read-threads=3",
            "--db-pool-timeout-ms=250",
            "--sqlite-busy-timeout-ms=100",
            "--sqlite-synchronous=full",
            "--sqlite-foreign-keys=off",
            "--sqlite-journal-size-limit=1024",
            "--sqlite-wal-autocheckpoint=500",
            "--sqlite-cache-kib=512",
            "--sqlite-mmap-size=4096",
            "--sqlite-write-batch=16",
            "--sqlite-snapshot-ms=7",
            "--backup-dir=/b",
            "--backup-keep=2",
            "--backup-interval=60",
            "--pg-statement-timeout-ms=1500",
            "--pg-idle-in-transaction-timeout-ms=2500",
            "--pg-application-name=api",
        ])
        .unwrap();
        assert_eq!(
            c,
            Config {
                database: Database::Sqlite("x/y.db".into()),
                readers: 8,
                writers: 6,
                read_threads: 3,
                pool_timeout: Duration::from_millis(250),
                busy_timeout_ms: 100,
                synchronous: Synchronous::Full,
                foreign_keys: false,
                journal_size_limit: 1024,
                wal_autocheckpoint: 500,
                cache_kib: 512,
                mmap_size: 4096,
                write_batch: 16,
                snapshot_hold: Duration::from_millis(7),
                backup_dir: "/b".into(),
                backup_keep: 2,
                backup_interval: Some(Duration::from_secs(60)),
                pg_statement_timeout_ms: 1500,
                pg_idle_in_transaction_timeout_ms: 2500,
                pg_application_name: Some("api".into()),
            }
        );
    }

    #[test]
    fn database_url_takes_either_prefix_and_refuses_no_file() {
        assert_eq!(
            parse(&["--database-url", "sqlite:a.db"]).unwrap().database,
            Database::Sqlite("a.db".into())
        );
        for url in ["", "sqlite://", ":memory:", "sqlite::memory:"] {
            let err = refusal(&["--database-url", url]).to_string();
            assert!(
                err.contains("must be the path of a database file"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn a_postgres_url_names_the_server_and_never_shows_its_password() {
        for url in [
            "postgres://app:s3cret@db.example:5432/app",
            "postgresql://app:s3cret@db.example/app?password=s3cret&sslmode=disable",
        ] {
            let database = parse(&["--database-url", url]).unwrap().database;
            assert_eq!(database, Database::Postgres(url.into()));
            assert_eq!(database.backend(), "postgresql");
            let shown = format!("{database} {database:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("app:***@db.example"), "{shown}");
        }
        assert_eq!(
            Database::Postgres("postgres://db.example/app".into()).to_string(),
            "postgres://db.example/app"
        );
    }

    #[test]
    fn the_backup_folder_follows_the_database_unless_set() {
        assert_eq!(
            parse(&["--database-url", "/srv/app/live.db"])
                .unwrap()
                .backup_dir,
            PathBuf::from("/srv/app/backups")
        );
        assert_eq!(
            parse(&["--backup-dir", "bk"]).unwrap().backup_dir,
            PathBuf::from("bk")
        );
    }

    #[test]
    fn a_blank_value_means_the_default() {
        let c = parse(&[
            "--db-readers=",
            "--db-read-threads= ",
            "--sqlite-synchronous=",
            "--sqlite-foreign-keys=",
            "--backup-dir=",
            "--backup-interval=",
        ])
        .unwrap();
        assert_eq!(c, Config::for_path("data/app.db"));
    }

    #[test]
    fn foreign_keys_take_the_usual_words_for_on_and_off() {
        for (word, on) in [
            ("ON", true),
            ("yes", true),
            ("1", true),
            ("false", false),
            ("no", false),
            ("0", false),
        ] {
            let c = parse(&["--sqlite-foreign-keys", word]).unwrap();
            assert_eq!(c.foreign_keys, on, "{word}");
        }
        let err = refusal(&["--sqlite-foreign-keys", "maybe"]).to_string();
        assert_eq!(
            err,
            r#"configuration: --sqlite-foreign-keys: "maybe": expected on or off"#
        );
    }

    #[test]
    fn counts_are_whole_numbers_of_at_least_one() {
        assert_eq!(parse(&["--db-readers", " 2 "]).unwrap().readers, 2);
        for (flag, value) in [
            ("--db-readers", "0"),
            ("--db-read-threads", "-1"),
            ("--db-readers", "two"),
        ] {
            match refusal(&[&format!("{flag}={value}")]) {
                Error::Config { key, message } => {
                    assert_eq!(key, flag);
                    assert!(message.starts_with(&format!("{value:?}: ")), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_negative_journal_limit_is_a_value_not_a_flag() {
        let c = parse(&["--sqlite-journal-size-limit", "-1"]).unwrap();
        assert_eq!(c.journal_size_limit, -1);
    }

    #[test]
    fn a_bad_value_is_one_line() {
        let err = parse(&["--sqlite-synchronous", "fast"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "error: configuration: --sqlite-synchronous: \"fast\": expected OFF, NORMAL, FULL or EXTRA\n"
        );
    }
}
