//! `Idempotency-Key` on the create operations: a retry gets the first answer again
//! and creates nothing; another body under the same key is 422; a bad key is 400;
//! keys are per caller; a token's secret is never shown twice.

use actix_web::test::TestRequest;
use diesel::prelude::*;
use serde_json::json;

use crate::common::{self, Member, app, bearer, send};

fn keyed(path: &str, who: &Member, key: &str, body: &str) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(bearer(&who.token))
        .insert_header(("content-type", "application/json"))
        .insert_header(("idempotency-key", key))
        .set_payload(body.to_owned())
}

fn count(db: &db::Db, table: &str) -> i64 {
    use domain::schema::{idempotency_keys, posts, tokens, users};
    db.read(|conn| -> domain::Result<i64> {
        Ok(match table {
            "posts" => posts::table.count().get_result(conn)?,
            "users" => users::table.count().get_result(conn)?,
            "tokens" => tokens::table.count().get_result(conn)?,
            "idempotency_keys" => idempotency_keys::table.count().get_result(conn)?,
            other => panic!("no table {other}"),
        })
    })
    .unwrap()
}

#[actix_web::test]
async fn a_retry_gets_the_first_status_and_body_and_creates_nothing() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let app = app!(t.db);
    for (path, body, table) in [
        (
            "/posts",
            r#"{"title":"Once","content":"only once"}"#,
            "posts",
        ),
        (
            "/users",
            r#"{"email":"ada@example.com","name":"Ada"}"#,
            "users",
        ),
    ] {
        let key = format!("retry-{table}");
        let before = count(&t.db, table);
        let first = send!(app, keyed(path, &admin, &key, body));
        assert_eq!(first.status, 201, "{path}: {}", first.text());
        for _ in 0..2 {
            let again = send!(app, keyed(path, &admin, &key, body));
            assert_eq!(again.status, first.status, "{path}: {}", again.text());
            assert_eq!(again.body, first.body, "{path}");
            assert_eq!(again.header("location"), first.header("location"));
            assert_eq!(again.header("content-type"), Some("application/json"));
        }
        assert_eq!(count(&t.db, table), before + 1, "{path}: one row");
        let id = &first.json()["id"];
        let location = first.header("location").unwrap();
        assert_eq!(
            location.rsplit('/').next().unwrap(),
            id.as_str().map_or_else(|| id.to_string(), str::to_owned)
        );
    }
    assert_eq!(count(&t.db, "idempotency_keys"), 2);
}

/// With one writer, a second request with the same key waits for the first and
/// then finds its answer: never a second row, never a 409 for a post.
#[actix_web::test]
async fn requests_with_the_same_key_at_once_create_one_row() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = std::rc::Rc::new(app!(t.db));
    let body = r#"{"title":"Twice at once","content":"c"}"#;
    let in_flight: Vec<_> = (0..8)
        .map(|_| {
            let req = keyed("/posts", &alice, "at-once", body).to_request();
            let app = app.clone();
            actix_web::rt::spawn(async move {
                common::check(actix_web::test::call_service(&*app, req).await).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for reply in in_flight {
        replies.push(reply.await.unwrap());
    }
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(reply.body, replies[0].body);
    }
    assert_eq!(count(&t.db, "posts"), 1);
}

#[actix_web::test]
async fn the_same_key_with_another_request_is_422_and_creates_nothing() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let app = app!(t.db);
    let first = send!(
        app,
        keyed("/posts", &admin, "k", r#"{"title":"a","content":"c"}"#)
    );
    assert_eq!(first.status, 201);
    let token_path = format!("/users/{}/tokens", admin.id);
    for (path, body) in [
        ("/posts", r#"{"title":"b","content":"c"}"#),
        // The same JSON written differently is another body.
        ("/posts", r#"{"title":"a", "content":"c"}"#),
        ("/users", r#"{"email":"bob@example.com","name":"Bob"}"#),
        (token_path.as_str(), "{}"),
    ] {
        let reply = send!(app, keyed(path, &admin, "k", body));
        assert_eq!(reply.status, 422, "{path} {body}: {}", reply.text());
        assert_eq!(reply.json()["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(count(&t.db, "posts"), 1);
    assert_eq!(count(&t.db, "users"), 1);
    assert_eq!(count(&t.db, "tokens"), 1);
}

#[actix_web::test]
async fn a_failed_request_stores_nothing_and_its_key_can_be_used_again() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let invalid = send!(
        app,
        keyed("/posts", &alice, "fix-me", r#"{"title":" ","content":"c"}"#)
    );
    assert_eq!(invalid.status, 422);
    assert_eq!(invalid.json()["errors"][0]["field"], "title");
    let fixed = send!(
        app,
        keyed("/posts", &alice, "fix-me", r#"{"title":"t","content":"c"}"#)
    );
    assert_eq!(fixed.status, 201, "{}", fixed.text());
    assert_eq!(count(&t.db, "posts"), 1);
}

#[actix_web::test]
async fn a_key_that_is_not_1_to_255_visible_ascii_characters_is_400() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let body = r#"{"title":"t","content":"c"}"#;
    let long = "k".repeat(256);
    for bad in [
        &b""[..],
        b"a b",
        b"tab\there",
        "caf\u{e9}".as_bytes(),
        long.as_bytes(),
    ] {
        let req = TestRequest::post()
            .uri("/posts")
            .insert_header(bearer(&alice.token))
            .insert_header(("content-type", "application/json"))
            .insert_header((
                "idempotency-key",
                actix_web::http::header::HeaderValue::from_bytes(bad).unwrap(),
            ))
            .set_payload(body);
        let reply = send!(app, req);
        assert_eq!(reply.status, 400, "{bad:?}: {}", reply.text());
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap()
                .starts_with("Idempotency-Key: "),
            "{}",
            reply.text()
        );
    }
    let twice = keyed("/posts", &alice, "one", body).append_header(("idempotency-key", "two"));
    assert_eq!(send!(app, twice).status, 400);
    // A bad key is 400 even when the body is fine: nothing ran.
    assert_eq!(count(&t.db, "posts"), 0);
    let longest = "~".repeat(255);
    for good in [
        "!",
        longest.as_str(),
        "0192f0c4-5e7b-7a9e-9d7e-1f2a3b4c5d6e",
    ] {
        let reply = send!(app, keyed("/posts", &alice, good, body));
        assert_eq!(reply.status, 201, "{good:?}: {}", reply.text());
    }
    // Authentication still comes first.
    let anonymous = TestRequest::post()
        .uri("/posts")
        .insert_header(("content-type", "application/json"))
        .insert_header(("idempotency-key", "a b"))
        .set_payload(body);
    assert_eq!(send!(app, anonymous).status, 401);
}

#[actix_web::test]
async fn keys_are_per_caller() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let bob = common::member(&t.db, "bob@example.com", None);
    let app = app!(t.db);
    let body = r#"{"title":"mine","content":"c"}"#;
    let for_alice = send!(app, keyed("/posts", &alice, "same-key", body));
    let for_bob = send!(app, keyed("/posts", &bob, "same-key", body));
    assert_eq!((for_alice.status, for_bob.status), (201, 201));
    assert_eq!(for_alice.json()["authorId"], alice.id.as_str());
    assert_eq!(for_bob.json()["authorId"], bob.id.as_str());
    assert_ne!(for_alice.json()["id"], for_bob.json()["id"]);
    // Each caller's retry gets their own answer back.
    let again = send!(app, keyed("/posts", &bob, "same-key", body));
    assert_eq!(again.body, for_bob.body);
    // Another caller's key does not make a different body 422 for this one.
    let other = send!(
        app,
        keyed(
            "/posts",
            &alice,
            "bobs-key",
            r#"{"title":"x","content":"c"}"#
        )
    );
    let bobs = send!(
        app,
        keyed("/posts", &bob, "bobs-key", r#"{"title":"y","content":"c"}"#)
    );
    assert_eq!((other.status, bobs.status), (201, 201));
    assert_eq!(count(&t.db, "posts"), 4);
}

#[actix_web::test]
async fn a_token_retry_is_409_naming_the_token_and_never_shows_its_secret() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let path = format!("/users/{}/tokens", alice.id);
    let in_a_week = (chrono::Utc::now() + chrono::Duration::days(7))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({ "expiresAt": in_a_week }).to_string();
    let first = send!(app, keyed(&path, &alice, "token-key", &body));
    assert_eq!(first.status, 201, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let secret = first.json()["token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let again = send!(app, keyed(&path, &alice, "token-key", &body));
        assert_eq!(again.status, 409, "{}", again.text());
        let text = again.text();
        assert!(!text.contains(&secret), "{text}");
        assert_eq!(
            again.json()["detail"],
            format!("a token's secret is shown once; this key already issued token {id}")
        );
    }
    // Only the token issued the first time exists besides alice's own, and what is
    // kept for retries holds no secret.
    assert_eq!(count(&t.db, "tokens"), 2);
    let stored =
        t.db.read(|conn| -> domain::Result<Vec<String>> {
            use domain::schema::idempotency_keys;
            Ok(idempotency_keys::table
                .select(idempotency_keys::response)
                .load(conn)?)
        })
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&secret), "{}", stored[0]);
    assert!(stored[0].contains(&id), "{}", stored[0]);
    // The issued token works; the replay did not revoke or replace it.
    let me = send!(
        app,
        TestRequest::get().uri("/me").insert_header(bearer(&secret))
    );
    assert_eq!(me.status, 200);
    // An optional body left out is the same request each time, too.
    let bare = || {
        TestRequest::post()
            .uri(&path)
            .insert_header(bearer(&alice.token))
            .insert_header(("idempotency-key", "no-body"))
    };
    assert_eq!(send!(app, bare()).status, 201);
    assert_eq!(send!(app, bare()).status, 409);
    assert_eq!(count(&t.db, "tokens"), 3);
}
