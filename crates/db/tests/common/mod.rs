//! Shared set-up: every test gets its own database file in its own folder.

#![allow(dead_code, reason = "each test binary uses a different part")]

use db::{Config, Db};
use diesel::migration::MigrationSource;
use diesel::sqlite::Sqlite;
use tempfile::TempDir;

pub struct TestDb {
    pub db: Db,
    pub dir: TempDir,
}

pub fn config(dir: &TempDir) -> Config {
    Config::for_path(dir.path().join("app.db"))
}

pub fn open_with(config: impl FnOnce(Config) -> Config) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&config(self::config(&dir))).unwrap();
    TestDb { db, dir }
}

/// A database migrated to this build's schema.
pub fn migrated() -> TestDb {
    let t = open_with(|c| c);
    t.db.migrator(db::MIGRATIONS).run_pending().unwrap();
    t
}

/// The version of this build's newest migration, as `__diesel_schema_migrations`
/// records it: tests take it from here, so adding a migration breaks none of them.
pub fn newest_version() -> String {
    MigrationSource::<Sqlite>::migrations(&db::MIGRATIONS)
        .unwrap()
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
        .unwrap()
}
