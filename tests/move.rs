//! `web move --to URL` (`make move to=URL`): every row reaches the other database
//! exactly (ids, timestamps, roles, token hashes, expiry, idempotency keys), in
//! each direction between SQLite and PostgreSQL; the target serves the same API
//! and hands out fresh post ids; a target holding rows or at another schema
//! version is refused; an interrupted move leaves nothing; writes to a live
//! source are in the copy wholly or not at all.
//!
//! The PostgreSQL cases need `TEST_DATABASE_URL` (`scripts/test-postgres.sh`
//! sets it) and return early without it.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use db::{AnyConnection, Database};
use diesel::prelude::*;
use domain::schema::{idempotency_keys, posts, tokens, users};
use end_to_end::{ADMIN_TOKEN, PgDatabase, Sandbox, Server, succeed};
use serde_json::{Value, json};

/// `web` with `source` as its database.
fn web(s: &Sandbox, source: &str, args: &[&str]) -> Command {
    let mut cmd = s.command("web", args);
    cmd.env("DATABASE_URL", source);
    cmd
}

/// `web move` from `source` to `target`, handed over as `make move` does.
fn move_cmd(s: &Sandbox, source: &str, target: &str, args: &[&str]) -> Command {
    let mut cmd = web(s, source, &[&["move"], args].concat());
    cmd.env("MOVE_TO", target);
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open(url: &str) -> AnyConnection {
    AnyConnection::open(&url.parse::<Database>().unwrap()).unwrap()
}

/// Every row of every data table, each column as stored, sorted: two databases
/// hold the same data exactly when these are equal.
fn rows(url: &str) -> Vec<String> {
    let mut conn = open(url);
    let mut all: Vec<String> = Vec::new();
    let c = &mut conn;
    all.extend(
        users::table
            .select((
                users::id,
                users::email,
                users::name,
                users::role,
                users::created_at,
            ))
            .load::<(String, String, String, String, i64)>(c)
            .unwrap()
            .iter()
            .map(|r| format!("users {r:?}")),
    );
    all.extend(
        posts::table
            .select((
                posts::id,
                posts::title,
                posts::content,
                posts::author_id,
                posts::published_at,
            ))
            .load::<(i64, String, String, String, Option<i64>)>(c)
            .unwrap()
            .iter()
            .map(|r| format!("posts {r:?}")),
    );
    all.extend(
        tokens::table
            .select((
                tokens::id,
                tokens::user_id,
                tokens::token_hash,
                tokens::created_at,
                tokens::expires_at,
                tokens::last_used_at,
                tokens::label,
            ))
            .load::<(
                String,
                String,
                String,
                i64,
                Option<i64>,
                Option<i64>,
                Option<String>,
            )>(c)
            .unwrap()
            .iter()
            .map(|r| format!("tokens {r:?}")),
    );
    all.extend(
        idempotency_keys::table
            .select((
                idempotency_keys::caller_id,
                idempotency_keys::key,
                idempotency_keys::fingerprint,
                idempotency_keys::status,
                idempotency_keys::response,
                idempotency_keys::created_at,
            ))
            .load::<(String, String, String, i32, String, i64)>(c)
            .unwrap()
            .iter()
            .map(|r| format!("idempotency_keys {r:?}")),
    );
    all.sort();
    all
}

/// The constraints and indexes of a PostgreSQL database, as their definitions.
fn pg_schema(url: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Definition {
        #[diesel(sql_type = diesel::sql_types::Text)]
        definition: String,
    }
    let mut found: Vec<String> = diesel::sql_query(
        "SELECT conname || ' ' || pg_get_constraintdef(oid) AS definition FROM pg_constraint \
           WHERE connamespace = current_schema()::regnamespace \
         UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()",
    )
    .load::<Definition>(&mut open(url))
    .unwrap()
    .into_iter()
    .map(|d| d.definition)
    .collect();
    found.sort();
    assert!(found.iter().any(|d| d.contains("FOREIGN KEY")), "{found:?}");
    found
}

/// A POST with an `Idempotency-Key`; returns the status and body.
fn keyed_post(server: &Server, token: &str, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = server
        .agent
        .post(&format!("{}{path}", server.base))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Idempotency-Key", key)
        .send_json(body)
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().read_json::<Value>().unwrap();
    (status, body)
}

/// Migrates and seeds `source`, then through the API gives it every kind of row:
/// a second admin and a member (names beyond ASCII), a token with an expiry that
/// has been used, published, draft and scheduled posts, a create under an
/// idempotency key, and a deleted newest post, so that the id counter is past
/// the largest id. Returns that deleted id.
fn populate(s: &Sandbox, source: &str) -> i64 {
    succeed(web(s, source, &["migrate"]));
    let mut seed = s.command("seed", &[]);
    seed.env("DATABASE_URL", source);
    succeed(seed);
    let server = s.serve(&[("DATABASE_URL", source)]);
    let admin = Some(ADMIN_TOKEN);
    let created = |path: &str, token: Option<&str>, body: Value| {
        let reply = server.call("POST", path, token, Some(&body));
        assert_eq!(reply.status, 201, "{path}: {:?}", reply.body);
        reply.body
    };
    let ada = created(
        "/users",
        admin,
        json!({"email": "Ada@Example.com", "name": "Ada", "role": "admin"}),
    );
    let bob = created(
        "/users",
        admin,
        json!({"email": "bob@example.com", "name": "Bøb Ünïcode ✓"}),
    );
    let bob_id = bob["id"].as_str().unwrap();
    let token = created(
        &format!("/users/{bob_id}/tokens"),
        admin,
        json!({"expiresAt": "2031-02-03T04:05:06Z"}),
    );
    let bob_token = token["token"].as_str().unwrap();
    assert_eq!(server.call("GET", "/me", Some(bob_token), None).status, 200);
    created(
        "/posts",
        admin,
        json!({"title": "Published", "content": "tabs\tand\nlines ✓ 🚀",
               "authorId": ada["id"], "publishedAt": "2026-01-01T00:00:00Z"}),
    );
    created(
        "/posts",
        Some(bob_token),
        json!({"title": "Draft", "content": ""}),
    );
    created(
        "/posts",
        admin,
        json!({"title": "Scheduled", "content": "later", "publishedAt": "2099-01-01T00:00:00Z"}),
    );
    let (status, body) = keyed_post(
        &server,
        bob_token,
        "retry-me-1",
        "/posts",
        &json!({"title": "Keyed", "content": "once"}),
    );
    assert_eq!(status, 201, "{body:?}");
    let newest = created("/posts", admin, json!({"title": "Gone", "content": "x"}))["id"]
        .as_i64()
        .unwrap();
    let deleted = server.call("DELETE", &format!("/posts/{newest}"), admin, None);
    assert_eq!(deleted.status, 204);
    newest
}

/// What the API answers an admin: users, posts, and each user's tokens.
fn views(server: &Server) -> Value {
    let admin = Some(ADMIN_TOKEN);
    let users = server.call("GET", "/users?limit=100", admin, None).body;
    let mut tokens = Vec::new();
    for user in users["items"].as_array().unwrap() {
        let id = user["id"].as_str().unwrap();
        tokens.push(
            server
                .call("GET", &format!("/users/{id}/tokens?limit=100"), admin, None)
                .body,
        );
    }
    let posts = server.call("GET", "/posts?limit=100", admin, None).body;
    json!({"users": users, "posts": posts, "tokens": tokens})
}

/// The whole path in one direction: every row arrives as stored, the table
/// printed says so, the target serves the same API, and its next post takes a
/// fresh id (past the deleted newest one).
fn moves_every_row(source: &str, target: &str) {
    let s = Sandbox::new();
    let deleted = populate(&s, source);
    let moved = succeed(move_cmd(&s, source, target, &[]));
    let said = stdout(&moved);
    for table in ["users", "posts", "tokens", "idempotency_keys"] {
        let line = said
            .lines()
            .find(|l| l.starts_with(&format!("{table} ")))
            .unwrap_or_else(|| panic!("no line for {table}: {said}"));
        assert!(line.ends_with(" ok"), "{line}");
    }
    assert!(said.contains("verified"), "{said}");
    assert!(!said.contains(":app@"), "never the password: {said}");
    let copied = rows(target);
    assert_eq!(rows(source), copied);
    if target.starts_with("postgres") {
        // Foreign keys and indexes set aside for the load are all back.
        let fresh = PgDatabase::new().unwrap();
        succeed(web(&s, &fresh.url, &["migrate"]));
        assert_eq!(pg_schema(target), pg_schema(&fresh.url));
    }
    assert!(copied.iter().any(|r| r.starts_with("idempotency_keys")));

    let source_server = s.serve(&[("DATABASE_URL", source)]);
    let target_server = s.serve(&[("DATABASE_URL", target)]);
    assert_eq!(views(&source_server), views(&target_server));
    let health = target_server.call("GET", "/health", None, None);
    let backend = if target.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(health.body["database"], backend);
    let next = target_server.call(
        "POST",
        "/posts",
        Some(ADMIN_TOKEN),
        Some(&json!({"title": "After the move", "content": "x"})),
    );
    assert_eq!(next.status, 201, "{:?}", next.body);
    assert_eq!(next.body["id"], deleted + 1, "a fresh id, never a used one");
}

#[test]
fn sqlite_to_sqlite() {
    let t = Sandbox::new();
    let target = t.db_path().display().to_string();
    let s = Sandbox::new();
    moves_every_row(&s.db_path().display().to_string(), &target);
}

#[test]
fn sqlite_to_postgres() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let s = Sandbox::new();
    moves_every_row(&s.db_path().display().to_string(), &pg.url);
}

#[test]
fn postgres_to_sqlite() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let t = Sandbox::new();
    moves_every_row(&pg.url, &t.db_path().display().to_string());
}

#[test]
fn postgres_to_postgres() {
    let (Some(a), Some(b)) = (PgDatabase::new(), PgDatabase::new()) else {
        return;
    };
    moves_every_row(&a.url, &b.url);
}

/// A target at another schema version is refused before anything is copied; a
/// target holding rows is refused unless `--replace`, which makes it the
/// source's copy again.
fn refuses_then_replaces(target: &str) {
    let s = Sandbox::new();
    let source = s.db_path().display().to_string();
    populate(&s, &source);

    succeed(web(&s, target, &["migrate"]));
    // On PostgreSQL, rollback wants to be told a pg_dump was taken.
    let rollback: &[&str] = if target.starts_with("postgres") {
        &["rollback", "--dumped"]
    } else {
        &["rollback"]
    };
    succeed(web(&s, target, rollback));
    let said = Sandbox::fail(move_cmd(&s, &source, target, &[]));
    let last = end_to_end::migrations().pop().unwrap();
    assert!(
        said.contains("another schema version") && said.contains(&last),
        "{said}"
    );
    let status = stdout(&succeed(web(&s, target, &["status"])));
    assert!(
        status.contains(&format!("pending  {last}")),
        "untouched: {status}"
    );
    let mut conn = open(target);
    let users: i64 = users::table.count().get_result(&mut conn).unwrap();
    assert_eq!(users, 0, "nothing copied");

    succeed(web(&s, target, &["migrate"]));
    succeed(move_cmd(&s, &source, target, &[]));
    let first = rows(target);
    let mut more = s.command("seed", &["--demo", "3", "7"]);
    more.env("DATABASE_URL", &source);
    succeed(more);

    let said = Sandbox::fail(move_cmd(&s, &source, target, &[]));
    assert!(
        said.contains("already holds rows") && said.contains("--replace"),
        "{said}"
    );
    assert_eq!(rows(target), first, "a refused move changes nothing");

    let replaced = succeed(move_cmd(&s, &source, target, &["--replace"]));
    assert!(stdout(&replaced).contains("replaced"), "{replaced:?}");
    assert_eq!(rows(target), rows(&source));
}

#[test]
fn a_sqlite_target_is_refused_at_another_version_or_with_rows_unless_replaced() {
    let t = Sandbox::new();
    refuses_then_replaces(&t.db_path().display().to_string());
}

#[test]
fn a_postgres_target_is_refused_at_another_version_or_with_rows_unless_replaced() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    refuses_then_replaces(&pg.url);
}

/// Killed half-way through the posts, the move leaves the target without a row;
/// run again, it completes.
fn interrupted(target: &str) {
    let s = Sandbox::new();
    let source = s.db_path().display().to_string();
    succeed(web(&s, &source, &["migrate"]));
    succeed(s.command("seed", &["--demo", "20", "20000"]));

    let mut child = move_cmd(&s, &source, target, &["--batch", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut progress = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("posts: ") {
        line.clear();
        assert!(
            progress.read_line(&mut line).unwrap() > 0,
            "the move ended before copying posts"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(rows(target), Vec::<String>::new(), "killed after {line}");

    succeed(move_cmd(&s, &source, target, &[]));
    assert_eq!(rows(target), rows(&source));
}

#[test]
fn an_interrupted_move_into_sqlite_leaves_no_row_and_runs_again() {
    let t = Sandbox::new();
    interrupted(&t.db_path().display().to_string());
}

#[test]
fn an_interrupted_move_into_postgres_leaves_no_row_and_runs_again() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    interrupted(&pg.url);
}

/// Posts created under idempotency keys while the move runs: each write stores
/// its post and its key in one transaction, so the copy (one snapshot) has both
/// or neither, and its checksums match.
fn writes_during_the_move(source: &str) {
    let s = Sandbox::new();
    let t = Sandbox::new();
    let target = t.db_path().display().to_string();
    succeed(web(&s, source, &["migrate"]));
    let mut seed = s.command("seed", &["--demo", "20", "20000"]);
    seed.env("DATABASE_URL", source);
    succeed(seed);
    let server = s.serve(&[("DATABASE_URL", source)]);

    let stop = AtomicBool::new(false);
    let acked = AtomicUsize::new(0);
    let (before, after) = std::thread::scope(|scope| {
        // One writer: concurrent keyed creates by one caller contend among
        // themselves on PostgreSQL, which is not what this test is about.
        let (server, stop, acked) = (&server, &stop, &acked);
        scope.spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = keyed_post(
                    server,
                    ADMIN_TOKEN,
                    &format!("live-{n}"),
                    "/posts",
                    &json!({"title": format!("live {n}"), "content": "x"}),
                );
                assert_eq!(status, 201, "{body:?}");
                acked.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        });
        end_to_end::wait_for(
            "a few writes",
            std::time::Duration::from_secs(20),
            || match acked.load(Ordering::Relaxed) {
                n if n >= 5 => Ok(n),
                n => Err(format!("{n} acknowledged")),
            },
        );
        let before = acked.load(Ordering::Relaxed);
        let moved = succeed(move_cmd(&s, source, &target, &[]));
        assert!(stdout(&moved).contains("verified"), "{moved:?}");
        let after = acked.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        (before, after)
    });
    assert!(after > before, "writes went on during the move");

    let mut conn = open(&target);
    let live: Vec<i64> = posts::table
        .filter(posts::title.like("live %"))
        .select(posts::id)
        .order(posts::id)
        .load(&mut conn)
        .unwrap();
    let answers: Vec<String> = idempotency_keys::table
        .filter(idempotency_keys::key.like("live-%"))
        .select(idempotency_keys::response)
        .load(&mut conn)
        .unwrap();
    let mut keyed: Vec<i64> = answers
        .iter()
        .map(|a| {
            serde_json::from_str::<Value>(a).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    keyed.sort_unstable();
    assert!(!live.is_empty());
    assert_eq!(
        live, keyed,
        "every copied post has its key, and every key its post"
    );
}

#[test]
fn writes_to_a_live_sqlite_source_are_copied_whole_or_not_at_all() {
    let s = Sandbox::new();
    writes_during_the_move(&s.db_path().display().to_string());
}

#[test]
fn writes_to_a_live_postgres_source_are_copied_whole_or_not_at_all() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    writes_during_the_move(&pg.url);
}

/// `make move to=...` hands the URL to the binary through the environment: a
/// name built to run a command runs none and is taken as the file name it is.
#[test]
fn make_move_runs_nothing_from_its_target() {
    let s = Sandbox::new();
    let source = s.db_path().display().to_string();
    succeed(web(&s, &source, &["migrate"]));
    succeed(s.command("seed", &[]));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let debug = end_to_end::bin("web").parent().unwrap().to_owned();
    let target = "copy \"$(touch ran-subst)`touch ran-backtick`; touch ran-semicolon\".db";
    let out = Command::new("make")
        .current_dir(s.dir.path())
        .env("DATABASE_URL", &source)
        .args(["-s", "-f"])
        .arg(root.join("Makefile"))
        .arg("move")
        .arg(format!("to={target}"))
        // The binaries are built already: no cargo, this build's folder.
        .args(["CARGO=true", "PROFILE=debug"])
        .arg(format!(
            "CARGO_TARGET_DIR={}",
            debug.parent().unwrap().display()
        ))
        .output();
    let out = out.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("verified"), "{out:?}");
    for ran in ["ran-subst", "ran-backtick", "ran-semicolon"] {
        assert!(!s.dir.path().join(ran).exists(), "{ran} ran");
    }
    assert_eq!(
        rows(&s.dir.path().join(target).display().to_string()),
        rows(&source)
    );
}

/// A SQLite target that a server is serving is not filled under it.
#[test]
fn a_served_sqlite_target_is_refused() {
    let s = Sandbox::new();
    let source = s.database_url();
    populate(&s, &source);
    let t = Sandbox::new();
    t.prepare();
    let _server = t.serve(&[]);
    let said = Sandbox::fail(move_cmd(&s, &source, &t.database_url(), &[]));
    assert!(said.contains("in use by a running server"), "{said}");
}
