//! Rebuilding a parent table: the naive recipe inside Diesel's transaction
//! cascades into its children and loses their rows, the rehearsal catches it, and
//! the same migration declared a rebuild (`metadata.toml`) keeps every row.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use db::{Connection, MigrationDirs};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

/// The fixture set (`tests/fixtures/rebuild`): users and tokens, then a rebuild
/// of users declared in its `metadata.toml`.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rebuild")
}

/// The fixture as declared.
fn declared() -> MigrationDirs {
    MigrationDirs::new(fixture())
}

/// The same migrations without the declaration: the naive rebuild, in a copy.
fn naive(scratch: &Path) -> MigrationDirs {
    for set in ["sqlite", "postgres"] {
        for migration in fs::read_dir(fixture().join(set)).unwrap() {
            let migration = migration.unwrap();
            let target = scratch.join(set).join(migration.file_name());
            fs::create_dir_all(&target).unwrap();
            for file in fs::read_dir(migration.path()).into_iter().flatten() {
                let file = file.unwrap();
                if file.file_name() != "metadata.toml" {
                    fs::copy(file.path(), target.join(file.file_name())).unwrap();
                }
            }
        }
    }
    MigrationDirs::new(scratch)
}

fn count(t: &common::TestDb, sql: &str) -> i64 {
    let mut conn = t.db.writer_conn().unwrap();
    diesel::select(diesel::dsl::sql::<BigInt>(&format!("({sql})")))
        .get_result(&mut *conn)
        .unwrap()
}

/// A database at the fixture's first migration, holding two users and three
/// tokens; the rebuild is pending.
fn with_tokens(dirs: &MigrationDirs) -> common::TestDb {
    let t = common::open_with(|c| c);
    {
        let mut conn = t.db.writer_conn().unwrap();
        let Connection::Sqlite(c) = &mut *conn else {
            panic!("SQLite")
        };
        c.run_next_migration(FileBasedMigrations::from_path(&dirs.sqlite).unwrap())
            .unwrap();
        c.batch_execute(
            "INSERT INTO users VALUES ('u1', 'a@x', 'A', 'admin', 1), ('u2', 'b@x', 'B', 'user', 2);
             INSERT INTO tokens VALUES ('t1', 'u1', 'h1', 1), ('t2', 'u1', 'h2', 1), ('t3', 'u2', 'h3', 1);",
        )
        .unwrap();
    }
    assert_eq!(
        t.db.migrator(dirs.clone()).status().unwrap().pending,
        ["2026-01-02-000001_role_check"]
    );
    t
}

#[test]
fn the_naive_rebuild_loses_every_token_and_the_rehearsal_says_so() {
    let scratch = tempfile::tempdir().unwrap();
    let dirs = naive(scratch.path());
    let t = with_tokens(&dirs);
    let migrator = t.db.migrator(dirs);

    let rehearsal = migrator.rehearse().unwrap();
    let lost = rehearsal.undeclared();
    assert_eq!(lost.len(), 1, "{rehearsal:?}");
    assert_eq!(lost[0].0, "2026-01-02-000001_role_check");
    assert_eq!(
        (lost[0].1.table.as_str(), lost[0].1.before, lost[0].1.after),
        ("tokens", 3, 0)
    );
    // The rehearsal changed nothing.
    assert_eq!(count(&t, "SELECT count(*) FROM tokens"), 3);
    assert_eq!(migrator.status().unwrap().pending.len(), 1);

    // Run for real, the migration "succeeds" and the tokens are gone: what the
    // rehearsal is for.
    migrator.run_pending().unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM users"), 2);
    assert_eq!(count(&t, "SELECT count(*) FROM tokens"), 0);
}

#[test]
fn the_declared_rebuild_keeps_every_token_and_guards_foreign_keys() {
    let dirs = declared();
    let t = with_tokens(&dirs);
    let migrator = t.db.migrator(dirs);

    let rehearsal = migrator.rehearse().unwrap();
    assert!(rehearsal.undeclared().is_empty(), "{rehearsal:?}");
    assert!(rehearsal.steps[0].lost.is_empty(), "{rehearsal:?}");

    assert_eq!(
        migrator.run_pending().unwrap(),
        ["2026-01-02-000001_role_check"]
    );
    assert_eq!(count(&t, "SELECT count(*) FROM tokens"), 3);
    assert_eq!(
        count(&t, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    // The new table is in place, and foreign keys are enforced again afterwards.
    assert_eq!(count(&t, "SELECT foreign_keys FROM pragma_foreign_keys"), 1);
    let err =
        t.db.writer_conn()
            .unwrap()
            .batch_execute("INSERT INTO users VALUES ('u3', 'c@x', 'C', 'root', 3)")
            .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
    let err =
        t.db.writer_conn()
            .unwrap()
            .batch_execute("INSERT INTO tokens VALUES ('t9', 'nobody', 'h9', 1)")
            .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");

    // Reverting is a rebuild too: the tokens stay.
    migrator.revert_last().unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM tokens"), 3);
    assert_eq!(migrator.status().unwrap().pending.len(), 1);
}

#[test]
fn a_declared_rebuild_that_fails_part_way_changes_nothing() {
    let dirs = declared();
    let t = with_tokens(&dirs);
    // A role the new CHECK refuses: the copy fails after the new table was made.
    t.db.writer_conn()
        .unwrap()
        .batch_execute("UPDATE users SET role = 'owner' WHERE id = 'u2'")
        .unwrap();
    let err = t.db.migrator(dirs.clone()).run_pending().unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
    assert_eq!(count(&t, "SELECT count(*) FROM tokens"), 3);
    assert_eq!(count(&t, "SELECT count(*) FROM users"), 2);
    assert_eq!(count(&t, "SELECT foreign_keys FROM pragma_foreign_keys"), 1);
    assert_eq!(t.db.migrator(dirs).status().unwrap().pending.len(), 1);
}

/// A full-text index is counted by its virtual table, not by the shadow tables
/// that hold its segments (they shrink when segments merge): the `optimize` that
/// merges them loses nothing.
#[test]
fn a_full_text_index_is_counted_by_its_virtual_table() {
    let scratch = tempfile::tempdir().unwrap();
    let dirs = naive(scratch.path());
    let fts = scratch.path().join("sqlite/2026-01-03-000001_search");
    fs::create_dir_all(&fts).unwrap();
    fs::write(
        fts.join("up.sql"),
        "CREATE VIRTUAL TABLE users_fts USING fts5(name, content='users', content_rowid='rowid');
         INSERT INTO users_fts(users_fts) VALUES ('rebuild');",
    )
    .unwrap();
    fs::write(fts.join("down.sql"), "DROP TABLE users_fts;").unwrap();
    let merge = scratch.path().join("sqlite/2026-01-04-000001_merge");
    fs::create_dir_all(&merge).unwrap();
    fs::write(
        merge.join("up.sql"),
        "INSERT INTO users_fts(users_fts) VALUES ('optimize');",
    )
    .unwrap();
    fs::write(merge.join("down.sql"), "SELECT 1;").unwrap();
    let t = common::open_with(|c| c);
    let migrator = t.db.migrator(dirs.clone());
    migrator.run_pending().unwrap();
    migrator.revert_last().unwrap();
    // Many small segments, which `optimize` merges into one.
    for i in 0..20 {
        t.db.writer_conn()
            .unwrap()
            .batch_execute(&format!(
                "INSERT INTO users VALUES ('x{i}', 'x{i}@x', 'X {i}', 'user', 1);
                 INSERT INTO users_fts(rowid, name) SELECT rowid, name FROM users WHERE id = 'x{i}';"
            ))
            .unwrap();
    }
    assert!(count(&t, "SELECT count(*) FROM users_fts_data") > 3);
    let rehearsal = t.db.migrator(dirs).rehearse().unwrap();
    let step = &rehearsal.steps[0];
    assert!(step.lost.is_empty(), "{step:?}");
    assert!(
        step.before
            .iter()
            .all(|(t, _)| !t.starts_with("users_fts_")),
        "shadow tables are not counted: {step:?}"
    );
    assert!(step.before.contains(&("users_fts".into(), 20)), "{step:?}");
}
