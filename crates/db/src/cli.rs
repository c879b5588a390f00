//! Database subcommands any service binary can mount (`migrate`, `rollback`,
//! `status`, `backup`, `restore`), so every service built on this crate is operated
//! the same way.

use std::path::PathBuf;

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Config, ConfigArgs, Db, Error, ServerLock, backup_file, restore};

/// Subcommands to `#[command(flatten)]` into a service's own clap enum. Each takes
/// the database settings of [`ConfigArgs`], so `--help` lists them.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Apply every pending migration and print what was applied (a verified backup
    /// is taken first when the file holds data; refused while a server runs).
    Migrate(ConfigArgs),
    /// Revert the most recently applied migration (refused while a server runs).
    Rollback(ConfigArgs),
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

impl Command {
    /// The configuration this command runs with.
    pub fn config(&self) -> Config {
        match self {
            Self::Migrate(settings)
            | Self::Rollback(settings)
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
pub fn run<S: MigrationSource<Sqlite> + MigrationSource<Pg>>(
    migrations: S,
    command: &Command,
) -> Result<(), Error> {
    let config = &command.config();
    let path = &config.database;
    match command {
        Command::Migrate(_) => {
            // Held until the command ends: no server serves the file meanwhile.
            let _lock = ServerLock::acquire(config)?;
            let db = Db::open(config)?;
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
        Command::Rollback(_) => {
            let _lock = ServerLock::acquire(config)?;
            let db = Db::open(config)?;
            match db.migrator(migrations).revert_last()? {
                Some(name) => println!("{path}: reverted {name}"),
                None => println!("{path}: no migration to revert"),
            }
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
