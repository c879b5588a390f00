//! Operations: request ids, health, readiness, and the 503 / 500 paths.

use std::cell::RefCell;
use std::io;
use std::sync::Once;

use actix_web::test::TestRequest;
use diesel::RunQueryDsl;

use crate::common::{self, app, bearer, send};

thread_local! {
    static CAPTURED: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// What the app logs on this thread while this lives, as the server's plain-text
/// lines. The app under test runs on the test's own thread. The subscriber is
/// process-wide because tracing caches per call site whether anyone listens: a
/// thread-local one would miss lines whose call site another test's thread
/// reached first.
struct Logs;

impl Logs {
    fn capture() -> Logs {
        static INSTALLED: Once = Once::new();
        INSTALLED.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(|| ThreadSink)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        CAPTURED.with_borrow_mut(|captured| *captured = Some(Vec::new()));
        Logs
    }

    /// The lines logged under request id `id`.
    fn for_request(&self, id: &str) -> Vec<String> {
        let field = format!("request_id={id}");
        CAPTURED.with_borrow(|captured| {
            String::from_utf8_lossy(captured.as_deref().unwrap_or_default())
                .lines()
                .filter(|line| line.split_whitespace().any(|word| word == field))
                .map(str::to_owned)
                .collect()
        })
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        CAPTURED.with_borrow_mut(|captured| *captured = None);
    }
}

/// Appends to this thread's capture, if one is running; other threads' lines go
/// nowhere.
struct ThreadSink;

impl io::Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURED.with_borrow_mut(|captured| {
            if let Some(captured) = captured {
                captured.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn request_ids_are_echoed_when_sane_and_made_up_otherwise() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    for sane in ["abc-123", "A", &"x".repeat(64)] {
        let reply = send!(
            app,
            TestRequest::get()
                .uri("/health")
                .insert_header(("x-request-id", sane))
        );
        assert_eq!(reply.header("x-request-id"), Some(sane));
    }
    for insane in [
        "",
        "has space",
        "semi;colon",
        "under_score",
        &"x".repeat(65),
    ] {
        let reply = send!(
            app,
            TestRequest::get()
                .uri("/nope")
                .insert_header(("x-request-id", insane))
        );
        let id = reply.header("x-request-id").unwrap();
        assert_ne!(id, insane);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    let a = send!(app, TestRequest::get().uri("/health"));
    let b = send!(app, TestRequest::get().uri("/health"));
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

#[actix_web::test]
async fn health_and_ready() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    let backend = t.db.backend();
    assert_eq!(
        backend,
        if t.db.is_postgres() {
            "postgresql"
        } else {
            "sqlite"
        }
    );
    let health = send!(app, TestRequest::get().uri("/health"));
    assert_eq!(
        health.json(),
        serde_json::json!({"status": "ok", "database": backend, "lastBackup": null})
    );
    assert_eq!(health.header("content-type"), Some("application/json"));
    let ready = send!(app, TestRequest::get().uri("/ready"));
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json(),
        serde_json::json!({"status": "ready", "database": backend})
    );

    // A pending migration makes the service not ready, and says why.
    t.db.migrator(db::MIGRATIONS).revert_last().unwrap();
    let ready = send!(app, TestRequest::get().uri("/ready"));
    assert_eq!(ready.status, 503);
    assert!(
        ready.json()["detail"].as_str().unwrap().contains("pending"),
        "{}",
        ready.text()
    );
    t.db.migrator(db::MIGRATIONS).run_pending().unwrap();
    assert_eq!(send!(app, TestRequest::get().uri("/ready")).status, 200);

    // After a verified backup, /health reports its age (SQLite: on PostgreSQL
    // backups are pg_dump's, and `Db::backup` refuses).
    if t.db.is_postgres() {
        let refused = t.db.backup(&|_, _, _| {}).unwrap_err().to_string();
        assert!(refused.contains("pg_dump"), "{refused}");
        return;
    }
    let backup = t.db.backup(&|_, _, _| {}).unwrap();
    let health = send!(app, TestRequest::get().uri("/health")).json();
    let last = &health["lastBackup"];
    assert_eq!(last["file"], backup.manifest.file.as_str());
    let age = last["ageSeconds"].as_i64().unwrap();
    assert!((0..60).contains(&age), "{health}");
}

#[actix_web::test]
async fn a_busy_database_is_503_with_retry_after() {
    let logs = Logs::capture();
    let t = common::database(|mut c| {
        c.pool_timeout = std::time::Duration::from_millis(200);
        // One writer on PostgreSQL too, so that holding it holds every write.
        c.writers = 1;
        c
    });
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let held = t.db.writer_conn().unwrap();
    let reply = send!(
        app,
        TestRequest::post()
            .uri("/posts")
            .insert_header(bearer(&alice.token))
            .insert_header(("x-request-id", "busy-write-1"))
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"title":"t","content":"c"}"#)
    );
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("x-request-id"), Some("busy-write-1"));
    let lines = logs.for_request("busy-write-1");
    assert!(
        lines.len() == 1 && lines[0].contains("status=503") && lines[0].contains("busy"),
        "{lines:?}"
    );
    // Readiness and reads do not need the writer, so they do not queue behind writes.
    assert_eq!(send!(app, TestRequest::get().uri("/ready")).status, 200);
    assert_eq!(send!(app, TestRequest::get().uri("/posts")).status, 200);
    drop(held);
    assert_eq!(send!(app, TestRequest::get().uri("/ready")).status, 200);
}

#[actix_web::test]
async fn unexpected_database_errors_are_a_bare_500_logged_under_the_request_id() {
    let logs = Logs::capture();
    let t = common::database(|c| c);
    let app = app!(t.db);
    let mut conn = t.db.writer_conn().unwrap();
    diesel::sql_query("DROP TABLE posts")
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    for sent in [Some("report-me-42"), None] {
        let mut request = TestRequest::get().uri("/posts");
        if let Some(sent) = sent {
            request = request.insert_header(("x-request-id", sent));
        }
        let reply = send!(app, request);
        assert_eq!(reply.status, 500);
        let text = reply.text();
        assert!(!text.contains("posts") && !text.contains("table"), "{text}");
        assert!(text.contains("quote the x-request-id"), "{text}");
        let id = reply.header("x-request-id").unwrap();
        match sent {
            Some(sent) => assert_eq!(id, sent),
            None => assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}"),
        }
        // The id the caller is told to quote finds the one log line that holds
        // what the body hides.
        let lines = logs.for_request(id);
        assert!(
            lines.len() == 1
                && lines[0].contains("status=500")
                && lines[0].contains("posts")
                // SQLite's words, or PostgreSQL's.
                && (lines[0].contains("no such table") || lines[0].contains("does not exist")),
            "{id}: {lines:?}"
        );
    }
}
