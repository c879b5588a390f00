//! SQLite and PostgreSQL side by side: the two migration sets keep the same
//! versions and build the same schema, PostgreSQL sessions get their settings,
//! a server that cannot be reached is one clear line, and racing writers on
//! PostgreSQL keep the domain's check-then-write rules.
//!
//! The PostgreSQL tests need `TEST_DATABASE_URL` (`scripts/test-postgres.sh`
//! starts a server and sets it); without it they return early.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::thread;

use db::{AnyConnection, Config, Database, Db, Error, pg_setting};
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use domain::{Actor, NewPostInput, NewUserInput, Role, Timestamp, User};

fn names<DB: diesel::backend::Backend>(source: &impl MigrationSource<DB>) -> Vec<String> {
    let mut names: Vec<String> = source
        .migrations()
        .unwrap()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn both_migration_sets_have_the_same_versions() {
    let sqlite = names::<Sqlite>(&db::MIGRATIONS);
    let postgres = names::<Pg>(&db::MIGRATIONS);
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres"
    );
}

/// One table as both backends describe it, in words they share.
#[derive(Debug, Default, PartialEq)]
struct Table {
    /// name, type (`text` or `integer`), not null, default.
    columns: Vec<(String, String, bool, Option<String>)>,
    primary_key: Vec<String>,
    /// Indexes other than the primary key's: name, unique, columns.
    indexes: BTreeSet<(String, bool, String)>,
    /// column, referenced table, referenced column, on delete.
    foreign_keys: BTreeSet<(String, String, String, String)>,
}

/// `integer`/`bigint` are one type here: SQLite's integers are 64-bit.
fn kind(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer".into(),
        other => other.into(),
    }
}

/// `'user'::text` (PostgreSQL) is `'user'` (SQLite).
fn default_value(raw: Option<String>) -> Option<String> {
    raw.map(|d| d.strip_suffix("::text").unwrap_or(&d).to_owned())
}

#[derive(QueryableByName)]
struct Row4 {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Nullable<Text>)]
    d: Option<String>,
}

#[derive(QueryableByName)]
struct Row5 {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = Bool)]
    unique: bool,
    #[diesel(sql_type = Bool)]
    primary: bool,
    #[diesel(sql_type = Text)]
    columns: String,
}

/// The search index over posts is each backend's own by design (an FTS5 table
/// and its shadow tables on SQLite, a GIN index on PostgreSQL): left out of the
/// comparison, and checked to exist on each side.
const SQLITE_SEARCH: &str = "posts_fts";
const POSTGRES_SEARCH: &str = "posts_search_idx";

fn sqlite_schema(conn: &mut AnyConnection) -> BTreeMap<String, Table> {
    let tables: Vec<Row4> = diesel::sql_query(
        "SELECT name AS a, '' AS b, '' AS c, NULL AS d FROM sqlite_master \
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name != '__diesel_schema_migrations' AND name NOT LIKE 'posts_fts%' ORDER BY name",
    )
    .load(conn)
    .unwrap();
    let mut schema = BTreeMap::new();
    for table in tables.into_iter().map(|t| t.a) {
        let mut shape = Table::default();
        #[derive(QueryableByName)]
        struct Column {
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = Text, column_name = "type")]
            declared: String,
            #[diesel(sql_type = Bool)]
            notnull: bool,
            #[diesel(sql_type = Nullable<Text>)]
            dflt_value: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pk: i32,
        }
        let columns: Vec<Column> = diesel::sql_query(format!(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}') ORDER BY cid"
        ))
        .load(conn)
        .unwrap();
        let mut pk: Vec<(i32, String)> = Vec::new();
        for c in columns {
            if c.pk > 0 {
                pk.push((c.pk, c.name.clone()));
            }
            // SQLite lets a primary key column be NULL unless it says otherwise;
            // these say NOT NULL, as PostgreSQL's always are.
            shape.columns.push((
                c.name,
                kind(&c.declared),
                c.notnull,
                default_value(c.dflt_value),
            ));
        }
        pk.sort();
        shape.primary_key = pk.into_iter().map(|(_, n)| n).collect();
        let indexes: Vec<Row5> = diesel::sql_query(format!(
            "SELECT '{table}' AS a, il.name AS b, il.\"unique\" AS \"unique\", \
             il.origin = 'pk' AS \"primary\", \
             (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno)) AS columns \
             FROM pragma_index_list('{table}') AS il"
        ))
        .load(conn)
        .unwrap();
        shape.indexes = indexes
            .into_iter()
            .filter(|i| !i.primary)
            .map(|i| (i.b, i.unique, i.columns))
            .collect();
        let fks: Vec<Row4> = diesel::sql_query(format!(
            "SELECT \"from\" AS a, \"table\" AS b, \"to\" AS c, on_delete AS d \
             FROM pragma_foreign_key_list('{table}')"
        ))
        .load(conn)
        .unwrap();
        shape.foreign_keys = fks
            .into_iter()
            .map(|f| (f.a, f.b, f.c, f.d.unwrap_or_default().to_uppercase()))
            .collect();
        schema.insert(table, shape);
    }
    schema
}

fn postgres_schema(conn: &mut AnyConnection) -> BTreeMap<String, Table> {
    let columns: Vec<Row4> = diesel::sql_query(
        "SELECT table_name::text AS a, column_name::text AS b, \
         data_type::text || CASE is_nullable WHEN 'NO' THEN ' not null' ELSE '' END AS c, \
         column_default::text AS d \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name != '__diesel_schema_migrations' \
         ORDER BY table_name, ordinal_position",
    )
    .load(conn)
    .unwrap();
    let mut schema: BTreeMap<String, Table> = BTreeMap::new();
    for c in columns {
        let (declared, notnull) = match c.c.strip_suffix(" not null") {
            Some(declared) => (declared.to_owned(), true),
            None => (c.c.clone(), false),
        };
        schema.entry(c.a).or_default().columns.push((
            c.b,
            kind(&declared),
            notnull,
            default_value(c.d),
        ));
    }
    let indexes: Vec<Row5> = diesel::sql_query(
        "SELECT t.relname::text AS a, i.relname::text AS b, ix.indisunique AS \"unique\", \
         ix.indisprimary AS \"primary\", \
         (SELECT string_agg(att.attname, ',' ORDER BY k.ord) \
            FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
            JOIN pg_attribute att ON att.attrelid = t.oid AND att.attnum = k.attnum) AS columns \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname != '__diesel_schema_migrations' \
         AND i.relname != 'posts_search_idx'",
    )
    .load(conn)
    .unwrap();
    for i in indexes {
        let table = schema.entry(i.a).or_default();
        if i.primary {
            table.primary_key = i.columns.split(',').map(str::to_owned).collect();
        } else {
            table.indexes.insert((i.b, i.unique, i.columns));
        }
    }
    let fks: Vec<Row4> = diesel::sql_query(
        "SELECT t.relname::text || '.' || a.attname::text AS a, r.relname::text AS b, \
         ra.attname::text AS c, \
         CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'a' THEN 'NO ACTION' \
           WHEN 'r' THEN 'RESTRICT' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END AS d \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_class r ON r.oid = c.confrelid \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = c.confkey[1] \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .load(conn)
    .unwrap();
    for f in fks {
        let (table, column) = f.a.split_once('.').unwrap();
        schema
            .entry(table.to_owned())
            .or_default()
            .foreign_keys
            .insert((column.to_owned(), f.b, f.c, f.d.unwrap_or_default()));
    }
    schema
}

#[test]
fn both_migration_sets_build_the_same_schema() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let lite = common::migrated();
    let sqlite = sqlite_schema(&mut lite.db.writer_conn().unwrap());

    let db = Db::open(&pg.config()).unwrap();
    let migrator = db.migrator(db::MIGRATIONS);
    let all = migrator.run_pending().unwrap();
    assert_eq!(all, names::<Pg>(&db::MIGRATIONS));
    let postgres = postgres_schema(&mut db.writer_conn().unwrap());
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>()
    );
    for (table, shape) in &sqlite {
        assert_eq!(shape, &postgres[table], "table {table}");
    }
    let exists = |conn: &mut db::PooledConnection, sql: &str, name: &str| {
        diesel::sql_query(sql)
            .bind::<Text, _>(name)
            .load::<Row4>(conn)
            .unwrap()
            .len()
    };
    let search = "SELECT name AS a, '' AS b, '' AS c, NULL AS d FROM sqlite_master WHERE name = ?";
    assert_eq!(
        exists(&mut lite.db.writer_conn().unwrap(), search, SQLITE_SEARCH),
        1
    );
    let search = "SELECT relname::text AS a, '' AS b, '' AS c, NULL AS d FROM pg_class \
                  WHERE relname = $1 AND relnamespace = current_schema()::regnamespace";
    assert_eq!(
        exists(&mut db.writer_conn().unwrap(), search, POSTGRES_SEARCH),
        1
    );
    // The detector itself: a column PostgreSQL lacks is a difference.
    db.writer_conn()
        .unwrap()
        .batch_execute("ALTER TABLE posts ADD COLUMN drift text")
        .unwrap();
    assert_ne!(
        postgres_schema(&mut db.writer_conn().unwrap())["posts"],
        sqlite["posts"]
    );
    db.writer_conn()
        .unwrap()
        .batch_execute("ALTER TABLE posts DROP COLUMN drift")
        .unwrap();

    // Down and up again on PostgreSQL too.
    while migrator.revert_last().unwrap().is_some() {}
    assert_eq!(migrator.status().unwrap().pending, all);
    assert_eq!(migrator.run_pending().unwrap(), all);
    migrator.ensure_current().unwrap();
    assert_eq!(postgres_schema(&mut db.writer_conn().unwrap()), postgres);
}

#[test]
fn postgres_sessions_get_their_settings_and_readers_cannot_write() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let mut config = pg.config();
    config.pg_statement_timeout_ms = 1234;
    config.pg_idle_in_transaction_timeout_ms = 5678;
    config.pg_application_name = Some("backends-test".into());
    config.writers = 3;
    let db = Db::open(&config).unwrap();
    assert_eq!(db.backend(), "postgresql");
    db.migrator(db::MIGRATIONS).run_pending().unwrap();
    // Hold several writers at once: each is a connection of its own.
    let mut writers: Vec<_> = (0..3).map(|_| db.writer_conn().unwrap()).collect();
    let mut reader = db.reader_conn().unwrap();
    for (conn, read_only) in writers
        .iter_mut()
        .map(|c| (c, "off"))
        .chain(std::iter::once((&mut reader, "on")))
    {
        assert_eq!(pg_setting(conn, "statement_timeout").unwrap(), "1234");
        assert_eq!(
            pg_setting(conn, "idle_in_transaction_session_timeout").unwrap(),
            "5678"
        );
        assert_eq!(
            pg_setting(conn, "application_name").unwrap(),
            "backends-test"
        );
        assert_eq!(
            pg_setting(conn, "default_transaction_read_only").unwrap(),
            read_only
        );
    }
    let err = reader
        .batch_execute(
            "INSERT INTO users (id, email, name, created_at) VALUES ('x', 'x@x', 'x', 0)",
        )
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    // The statement timeout is enforced, not only reported.
    let err = writers[0].batch_execute("SELECT pg_sleep(3)").unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
}

#[test]
fn an_unreachable_server_is_one_line_naming_the_url_without_its_password() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let wrong_password = pg.url.replacen("app:app@", "app:s3cret-wrong@", 1);
    assert_ne!(
        wrong_password, pg.url,
        "the test URL has a password to replace"
    );
    let missing_database = {
        let (before, after) = pg.url.rsplit_once('/').unwrap();
        let query = after
            .split_once('?')
            .map_or(String::new(), |(_, q)| format!("?{q}"));
        format!("{before}/no_such_database{query}")
    };
    for (url, says) in [
        (wrong_password.as_str(), "password authentication failed"),
        (missing_database.as_str(), "does not exist"),
        (
            "postgres://app:s3cret-wrong@no-such-host.invalid/app",
            "no-such-host.invalid",
        ),
    ] {
        let err = Db::open(&Config::for_database(Database::Postgres(url.into()))).unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(!shown.contains('\n'), "one line: {shown}");
        assert!(shown.contains(says), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(":***@"), "names the URL: {shown}");
    }
}

/// Creates the user `admin`, an admin, and returns it as the actor.
fn admin(db: &Db) -> Actor {
    db.write(|c| {
        domain::models::user::NewUser {
            id: "admin".into(),
            email: "admin@example.com".into(),
            name: "Admin".into(),
            role: Role::Admin,
            created_at: Timestamp::now(),
        }
        .insert(c)
    })
    .unwrap();
    Actor::Member {
        id: "admin".into(),
        role: Role::Admin,
    }
}

/// Sixteen writers at once, many rounds: a user is deleted while others post
/// as that user, and several create the same email. Every request gets one of
/// the answers SQLite's serial writes give (created, 409, 422), never a database
/// error, and no post outlives its author.
#[test]
fn racing_writers_on_postgres_keep_the_check_then_write_rules() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let mut config = pg.config();
    config.writers = 16;
    let db = Db::open(&config).unwrap();
    db.migrator(db::MIGRATIONS).run_pending().unwrap();
    let admin = admin(&db);

    let workers = 16;
    for round in 0..10 {
        let victim = db
            .write(|c| {
                User::create(
                    c,
                    &admin,
                    &NewUserInput {
                        email: format!("victim{round}@example.com"),
                        name: "Victim".into(),
                        role: None,
                    },
                    Timestamp::now(),
                )
            })
            .unwrap();
        let barrier = Arc::new(Barrier::new(workers));
        let threads: Vec<_> = (0..workers)
            .map(|n| {
                let (db, barrier, admin, victim) = (
                    db.clone(),
                    barrier.clone(),
                    admin.clone(),
                    victim.id.clone(),
                );
                thread::spawn(move || {
                    barrier.wait();
                    match n {
                        0 => (
                            "delete",
                            db.write(|c| User::delete(c, &admin, &victim)).map(drop),
                        ),
                        1..=10 => (
                            "post",
                            db.write(|c| {
                                domain::Post::create(
                                    c,
                                    &admin,
                                    &NewPostInput {
                                        title: format!("by {victim}"),
                                        content: "race".into(),
                                        author_id: Some(victim.clone()),
                                        published_at: None,
                                    },
                                )
                            })
                            .map(drop),
                        ),
                        _ => (
                            "email",
                            db.write(|c| {
                                User::create(
                                    c,
                                    &admin,
                                    &NewUserInput {
                                        email: format!("same{round}@example.com"),
                                        name: "Same".into(),
                                        role: None,
                                    },
                                    Timestamp::now(),
                                )
                            })
                            .map(drop),
                        ),
                    }
                })
            })
            .collect();
        let outcomes: Vec<(&str, domain::Result<()>)> =
            threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut created_emails = 0;
        let mut deleted = false;
        let mut posted = 0;
        for (what, outcome) in &outcomes {
            match (what, outcome) {
                (&"delete", Ok(())) => deleted = true,
                (&"delete", Err(domain::Error::Conflict(_))) => {}
                (&"post", Ok(())) => posted += 1,
                (&"post", Err(domain::Error::Invalid(_))) => {}
                (&"email", Ok(())) => created_emails += 1,
                (&"email", Err(domain::Error::Conflict(_))) => {}
                (what, other) => panic!("round {round}: {what} answered {other:?}"),
            }
        }
        assert_eq!(created_emails, 1, "round {round}: one user per email");
        let (author_exists, posts): (bool, i64) = db
            .read(|c| {
                use domain::schema::{posts, users};
                let exists = diesel::select(diesel::dsl::exists(users::table.find(&victim.id)))
                    .get_result(c)?;
                let posts = posts::table
                    .filter(posts::author_id.eq(&victim.id))
                    .count()
                    .get_result(c)?;
                Ok::<_, Error>((exists, posts))
            })
            .unwrap();
        assert_eq!(author_exists, !deleted, "round {round}");
        assert_eq!(posts, posted, "round {round}");
        if deleted {
            assert_eq!(posts, 0, "round {round}: a post outlived its author");
        }
    }
}

/// A write that lost a serialization race runs again until the pool's timeout
/// has passed since it began, however many tries that takes, and only then is
/// `Busy`; one that stops losing commits its last run alone.
#[test]
fn a_write_that_keeps_losing_races_runs_again_until_the_pool_timeout() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let mut config = pg.config();
    config.pool_timeout = std::time::Duration::from_millis(1500);
    let db = Db::open(&config).unwrap();
    db.migrator(db::MIGRATIONS).run_pending().unwrap();
    // PostgreSQL's own answer to a transaction that lost a race, on demand.
    let lose = "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = 'serialization_failure'; END $$";
    let insert = |c: &mut AnyConnection, id: &str| {
        c.batch_execute(&format!(
            "INSERT INTO users (id, email, name, created_at) VALUES ('{id}', '{id}@x', 'x', 0)"
        ))
    };

    // Losing twenty times: more than a fixed number of tries would have allowed.
    let mut runs = 0;
    db.write(|c| -> Result<(), Error> {
        runs += 1;
        insert(c, &format!("u{runs}"))?;
        if runs <= 20 {
            c.batch_execute(lose)?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(runs, 21);
    let ids: Vec<String> = db
        .read(|c| -> Result<_, Error> {
            Ok(domain::schema::users::table
                .select(domain::schema::users::id)
                .load(c)?)
        })
        .unwrap();
    assert_eq!(ids, ["u21"], "only the run that committed left its row");

    // Losing every time: `Busy` once the timeout has passed, not before.
    let started = std::time::Instant::now();
    let mut runs = 0;
    let outcome = db.write(|c| -> Result<(), Error> {
        runs += 1;
        Ok(c.batch_execute(lose)?)
    });
    assert!(matches!(outcome, Err(Error::Busy)), "{outcome:?}");
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1400),
        "{took:?} over {runs} runs"
    );
    assert!(
        took < std::time::Duration::from_millis(3000),
        "{took:?} over {runs} runs"
    );
    assert!(runs > 12, "{runs} runs");
}

/// Everything a PostgreSQL schema holds that a migration may make, each as one
/// line: columns (generated ones with their expression), indexes, constraints,
/// triggers and functions.
fn postgres_objects(conn: &mut AnyConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        line: String,
    }
    let lines: Vec<Line> = diesel::sql_query(
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' \
           || is_nullable || ' ' || coalesce(column_default, '') || ' ' \
           || coalesce(generation_expression, '') AS line \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name != '__diesel_schema_migrations' \
         UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename != '__diesel_schema_migrations' \
         UNION ALL SELECT 'constraint ' || c.conrelid::regclass::text || ' ' || c.conname || ' ' \
           || pg_get_constraintdef(c.oid) FROM pg_constraint c \
         WHERE c.connamespace = current_schema()::regnamespace \
           AND c.conrelid::regclass::text != '__diesel_schema_migrations' \
         UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t \
         JOIN pg_class r ON r.oid = t.tgrelid \
         WHERE NOT t.tgisinternal AND r.relnamespace = current_schema()::regnamespace \
         UNION ALL SELECT 'function ' || p.proname || ' ' || pg_get_functiondef(p.oid) FROM pg_proc p \
         WHERE p.pronamespace = current_schema()::regnamespace \
         ORDER BY 1",
    )
    .load(conn)
    .unwrap();
    lines.into_iter().map(|l| l.line).collect()
}

/// The PostgreSQL half of the lint's up/down/up rule: each migration, run up,
/// down and up again, leaves the schema it found and builds the same one twice.
#[test]
fn every_postgres_migration_is_undone_by_its_down() {
    use diesel_migrations::MigrationHarness;
    let Some(pg) = common::postgres() else {
        return;
    };
    let db = Db::open(&pg.config()).unwrap();
    let mut conn = db.writer_conn().unwrap();
    for name in names::<Pg>(&db::MIGRATIONS) {
        let before = postgres_objects(&mut conn);
        let AnyConnection::Pg(c) = &mut *conn else {
            unreachable!("PostgreSQL")
        };
        c.run_next_migration(db::MIGRATIONS.postgres).unwrap();
        let after = postgres_objects(&mut conn);
        assert_ne!(after, before, "{name} changes the schema");
        let AnyConnection::Pg(c) = &mut *conn else {
            unreachable!("PostgreSQL")
        };
        c.revert_last_migration(db::MIGRATIONS.postgres).unwrap();
        assert_eq!(
            postgres_objects(&mut conn),
            before,
            "{name}: down.sql undoes up.sql"
        );
        let AnyConnection::Pg(c) = &mut *conn else {
            unreachable!("PostgreSQL")
        };
        c.run_next_migration(db::MIGRATIONS.postgres).unwrap();
        assert_eq!(postgres_objects(&mut conn), after, "{name}: up.sql again");
    }
}

/// `migrate --dry-run` on PostgreSQL: each pending migration runs inside one
/// transaction that is rolled back, with rows counted around it.
#[test]
fn the_rehearsal_on_postgres_counts_rows_and_rolls_back() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let db = Db::open(&pg.config()).unwrap();
    let migrator = db.migrator(db::MIGRATIONS);
    migrator.run_pending().unwrap();
    let newest = migrator.revert_last().unwrap().unwrap();
    db.writer_conn()
        .unwrap()
        .batch_execute(
            "INSERT INTO users (id, email, name, created_at) VALUES ('u1', 'a@x', 'A', 1), ('u2', 'b@x', 'B', 2)",
        )
        .unwrap();
    let before = postgres_objects(&mut db.writer_conn().unwrap());

    let rehearsal = migrator.rehearse().unwrap();
    assert_eq!(rehearsal.steps.len(), 1, "{rehearsal:?}");
    let step = &rehearsal.steps[0];
    assert_eq!(step.name, newest);
    assert!(step.before.contains(&("users".into(), 2)), "{step:?}");
    assert!(step.after.contains(&("users".into(), 2)), "{step:?}");
    assert!(step.lost.is_empty(), "{step:?}");

    assert_eq!(migrator.status().unwrap().pending, [newest]);
    assert_eq!(postgres_objects(&mut db.writer_conn().unwrap()), before);
}

/// The same posts on both backends: every single word of them (also in another
/// case or without its accents) finds the same posts on SQLite (FTS5) and on
/// PostgreSQL (tsvector). Ranks may differ; the sets may not.
#[test]
fn a_single_word_finds_the_same_posts_on_both_backends() {
    let Some(pg) = common::postgres() else {
        return;
    };
    let lite = common::migrated();
    let postgres = Db::open(&pg.config()).unwrap();
    postgres.migrator(db::MIGRATIONS).run_pending().unwrap();
    let vocabulary = [
        "Café",
        "naïve",
        "Crème",
        "brûlée",
        "résumé",
        "Ångström",
        "façade",
        "jalapeño",
        "Zürich",
        "über",
        "Rust",
        "rust's",
        "e-mail",
        "co-operate",
        "C3PO",
        "2026",
        "x86_64",
        "Ærø",
        "ŁÓDŹ",
        "São",
        "Paulo",
        "déjà",
        "vu",
        "İstanbul",
        "the",
        "THE",
        "quick",
        "Brown",
        "fox!",
        "(jumps)",
        "over;",
        "lazy",
        "dogs...",
        "\"quoted\"",
        "tab\there",
        "new\nline",
    ];
    for db in [&lite.db, &postgres] {
        let admin = admin(db);
        db.write(|c| {
            for n in 0..120_usize {
                let pick = |k: usize| vocabulary[(n * 7 + k * 13 + n / 5) % vocabulary.len()];
                let title = format!("{} {}", pick(1), pick(2)).replace(char::is_control, " ");
                let content = (3..12).map(pick).collect::<Vec<_>>().join(" ");
                domain::Post::create(
                    c,
                    &admin,
                    &NewPostInput {
                        title,
                        content,
                        author_id: None,
                        published_at: None,
                    },
                )?;
            }
            Ok::<_, domain::Error>(())
        })
        .unwrap();
    }
    let admin = Actor::Member {
        id: "admin".into(),
        role: Role::Admin,
    };
    let found = |db: &Db, q: &str| -> BTreeSet<i64> {
        let query = domain::SearchQuery::parse(q).unwrap();
        let mut ids = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = db
                .read(|c| {
                    domain::Post::search(
                        c,
                        &admin,
                        &domain::PostFilter::default(),
                        &query,
                        cursor.as_deref(),
                        100,
                        Timestamp::now(),
                    )
                })
                .unwrap();
            ids.extend(page.items.iter().map(|h| h.post.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break ids,
            }
        }
    };
    let mut words: BTreeSet<String> = BTreeSet::new();
    for entry in vocabulary {
        for word in entry
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            words.insert(word.to_owned());
            words.insert(word.to_lowercase());
            words.insert(word.to_uppercase());
        }
    }
    words.extend(
        [
            "cafe", "NAIVE", "creme", "brulee", "zurich", "uber", "deja", "sao",
        ]
        .map(String::from),
    );
    let mut matched = 0;
    for word in &words {
        let (on_sqlite, on_postgres) = (found(&lite.db, word), found(&postgres, word));
        assert_eq!(on_sqlite, on_postgres, "{word:?}");
        matched += usize::from(!on_sqlite.is_empty());
    }
    // Not a comparison of empty sets.
    assert!(
        matched > words.len() * 3 / 4,
        "{matched} of {}",
        words.len()
    );
}
