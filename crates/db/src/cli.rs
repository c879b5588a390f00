//! Database subcommands any service binary can mount (`migrate`, `rollback`,
//! `status`), so every service built on this crate is operated the same way.

use diesel::migration::MigrationSource;
use diesel::sqlite::Sqlite;

use crate::{Config, Db, Error};

/// Subcommands to `#[command(flatten)]` into a service's own clap enum.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Apply every pending migration and print what was applied.
    Migrate,
    /// Revert the most recently applied migration.
    Rollback,
    /// List applied and pending migrations.
    Status,
}

/// Runs `command` against the database `config` names, reporting on stdout.
pub fn run<S: MigrationSource<Sqlite>>(
    config: &Config,
    migrations: S,
    command: &Command,
) -> Result<(), Error> {
    let db = Db::open(config)?;
    let migrator = db.migrator(migrations);
    let path = config.database_path.display();
    match command {
        Command::Migrate => {
            let applied = migrator.run_pending()?;
            if applied.is_empty() {
                println!("{path}: up to date, nothing to apply");
            }
            for name in applied {
                println!("{path}: applied {name}");
            }
        }
        Command::Rollback => match migrator.revert_last()? {
            Some(name) => println!("{path}: reverted {name}"),
            None => println!("{path}: no migration to revert"),
        },
        Command::Status => {
            let status = migrator.status()?;
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
    }
    Ok(())
}
