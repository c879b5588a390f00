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

/// A schema of its own on the PostgreSQL server `TEST_DATABASE_URL` names (as
/// `scripts/test-postgres.sh` sets it), dropped with it; `None` when the variable
/// is unset, for a run of the SQLite tests alone.
pub struct PgSchema {
    base: String,
    name: String,
    /// The base URL with this schema first on the search path.
    pub url: String,
}

pub fn postgres() -> Option<PgSchema> {
    use diesel::connection::SimpleConnection;
    let base = std::env::var("TEST_DATABASE_URL").ok()?;
    let base = base.trim().to_owned();
    if base.is_empty() {
        return None;
    }
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    db::AnyConnection::open(&db::Database::Postgres(base.clone()))
        .unwrap()
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-csearch_path%3D{name}");
    Some(PgSchema { base, name, url })
}

impl PgSchema {
    pub fn config(&self) -> Config {
        Config::for_database(db::Database::Postgres(self.url.clone()))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        if let Ok(mut conn) = db::AnyConnection::open(&db::Database::Postgres(self.base.clone())) {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}
