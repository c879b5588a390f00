//! Search stays right whoever writes the file: rows that another program (the
//! seed's Drizzle app, a sqlite3 shell) inserts, updates or deletes are found or
//! dropped by the running server at once; a drizzle-kit file adopted by `web
//! migrate` is searchable; `web reindex` rebuilds the index and `--check` checks it.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use end_to_end::{Sandbox, Server};
use serde_json::Value;

fn found(server: &Server, q: &str) -> Vec<i64> {
    let reply = server.call("GET", &format!("/posts?q={q}"), None, None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[test]
fn rows_another_program_writes_are_found_and_dropped_at_once() {
    let s = Sandbox::new();
    s.prepare();
    let server = s.serve(&[]);
    let mut conn = s.conn();
    // The statements drizzle-orm's SQLite driver sends.
    let inserted: Id = diesel::sql_query(
        r#"insert into "posts" ("id", "title", "content", "author_id", "published_at") values (null, ?, ?, ?, ?) returning "id""#,
    )
    .bind::<Text, _>("Sourdough starter")
    .bind::<Text, _>("Feed the levain twice a day")
    .bind::<Text, _>("admin-001")
    .bind::<Nullable<BigInt>, _>(Some(1_700_000_000_i64))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(found(&server, "levain"), [inserted.id]);
    assert_eq!(found(&server, "sourd"), [inserted.id]);

    diesel::sql_query(r#"update "posts" set "title" = ?, "content" = ? where "posts"."id" = ?"#)
        .bind::<Text, _>("Rye bread")
        .bind::<Text, _>("A dense loaf")
        .bind::<BigInt, _>(inserted.id)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(found(&server, "levain"), Vec::<i64>::new());
    assert_eq!(found(&server, "rye"), [inserted.id]);

    diesel::sql_query(r#"delete from "posts" where "posts"."id" = ?"#)
        .bind::<BigInt, _>(inserted.id)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(found(&server, "rye"), Vec::<i64>::new());
    let check = s.run("web", &["reindex", "--check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("search index: ok"));
}

#[test]
fn a_drizzle_kit_file_keeps_every_row_and_is_searchable() {
    let s = Sandbox::new();
    let mut conn = s.conn();
    conn.batch_execute(include_str!("../crates/db/tests/fixtures/drizzle-kit.sql"))
        .unwrap();
    let posts: Vec<Id> = diesel::sql_query("SELECT id FROM posts ORDER BY id")
        .load(&mut conn)
        .unwrap();
    drop(conn);
    s.run("web", &["migrate"]);
    let server = s.serve(&[]);
    // The fixture's published post, by a word of its title and of its content.
    assert_eq!(found(&server, "hello"), [posts[0].id]);
    assert_eq!(found(&server, "first"), [posts[0].id]);
    let mut conn = s.conn();
    let after: Vec<Id> = diesel::sql_query("SELECT id FROM posts ORDER BY id")
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        after.iter().map(|p| p.id).collect::<Vec<_>>(),
        posts.iter().map(|p| p.id).collect::<Vec<_>>()
    );
}

#[test]
fn reindex_repairs_what_check_finds() {
    let s = Sandbox::new();
    s.prepare();
    let mut conn = s.conn();
    // A writer that bypasses the index: the triggers are gone for one insert.
    conn.batch_execute(
        "DROP TRIGGER posts_fts_after_insert; \
         INSERT INTO posts (title, content, author_id, published_at) \
         VALUES ('Persimmon', 'ripe', 'admin-001', 1700000000)",
    )
    .unwrap();
    let said = Sandbox::fail(s.command("web", &["reindex", "--check"]));
    assert!(said.contains("does not match"), "{said}");
    let out = s.run("web", &["reindex"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rebuilt from 1 posts"), "{text}");
    s.run("web", &["reindex", "--check"]);
    let server = s.serve(&[]);
    let reply = server.call("GET", "/posts?q=persimmon", None, None);
    assert_eq!(reply.body["items"][0]["title"], Value::from("Persimmon"));
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Nullable<BigInt>)]
    v: Option<i64>,
}

/// Writes merge the index's segments lazily (FTS5's `automerge` is 8, stored in
/// the file for every program that writes it), and a demo seed leaves the index
/// merged, so the next writes do not pay for merging a bulk load.
#[test]
fn the_index_merges_lazily_and_a_demo_seed_leaves_it_merged() {
    let s = Sandbox::new();
    s.prepare();
    let out = s.run("seed", &["--demo", "3", "200"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("search index: merged"), "{text}");
    let mut conn = s.conn();
    let mut automerge = || {
        diesel::sql_query("SELECT v FROM posts_fts_config WHERE k = 'automerge'")
            .get_result::<Setting>(&mut conn)
            .unwrap()
            .v
    };
    assert_eq!(automerge(), Some(8));
    // Rolled back (with the migrations after it), FTS5's default again.
    let migrations = end_to_end::migrations();
    let tuning = migrations
        .iter()
        .position(|name| name.ends_with("_search_index_tuning"))
        .unwrap();
    for _ in tuning..migrations.len() {
        s.run("web", &["rollback"]);
    }
    assert_eq!(automerge(), Some(4));
    s.run("web", &["migrate"]);
    s.run("web", &["reindex", "--check"]);
}
