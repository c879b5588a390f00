//! The same binaries on PostgreSQL: `DATABASE_URL=postgres://...` migrates, seeds
//! and serves the API with the contract's answers; a URL that cannot be connected
//! to is one line and never a SQLite file; backup and restore name pg_dump and
//! pg_restore; a server that goes away is 503 until it is back; two servers on one
//! database serve the same rows.
//!
//! Needs `TEST_DATABASE_URL` (`scripts/test-postgres.sh` starts a server and sets
//! it); without it these tests return early.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use end_to_end::{ADMIN_TOKEN, PgDatabase, Sandbox, wait_for};
use serde_json::json;

#[test]
fn the_binaries_serve_the_api_on_postgres() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let s = Sandbox::new();
    let env = [("DATABASE_URL", pg.url.as_str())];
    let migrated = s.command("web", &["migrate"]).envs(env).output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let printed = String::from_utf8_lossy(&migrated.stdout);
    for name in end_to_end::migrations() {
        assert!(printed.contains(&name), "{name} not applied: {printed}");
    }
    assert!(
        !printed.contains(":app@"),
        "the password is never printed: {printed}"
    );
    let seeded = s.command("seed", &[]).envs(env).output().unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    assert!(
        !s.db_path().exists(),
        "no SQLite file beside a PostgreSQL URL"
    );

    let server = s.serve(&env);
    let health = server.call("GET", "/health", None, None);
    assert_eq!(health.body["database"], "postgresql", "{:?}", health.body);
    let ready = server.call("GET", "/ready", None, None);
    assert_eq!(ready.body["database"], "postgresql", "{:?}", ready.body);

    let admin_token = Some(ADMIN_TOKEN);
    let ada = server.call(
        "POST",
        "/users",
        admin_token,
        Some(&json!({"email": "Ada@Example.com", "name": "Ada"})),
    );
    assert_eq!(ada.status, 201, "{:?}", ada.body);
    let ada_id = ada.body["id"].as_str().unwrap().to_owned();
    let again = server.call(
        "POST",
        "/users",
        admin_token,
        Some(&json!({"email": "ada@example.com", "name": "Ada again"})),
    );
    assert_eq!(again.status, 409, "duplicate email: {:?}", again.body);

    let mut ids = Vec::new();
    for n in 0..3 {
        let post = server.call(
            "POST",
            "/posts",
            admin_token,
            Some(&json!({"title": format!("Post {n}"), "content": "x",
                         "authorId": ada_id, "publishedAt": "2026-01-01T00:00:00Z"})),
        );
        assert_eq!(post.status, 201, "{:?}", post.body);
        ids.push(post.body["id"].as_i64().unwrap());
    }
    let orphan = server.call(
        "POST",
        "/posts",
        admin_token,
        Some(&json!({"title": "t", "content": "c", "authorId": "nobody"})),
    );
    assert_eq!(orphan.status, 422, "{:?}", orphan.body);

    // Newest id first, two to a page, the cursor leading to the rest.
    let first = server.call("GET", "/posts?limit=2", None, None);
    let page: Vec<i64> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, [ids[2], ids[1]]);
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let rest = server.call(
        "GET",
        &format!("/posts?limit=2&cursor={cursor}"),
        None,
        None,
    );
    assert_eq!(rest.body["items"][0]["id"], ids[0]);
    assert!(rest.body["nextCursor"].is_null());

    let refused = server.call("DELETE", &format!("/users/{ada_id}"), admin_token, None);
    assert_eq!(refused.status, 409, "a user with posts: {:?}", refused.body);
    drop(server);

    // Backups are the server's own tools' job: both commands say which, and do nothing.
    for (args, tool) in [
        (&["backup"][..], "pg_dump"),
        (&["restore", "some.db"][..], "pg_restore"),
    ] {
        let mut cmd = s.command("web", args);
        cmd.envs(env);
        let said = Sandbox::fail(cmd);
        assert!(said.contains(tool), "{args:?}: {said}");
        assert!(!said.contains(":app@"), "{said}");
    }
    assert!(!s.backup_dir().exists(), "nothing half-done");

    // Rollback takes no backup on PostgreSQL: it runs once told a pg_dump was taken.
    let mut cmd = s.command("web", &["rollback", "--dumped"]);
    cmd.envs(env);
    let rolled = cmd.output().unwrap();
    assert!(rolled.status.success(), "{rolled:?}");
    assert!(String::from_utf8_lossy(&rolled.stdout).contains("reverted"));
}

#[test]
fn a_postgres_url_that_cannot_connect_is_one_line_and_never_a_sqlite_file() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let s = Sandbox::new();
    let wrong_password = pg.url.replacen("app:app@", "app:s3cret-wrong@", 1);
    let (server, _) = pg.url.rsplit_once('/').unwrap();
    let missing = format!("{server}/no_such_database");
    for (url, says) in [
        (wrong_password.as_str(), "password authentication failed"),
        (missing.as_str(), "does not exist"),
        (
            "postgresql://app:s3cret-wrong@no-such-host.invalid:5432/app",
            "no-such-host.invalid",
        ),
    ] {
        let mut cmd = s.command("web", &["migrate"]);
        cmd.env("DATABASE_URL", url);
        let said = Sandbox::fail(cmd);
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {said}");
        assert!(said.contains(says), "{said}");
        assert!(!said.contains("s3cret"), "{said}");
        assert!(said.contains(":***@"), "names the URL: {said}");
    }
    let files: Vec<_> = std::fs::read_dir(s.dir.path()).unwrap().collect();
    assert!(files.is_empty(), "created {files:?}");
}

#[test]
fn a_server_that_goes_away_is_503_and_comes_back_by_itself() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let s = Sandbox::new();
    let env = [
        ("DATABASE_URL", pg.url.as_str()),
        ("DB_POOL_TIMEOUT_MS", "300"),
    ];
    let migrated = s.command("web", &["migrate"]).envs(env).output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let seeded = s.command("seed", &[]).envs(env).output().unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    let server = s.serve(&env);
    assert_eq!(server.call("GET", "/posts", None, None).status, 200);

    // The database refuses connections and drops the ones it had, as a stopped
    // server does (other tests keep using the cluster, so it stays up).
    pg.admin()
        .batch_execute(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
            pg.name
        ))
        .unwrap();
    for path in ["/posts", "/users"] {
        let reply = server.call("GET", path, Some(ADMIN_TOKEN), None);
        assert_eq!(reply.status, 503, "{path}: {:?}", reply.body);
    }
    let write = server.call(
        "POST",
        "/users",
        Some(ADMIN_TOKEN),
        Some(&json!({"email": "gone@example.com", "name": "Gone"})),
    );
    assert_eq!(write.status, 503, "{:?}", write.body);

    pg.admin()
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            pg.name
        ))
        .unwrap();
    wait_for(
        "the API to answer again",
        Duration::from_secs(10),
        || match server.call("GET", "/posts", None, None).status {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        },
    );
    let created = server.call(
        "POST",
        "/users",
        Some(ADMIN_TOKEN),
        Some(&json!({"email": "back@example.com", "name": "Back"})),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
}

/// Many servers, one database: two `web serve` processes on the same PostgreSQL
/// database take concurrent creates and updates from clients that switch between
/// them. Every acknowledged write is visible from both, ids are unique, and no
/// request is a 5xx.
#[test]
fn two_servers_on_one_database_serve_the_same_rows() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    // Each server in a sandbox of its own: only the database is shared.
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let env = [("DATABASE_URL", pg.url.as_str())];
    let migrated = a.command("web", &["migrate"]).envs(env).output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let seeded = a.command("seed", &[]).envs(env).output().unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    let servers = [a.serve(&env), b.serve(&env)];

    let clients = 8;
    let rounds = 15;
    let acked: Vec<(i64, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let servers = &servers;
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..rounds {
                        // Create on one server, change it through the other.
                        let (first, second) = if (client + round) % 2 == 0 {
                            (&servers[0], &servers[1])
                        } else {
                            (&servers[1], &servers[0])
                        };
                        let created = first.call(
                            "POST",
                            "/posts",
                            Some(ADMIN_TOKEN),
                            Some(&json!({"title": format!("c{client} r{round}"),
                                         "content": "x", "publishedAt": "2026-01-01T00:00:00Z"})),
                        );
                        assert!(created.status < 500, "{:?}", created.body);
                        assert_eq!(created.status, 201, "{:?}", created.body);
                        let id = created.body["id"].as_i64().unwrap();
                        let title = format!("c{client} r{round} changed");
                        let changed = second.call(
                            "PATCH",
                            &format!("/posts/{id}"),
                            Some(ADMIN_TOKEN),
                            Some(&json!({ "title": title })),
                        );
                        assert!(changed.status < 500, "{:?}", changed.body);
                        assert_eq!(changed.status, 200, "{:?}", changed.body);
                        mine.push((id, title));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    let ids: std::collections::HashSet<i64> = acked.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), clients * rounds, "ids are unique");
    for server in &servers {
        for (id, title) in &acked {
            let read = server.call("GET", &format!("/posts/{id}"), None, None);
            assert_eq!(read.status, 200, "post {id}: {:?}", read.body);
            assert_eq!(read.body["title"], title.as_str(), "post {id}");
        }
        let mut listed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/posts?limit=100&cursor={c}"),
                None => "/posts?limit=100".to_owned(),
            };
            let page = server.call("GET", &path, None, None);
            assert_eq!(page.status, 200, "{:?}", page.body);
            listed += page.body["items"].as_array().unwrap().len();
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(listed, clients * rounds, "both servers list every post");
    }
}

/// The schema commands on PostgreSQL: two `migrate` runs started at once apply
/// each migration once (an advisory lock, taken before reading what is pending),
/// `--dry-run` rolls back, `rollback` wants a pg_dump first, `reset` names the
/// tools to use instead.
#[test]
fn schema_commands_on_postgres() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let s = Sandbox::new();
    let env = [("DATABASE_URL", pg.url.as_str())];
    let children: Vec<_> = (0..2)
        .map(|_| {
            s.command("web", &["migrate"])
                .envs(env)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied: Vec<String> = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        applied.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once(": applied ").map(|(_, n)| n.to_owned())),
        );
    }
    applied.sort();
    let all = end_to_end::migrations();
    assert_eq!(applied, all);
    let newest = all.last().unwrap();

    let mut cmd = s.command("web", &["rollback"]);
    cmd.envs(env);
    let err = Sandbox::fail(cmd);
    assert!(err.contains("pg_dump") && err.contains("dumped=1"), "{err}");
    let out = s
        .command("web", &["rollback", "--dumped"])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("reverted {newest}")));

    let out = s
        .command("web", &["migrate", "--dry-run"])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(newest.as_str()) && text.contains("rolled back"),
        "{text}"
    );
    let status = s.command("web", &["status"]).envs(env).output().unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&format!("pending  {newest}")),
        "the rehearsal applied nothing: {status:?}"
    );

    let mut cmd = s.command("web", &["reset"]);
    cmd.envs(env);
    let err = Sandbox::fail(cmd);
    assert!(err.contains("pg_dump"), "{err}");
}

/// What a database holds that a restore must bring back: the number of posts and
/// the indexes on them.
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
fn posts_and_indexes(conn: &mut db::AnyConnection) -> (i64, Vec<String>) {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = diesel::sql_query("SELECT count(*) AS n FROM posts")
        .get_result::<Count>(conn)
        .unwrap()
        .n;
    let indexes = diesel::sql_query(
        "SELECT indexname::text AS name FROM pg_indexes WHERE tablename = 'posts' ORDER BY 1",
    )
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|row| row.name)
    .collect();
    (count, indexes)
}

#[test]
fn a_pg_dump_restores_whole_with_its_search_index() {
    use diesel::RunQueryDsl;
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let s = Sandbox::new();
    let env = [("DATABASE_URL", pg.url.as_str())];
    for args in [&["web", "migrate"][..], &["seed", "--demo", "5", "40"]] {
        let out = s.command(args[0], &args[1..]).envs(env).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let mut conn = db::AnyConnection::open(&db::Database::Postgres(pg.url.clone())).unwrap();
    let before = posts_and_indexes(&mut conn);
    assert!(before.0 > 0, "the demo has posts");
    assert!(
        before.1.contains(&"posts_search_idx".to_owned()),
        "{:?}",
        before.1
    );

    // The commands `web backup` and `web restore` name on PostgreSQL.
    let dump = s.dir.path().join("app.dump");
    let dumped = std::process::Command::new("pg_dump")
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(&pg.url)
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{dumped:?}");
    conn.batch_execute("DELETE FROM posts WHERE id IN (SELECT id FROM posts LIMIT 3)")
        .unwrap();
    drop(conn);
    let restored = std::process::Command::new("pg_restore")
        .args(["--clean", "-d", &pg.url])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let mut conn = db::AnyConnection::open(&db::Database::Postgres(pg.url.clone())).unwrap();
    assert_eq!(posts_and_indexes(&mut conn), before);

    // Autovacuum analyzes with an empty search_path, as pg_dump restores.
    conn.batch_execute("SET search_path = ''; ANALYZE public.posts; RESET search_path")
        .unwrap();

    // And the restored database serves searches: a word of a published title.
    #[derive(diesel::QueryableByName)]
    struct Title {
        #[diesel(sql_type = diesel::sql_types::Text)]
        title: String,
    }
    let title = diesel::sql_query(
        "SELECT title FROM posts WHERE published_at IS NOT NULL ORDER BY id LIMIT 1",
    )
    .get_result::<Title>(&mut conn)
    .unwrap()
    .title;
    let word: String = title
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.len() > 2)
        .unwrap()
        .to_owned();
    let server = s.serve(&env);
    let found = server.call("GET", &format!("/posts?q={word}"), None, None);
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert!(
        !found.body["items"].as_array().unwrap().is_empty(),
        "{:?}",
        found.body
    );
}

#[test]
fn a_test_database_is_dropped_after_its_test() {
    let Some(pg) = PgDatabase::new() else {
        return;
    };
    let database = db::Database::Postgres(pg.url.clone());
    drop(db::AnyConnection::open(&database).expect("the test's database is there"));
    drop(pg);
    let gone = db::AnyConnection::open(&database).expect_err("the database is dropped");
    assert!(gone.to_string().contains("does not exist"), "{gone}");
}
