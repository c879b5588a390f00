//! Shared set-up: every test gets its own database file in its own folder.

#![allow(dead_code, reason = "each test binary uses a different part")]

use db::{Config, Db};
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
    t.db.migrator(domain::MIGRATIONS).run_pending().unwrap();
    t
}

/// What a service's error type looks like: domain, db and Diesel errors in one.
#[derive(Debug)]
#[expect(dead_code, reason = "the payload is read through Debug")]
pub enum TestError {
    Domain(domain::Error),
    Db(db::Error),
}

impl From<domain::Error> for TestError {
    fn from(e: domain::Error) -> Self {
        Self::Domain(e)
    }
}
impl From<domain::ValidationErrors> for TestError {
    fn from(e: domain::ValidationErrors) -> Self {
        Self::Domain(e.into())
    }
}
impl From<db::Error> for TestError {
    fn from(e: db::Error) -> Self {
        Self::Db(e)
    }
}
impl From<diesel::result::Error> for TestError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Domain(e.into())
    }
}
