//! Migrations: the resulting file is the contract's, drizzle-kit's files are
//! adopted with their rows, and a file from a newer build is refused.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use db::{Db, Error};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

#[derive(QueryableByName, Debug, PartialEq)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text, column_name = "type")]
    declared: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Nullable<Text>)]
    dflt_value: Option<String>,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Index {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    unique: i32,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Text)]
    to: String,
    #[diesel(sql_type = Text)]
    on_update: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

fn columns(
    conn: &mut db::Connection,
    table: &str,
) -> Vec<(String, String, bool, Option<String>, bool)> {
    diesel::sql_query(format!("PRAGMA table_info({table})"))
        .load::<Column>(conn)
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.declared, c.notnull == 1, c.dflt_value, c.pk == 1))
        .collect()
}

fn col(
    name: &str,
    declared: &str,
    notnull: bool,
    default: Option<&str>,
    pk: bool,
) -> (String, String, bool, Option<String>, bool) {
    (
        name.into(),
        declared.into(),
        notnull,
        default.map(Into::into),
        pk,
    )
}

/// The contract's section 2, as SQLite reports it.
fn assert_contract_schema(conn: &mut db::Connection) {
    assert_eq!(
        columns(conn, "users"),
        vec![
            col("id", "TEXT", true, None, true),
            col("email", "TEXT", true, None, false),
            col("name", "TEXT", true, None, false),
            col("role", "TEXT", true, Some("'user'"), false),
            col("created_at", "INTEGER", true, None, false),
        ]
    );
    assert_eq!(
        columns(conn, "posts"),
        vec![
            col("id", "INTEGER", true, None, true),
            col("title", "TEXT", true, None, false),
            col("content", "TEXT", true, None, false),
            col("author_id", "TEXT", true, None, false),
            col("published_at", "INTEGER", false, None, false),
        ]
    );
    let users_indexes = diesel::sql_query("PRAGMA index_list(users)")
        .load::<Index>(conn)
        .unwrap();
    assert!(
        users_indexes.contains(&Index {
            name: "users_email_unique".into(),
            unique: 1
        }),
        "{users_indexes:?}"
    );
    let fks = diesel::sql_query("PRAGMA foreign_key_list(posts)")
        .load::<ForeignKey>(conn)
        .unwrap();
    assert_eq!(
        fks,
        vec![ForeignKey {
            table: "users".into(),
            from: "author_id".into(),
            to: "id".into(),
            on_update: "NO ACTION".into(),
            on_delete: "NO ACTION".into(),
        }]
    );
    // AUTOINCREMENT: ids are never reused, so SQLite keeps a sqlite_sequence row.
    let sql: String = diesel::select(diesel::dsl::sql::<Text>(
        "(SELECT sql FROM sqlite_master WHERE name = 'posts')",
    ))
    .get_result(conn)
    .unwrap();
    assert!(sql.contains("PRIMARY KEY AUTOINCREMENT NOT NULL"), "{sql}");
}

fn table_names(conn: &mut db::Connection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

#[test]
fn up_down_up_gives_the_contract_schema() {
    let t = common::open_with(|c| c);
    let migrator = t.db.migrator(db::MIGRATIONS);
    let status = migrator.status().unwrap();
    assert!(status.applied.is_empty());
    let all = status.pending.clone();
    assert!(all.len() >= 3, "{all:?}");
    assert_eq!(migrator.run_pending().unwrap(), all);
    assert_contract_schema(&mut t.db.writer_conn().unwrap());
    assert!(
        migrator.run_pending().unwrap().is_empty(),
        "second run applies nothing"
    );

    let mut reverted = Vec::new();
    while let Some(name) = migrator.revert_last().unwrap() {
        reverted.push(name);
    }
    reverted.reverse();
    assert_eq!(reverted, all);
    assert_eq!(
        table_names(&mut t.db.writer_conn().unwrap()),
        ["__diesel_schema_migrations"]
    );

    assert_eq!(migrator.run_pending().unwrap(), all);
    assert_contract_schema(&mut t.db.writer_conn().unwrap());
    migrator.ensure_current().unwrap();
}

/// drizzle-kit's migration for the seed's schema, as `drizzle-kit generate` writes
/// it, and its bookkeeping table.
const DRIZZLE_DDL: &str = include_str!("fixtures/drizzle-kit.sql");

#[test]
fn a_drizzle_kit_file_is_adopted_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute(DRIZZLE_DDL).unwrap();
    }
    let db = Db::open(&db::Config::for_path(&path)).unwrap();
    let applied = db.migrator(db::MIGRATIONS).run_pending().unwrap();
    assert!(!applied.is_empty());
    let mut conn = db.writer_conn().unwrap();
    assert_contract_schema(&mut conn);

    let users = db
        .read(|c| {
            use domain::schema::users;
            users::table
                .select((users::id, users::email, users::created_at))
                .order(users::id)
                .load::<(String, String, i64)>(c)
                .map_err(Error::from)
        })
        .unwrap();
    assert_eq!(
        users,
        [
            ("admin-001".into(), "admin@example.com".into(), 1732000000),
            ("u-2".into(), "bob@example.com".into(), 1732000100)
        ]
    );
    let posts = db
        .read(|c| {
            use domain::schema::posts;
            posts::table
                .select((posts::id, posts::title, posts::published_at))
                .order(posts::id)
                .load::<(i64, String, Option<i64>)>(c)
                .map_err(Error::from)
        })
        .unwrap();
    assert_eq!(
        posts,
        [
            (1, "Hello".into(), Some(1732000200)),
            (2, "Draft".into(), None)
        ]
    );
    // Drizzle's bookkeeping is left alone, so drizzle-kit can still read the file.
    let drizzle_rows: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM __drizzle_migrations)",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(drizzle_rows, 1);
    // And the adopted file takes new rows through the domain.
    drop(conn);
    db.write(|c| {
        domain::User::find(c, "admin-001")?;
        domain::Post::create(
            c,
            &domain::Actor::Member {
                id: "u-2".into(),
                role: domain::Role::User,
            },
            &domain::NewPostInput {
                title: "After".into(),
                content: "adopted".into(),
                ..Default::default()
            },
        )
    })
    .unwrap();
}

#[test]
fn a_file_from_a_newer_build_is_refused() {
    let t = common::migrated();
    t.db.writer_conn()
        .unwrap()
        .batch_execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')")
        .unwrap();
    let migrator = t.db.migrator(db::MIGRATIONS);
    for outcome in [
        migrator.ensure_current().err(),
        migrator.run_pending().err(),
        migrator.revert_last().err(),
    ] {
        match outcome {
            Some(Error::SchemaTooNew(unknown)) => assert_eq!(unknown, ["29991231000000"]),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}

#[test]
fn pending_migrations_are_reported_by_name() {
    let t = common::migrated();
    let migrator = t.db.migrator(db::MIGRATIONS);
    let last = migrator.revert_last().unwrap().unwrap();
    match migrator.ensure_current() {
        Err(Error::MigrationsPending(pending)) => assert_eq!(pending, [last]),
        other => panic!("expected pending, got {other:?}"),
    }
}
