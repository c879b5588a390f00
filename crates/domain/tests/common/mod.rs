//! Shared set-up of the domain's integration tests.

use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use domain::models::user::NewUser;
use domain::{Role, Timestamp};

/// A connection to the SQLite file at `path`, as it is.
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
pub fn open(path: &std::path::Path) -> db::Connection {
    db::Connection::Sqlite(SqliteConnection::establish(path.to_str().unwrap()).unwrap())
}

/// A SQLite file at `path`, migrated to this build's schema.
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
pub fn migrated(path: &std::path::Path) -> db::Connection {
    let mut conn = open(path);
    let db::Connection::Sqlite(sqlite) = &mut conn else {
        unreachable!("open gives SQLite connections")
    };
    sqlite.run_pending_migrations(db::MIGRATIONS).unwrap();
    conn
}

/// [`migrated`], with one member, `ann`, to write posts as.
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
pub fn migrated_with_ann(path: &std::path::Path) -> db::Connection {
    let mut conn = migrated(path);
    NewUser {
        id: "ann".into(),
        email: "ann@example.com".into(),
        name: "Ann".into(),
        role: Role::User,
        created_at: Timestamp::now(),
    }
    .insert(&mut conn)
    .unwrap();
    conn
}
