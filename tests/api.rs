//! The real `web` binary over loopback: create, list, update, delete, stop, start
//! again on the same file, and find the data.

use end_to_end::{ADMIN_TOKEN, Sandbox};
use serde_json::json;

#[test]
fn crud_survives_a_restart() {
    let s = Sandbox::new();
    s.prepare();
    let server = s.serve(&[]);
    let admin = Some(ADMIN_TOKEN);

    let health = server.call("GET", "/health", None, None);
    assert_eq!(health.status, 200);
    assert!(
        health.request_id.is_some(),
        "x-request-id on every response"
    );

    let ada = server.call(
        "POST",
        "/users",
        admin,
        Some(&json!({"email": " Ada@Example.com ", "name": "Ada"})),
    );
    assert_eq!(ada.status, 201, "{:?}", ada.body);
    assert_eq!(ada.body["email"], "ada@example.com");
    let ada_id = ada.body["id"].as_str().unwrap().to_owned();
    let token = server.call("POST", &format!("/users/{ada_id}/tokens"), admin, None);
    assert_eq!(token.status, 201, "{:?}", token.body);
    let ada_token = token.body["token"].as_str().unwrap().to_owned();

    let created = server.call(
        "POST",
        "/posts",
        Some(&ada_token),
        Some(&json!({"title": "Hello", "content": "first", "publishedAt": "2026-01-01T00:00:00Z"})),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let post_id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["authorId"], ada_id.as_str());
    let draft = server.call(
        "POST",
        "/posts",
        Some(&ada_token),
        Some(&json!({"title": "Draft", "content": "wip"})),
    );
    assert_eq!(draft.status, 201);
    let draft_id = draft.body["id"].as_i64().unwrap();

    let public = server.call("GET", "/posts", None, None);
    assert_eq!(public.status, 200);
    let ids: Vec<i64> = public.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [post_id], "anonymous callers see published posts only");

    let patched = server.call(
        "PATCH",
        &format!("/posts/{post_id}"),
        Some(&ada_token),
        Some(&json!({"title": "Hello again"})),
    );
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["title"], "Hello again");
    let deleted = server.call(
        "DELETE",
        &format!("/posts/{draft_id}"),
        Some(&ada_token),
        None,
    );
    assert_eq!(deleted.status, 204);

    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");

    let server = s.serve(&[]);
    let found = server.call("GET", &format!("/posts/{post_id}"), None, None);
    assert_eq!(found.status, 200);
    assert_eq!(found.body["title"], "Hello again");
    assert_eq!(
        server
            .call("GET", &format!("/posts/{draft_id}"), admin, None)
            .status,
        404
    );
    let me = server.call("GET", "/me", Some(&ada_token), None);
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], ada_id.as_str());
}

#[test]
fn refuses_to_serve_with_a_pending_migration() {
    let s = Sandbox::new();
    s.run("web", &["migrate"]);
    s.run("web", &["rollback"]);
    let err = s.serve_refused(&[]);
    assert!(
        err.contains("pending") && err.contains("make migrate"),
        "{err}"
    );
}

#[test]
fn refuses_to_serve_with_a_bad_thread_count_and_names_the_key() {
    let s = Sandbox::new();
    s.prepare();
    for (key, value) in [
        ("WEB_WORKERS", "abc"),
        ("WEB_WORKERS", "0"),
        ("DB_READ_THREADS", "-1"),
    ] {
        let err = s.serve_refused(&[(key, value)]);
        assert!(
            err.contains(key) && err.contains(value),
            "{key}={value}: {err}"
        );
    }
}

#[test]
fn a_second_server_on_the_same_file_is_refused() {
    let s = Sandbox::new();
    s.prepare();
    let _first = s.serve(&[]);
    let err = s.serve_refused(&[]);
    assert!(err.contains("in use by a running server"), "{err}");
}
