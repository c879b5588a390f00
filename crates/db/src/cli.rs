//! Database subcommands any service binary can mount (`migrate`, `rollback`,
//! `redo`, `reset`, `status`, `backup`, `restore`), so every service built on this
//! crate is operated the same way.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::{Config, ConfigArgs, Db, Error, ServerLock, backup_file, restore};

/// Subcommands to `#[command(flatten)]` into a service's own clap enum. Each takes
/// the database settings of [`ConfigArgs`], so `--help` lists them.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Apply every pending migration and print what was applied (a verified backup
    /// is taken first when the file holds data; refused while a server runs).
    /// With --dry-run, rehearse them on a copy instead: the database is not touched.
    Migrate {
        /// Rehearse on a copy (SQLite: a snapshot; PostgreSQL: a transaction rolled
        /// back): time, rows per table before and after, and a failure when a table
        /// loses rows its migration does not declare (`loses_data`).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        settings: ConfigArgs,
    },
    /// Revert the most recently applied migration, after a verified backup
    /// (refused while a server runs).
    Rollback(Revert),
    /// Revert the last migration and apply it again, after a verified backup: for
    /// iterating on the migration being written (refused while a server runs).
    Redo(Revert),
    /// Back up, then delete the database and migrate a new one (SQLite). Refused
    /// when it holds more rows than the seed makes, unless --force.
    Reset {
        /// Reset a database that holds data of its own.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        settings: ConfigArgs,
    },
    /// List applied and pending migrations.
    Status(ConfigArgs),
    /// Take a consistent, verified online backup into BACKUP_DIR.
    Backup(ConfigArgs),
    /// Replace the database with a verified backup (refused while a server runs).
    Restore {
        /// The backup file; its manifest `<file>.json` must be beside it. Read from
        /// RESTORE_FILE when not given, so that `make restore` hands the name over
        /// without a shell reading it.
        #[arg(env = "RESTORE_FILE", value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        settings: ConfigArgs,
    },
}

/// The flags of the commands that revert a migration.
#[derive(Debug, Clone, clap::Args)]
pub struct Revert {
    /// Allow reverting the first migration, which drops the base tables and every
    /// row in them.
    #[arg(long)]
    pub force: bool,
    /// PostgreSQL: a pg_dump was taken (this command takes no backup there).
    #[arg(long)]
    pub dumped: bool,
    #[command(flatten)]
    pub settings: ConfigArgs,
}

impl Command {
    /// The configuration this command runs with.
    pub fn config(&self) -> Config {
        match self {
            Self::Migrate { settings, .. }
            | Self::Rollback(Revert { settings, .. })
            | Self::Redo(Revert { settings, .. })
            | Self::Reset { settings, .. }
            | Self::Status(settings)
            | Self::Backup(settings)
            | Self::Restore { settings, .. } => settings.clone().into(),
        }
    }
}

/// Runs `work` with a progress bar on stderr for its byte-counted steps.
fn with_progress<T>(work: impl FnOnce(crate::Progress<'_>) -> T) -> T {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = |step: &str, done: u64, total: u64| {
        bar.set_message(step.to_owned());
        bar.set_length(total);
        bar.set_position(done);
    };
    let out = work(&report);
    bar.finish_and_clear();
    out
}

fn take_backup(config: &Config) -> Result<crate::Backup, Error> {
    with_progress(|progress| backup_file(config, progress))
}

/// Runs `command` against the database its settings name, reporting on stdout.
pub fn run<S: crate::Source>(migrations: S, command: &Command) -> Result<(), Error> {
    let config = &command.config();
    let path = &config.database;
    match command {
        Command::Migrate { dry_run: true, .. } => {
            // Opening a missing file would create it: a rehearsal creates nothing.
            if let Some(file) = config.database.sqlite_path()
                && !file.exists()
            {
                return Err(Error::Refused(format!(
                    "{path} does not exist yet: nothing to rehearse on; `make migrate` creates it"
                )));
            }
            let db = Db::open(config)?;
            print_rehearsal(path, &db.migrator(migrations).rehearse()?)?;
        }
        Command::Migrate { .. } => {
            // Held until the command ends: no server serves the file, and no other
            // migrate reads what is pending, meanwhile.
            let _lock = ServerLock::acquire(config)?;
            let db = Db::open(config)?;
            let _pg_lock = migration_lock(&db)?;
            let migrator = db.migrator(migrations);
            let status = migrator.status()?;
            if !status.pending.is_empty() && holds_tables(&db)? {
                let backup = take_backup(config)?;
                println!(
                    "{path}: snapshot before migrating: {}",
                    backup.path.display()
                );
            }
            let applied = migrator.run_pending()?;
            if applied.is_empty() {
                println!("{path}: up to date, nothing to apply");
            }
            for name in applied {
                println!("{path}: applied {name}");
            }
        }
        Command::Rollback(revert) | Command::Redo(revert) => {
            let _lock = ServerLock::acquire(config)?;
            let db = Db::open(config)?;
            let _pg_lock = migration_lock(&db)?;
            let migrator = db.migrator(migrations);
            let status = migrator.status()?;
            let Some(last) = status.applied.last() else {
                println!("{path}: no migration to revert");
                return Ok(());
            };
            if status.applied.len() == 1 && !revert.force {
                return Err(Error::Refused(format!(
                    "{last} is the first migration: reverting it drops the base tables and \
                     every row in them; run again with force=1 (--force) if that is meant"
                )));
            }
            if db.is_postgres() {
                if !revert.dumped {
                    return Err(Error::Unsupported(format!(
                        "{path} is PostgreSQL, where this command takes no backup: take one with \
                         pg_dump (pg_dump -Fc -f app.dump \"$DATABASE_URL\"), then run again with \
                         dumped=1 (--dumped)"
                    )));
                }
            } else {
                let backup = take_backup(config)?;
                println!(
                    "{path}: snapshot before reverting: {}",
                    backup.path.display()
                );
            }
            if let Some(name) = migrator.revert_last()? {
                println!("{path}: reverted {name}");
            }
            if matches!(command, Command::Redo(_)) {
                // That one only: other pending migrations wait for `migrate`.
                let again = std::slice::from_ref(last);
                for name in
                    crate::migrate::run_on(migrator.source(), &mut *db.writer_conn()?, again)?
                {
                    println!("{path}: applied {name}");
                }
            }
        }
        Command::Reset { force, .. } => {
            let file = config.sqlite_file(
                "reset",
                "pg_dump, then DROP SCHEMA or dropdb/createdb, and `web migrate`",
            )?;
            let _lock = ServerLock::acquire(config)?;
            if file.exists() {
                let db = Db::open(config)?;
                let extra = rows_beyond_the_seed(&db)?;
                drop(db);
                if !extra.is_empty() && !force {
                    return Err(Error::Refused(format!(
                        "{path} holds more rows than the seed makes ({}); run again with \
                         force=1 (--force) to reset it anyway",
                        extra.join(", ")
                    )));
                }
                let backup = take_backup(config)?;
                println!("{path}: backup before the reset: {}", backup.path.display());
                for suffix in ["", "-wal", "-shm"] {
                    crate::files::remove_if_exists(&crate::files::with_suffix(file, suffix))?;
                }
            }
            let db = Db::open(config)?;
            for name in db.migrator(migrations).run_pending()? {
                println!("{path}: applied {name}");
            }
            println!("{path}: reset to an empty, migrated database");
        }
        Command::Status(_) => {
            let db = Db::open(config)?;
            let status = db.migrator(migrations).status()?;
            for name in &status.applied {
                println!("applied  {name}");
            }
            for name in &status.pending {
                println!("pending  {name}");
            }
            for name in &status.unknown {
                println!("unknown  {name} (applied by a newer build)");
            }
        }
        Command::Backup(_) => {
            let file = config.sqlite_file(
                "backup",
                "pg_dump (pg_dump -Fc -f app.dump \"$DATABASE_URL\")",
            )?;
            if !file.exists() {
                return Err(Error::Backup(format!("{path} does not exist")));
            }
            let backup = take_backup(config)?;
            let rows: Vec<String> = backup
                .manifest
                .tables
                .iter()
                .map(|(table, n)| format!("{table}={n}"))
                .collect();
            println!(
                "backup {} verified: {} bytes, sha256 {}, {}",
                backup.path.display(),
                backup.manifest.size,
                backup.manifest.sha256,
                rows.join(" ")
            );
            for old in backup.removed {
                println!("removed old backup {}", old.display());
            }
        }
        Command::Restore { file, .. } => {
            config.sqlite_file(
                "restore",
                "pg_restore (pg_restore --clean -d \"$DATABASE_URL\" app.dump)",
            )?;
            let restored = with_progress(|progress| restore(config, &migrations, file, progress))?;
            if let Some(pre) = restored.pre_restore {
                println!("previous database kept as {}", pre.display());
            }
            println!("{path}: restored from {} (verified)", file.display());
            for old in restored.removed {
                println!("removed old copy {}", old.display());
            }
        }
    }
    Ok(())
}

/// Prints a rehearsal, then fails on any loss of rows no migration declared.
fn print_rehearsal(path: &crate::Database, rehearsal: &crate::Rehearsal) -> Result<(), Error> {
    println!("{path}: rehearsal on a copy; the database is not touched");
    if rehearsal.steps.is_empty() {
        println!("{path}: up to date, nothing to rehearse");
    }
    for step in &rehearsal.steps {
        println!(
            "{}: {:.1} ms",
            step.name,
            step.elapsed.as_secs_f64() * 1000.0
        );
        let mut tables: Vec<&str> = step.before.iter().map(|(t, _)| t.as_str()).collect();
        tables.extend(step.after.iter().map(|(t, _)| t.as_str()));
        tables.sort_unstable();
        tables.dedup();
        let count = |counts: &crate::Counts, table: &str| {
            counts
                .iter()
                .find(|(t, _)| t == table)
                .map_or("-".to_owned(), |(_, n)| n.to_string())
        };
        for table in tables {
            let lost = step.lost.iter().find(|l| l.table == table);
            let note = match lost {
                Some(l) if l.declared => format!(
                    "  lost {} row(s), declared (loses_data)",
                    l.before - l.after
                ),
                Some(l) => format!("  LOST {} row(s), not declared", l.before - l.after),
                None => String::new(),
            };
            let line = format!(
                "  {table:<24} {:>9} -> {:<9}{note}",
                count(&step.before, table),
                count(&step.after, table)
            );
            println!("{}", line.trim_end());
        }
    }
    println!("{path}: {}", rehearsal.checks);
    let undeclared = rehearsal.undeclared();
    if !undeclared.is_empty() {
        let list: Vec<String> = undeclared
            .iter()
            .map(|(name, l)| format!("{name} loses {} row(s) of {}", l.before - l.after, l.table))
            .collect();
        return Err(Error::Refused(format!(
            "the rehearsal lost rows no migration declares: {}; if that is meant, list the \
             table in the migration's metadata.toml (loses_data = [\"table\"])",
            list.join("; ")
        )));
    }
    println!("{path}: rehearsal passed; `make migrate` applies these");
    Ok(())
}

/// On PostgreSQL, where no file lock exists, a session advisory lock held by the
/// returned connection until it is dropped: a second `migrate` (or `rollback`)
/// waits, then reads what is pending only once the first is done.
fn migration_lock(db: &Db) -> Result<Option<crate::Connection>, Error> {
    use diesel::RunQueryDsl;
    if !db.is_postgres() {
        return Ok(None);
    }
    let mut conn = crate::Connection::open(&db.config().database).map_err(|e| Error::Connect {
        database: db.config().database.to_string(),
        message: e.to_string(),
    })?;
    // The key: "migrate" in ASCII, shared by every build of every service.
    diesel::sql_query("SELECT pg_advisory_lock(7165071361303405925)").execute(&mut conn)?;
    Ok(Some(conn))
}

/// The tables holding rows the seed does not make: the seed makes one user and at
/// most one token, nothing else.
fn rows_beyond_the_seed(db: &Db) -> Result<Vec<String>, Error> {
    let mut conn = db.writer_conn()?;
    let crate::Connection::Sqlite(conn) = &mut *conn else {
        return Ok(Vec::new());
    };
    Ok(crate::rehearse::sqlite_counts(conn)?
        .into_iter()
        .filter(|(table, n)| {
            let seeded = match table.as_str() {
                "users" | "tokens" => 1,
                _ => 0,
            };
            *n > seeded
        })
        .map(|(table, n)| format!("{table}={n}"))
        .collect())
}

/// True when the file has any table besides SQLite's own. A PostgreSQL database is
/// not snapshotted before migrating (backups there are pg_dump's); each migration
/// runs in a transaction of its own.
fn holds_tables(db: &Db) -> Result<bool, Error> {
    use diesel::RunQueryDsl;
    if db.is_postgres() {
        return Ok(false);
    }
    let mut conn = db.reader_conn()?;
    let count: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
          AND name != '__diesel_schema_migrations')",
    ))
    .get_result(&mut conn)?;
    Ok(count > 0)
}
