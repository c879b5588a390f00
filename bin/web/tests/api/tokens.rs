//! The token lifecycle: an optional expiry, the list without secrets, "last used"
//! written off the request path.

use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use serde_json::{Value, json};

use crate::common::{self, app, bearer, send};

fn issue(user_id: &str, token: &str, body: Option<(&str, &str)>) -> TestRequest {
    let request = TestRequest::post()
        .uri(&format!("/users/{user_id}/tokens"))
        .insert_header(bearer(token));
    match body {
        Some((content_type, body)) => request
            .insert_header(("content-type", content_type))
            .set_payload(body.to_owned()),
        None => request,
    }
}

#[actix_web::test]
async fn the_optional_body_sets_an_expiry_in_the_future() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let with_expiry = send!(
        app,
        issue(
            &alice.id,
            &alice.token,
            Some((
                "application/json",
                &json!({ "expiresAt": soon }).to_string()
            ))
        )
    );
    assert_eq!(with_expiry.status, 201, "{}", with_expiry.text());
    assert_eq!(with_expiry.json()["expiresAt"], soon.as_str());
    for (body, status) in [
        (None, 201),
        (Some(("application/json", "{}")), 201),
        (Some(("application/json", "null")), 201),
        (Some(("application/json", r#"{"expiresAt":null}"#)), 201),
        (
            Some((
                "application/json",
                r#"{"expiresAt":"2001-01-01T00:00:00Z"}"#,
            )),
            422,
        ),
        (Some(("application/json", r#"{"expiresAt":"soon"}"#)), 400),
        (
            Some(("application/json", r#"{"expires":"2099-01-01T00:00:00Z"}"#)),
            400,
        ),
        (Some(("application/json", "{")), 400),
        (Some(("text/plain", "expiresAt=2099")), 415),
    ] {
        let reply = send!(app, issue(&alice.id, &alice.token, body));
        assert_eq!(reply.status, status, "{body:?}: {}", reply.text());
        if status == 422 {
            assert_eq!(reply.json()["errors"][0]["field"], "expiresAt");
        }
    }
}

#[actix_web::test]
async fn an_expired_token_is_401_like_a_revoked_one() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let in_two_seconds = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let issued = send!(
        app,
        issue(
            &alice.id,
            &alice.token,
            Some((
                "application/json",
                &json!({ "expiresAt": in_two_seconds }).to_string()
            ))
        )
    );
    assert_eq!(issued.status, 201, "{}", issued.text());
    let secret = issued.json()["token"].as_str().unwrap().to_owned();
    let me = || TestRequest::get().uri("/me").insert_header(bearer(&secret));
    assert_eq!(send!(app, me()).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = send!(app, me());
        if reply.status == 401 {
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            break;
        }
        assert_eq!(reply.status, 200);
        assert!(Instant::now() < deadline, "the token did not expire");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_list_shows_no_secret_follows_the_issue_rules_and_records_use() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let alice = common::member(&t.db, "alice@example.com", None);
    let bob = common::member(&t.db, "bob@example.com", None);
    let app = app!(t.db);
    let second = send!(app, issue(&alice.id, &alice.token, None)).json();
    let list = |token: &str, user: &str| {
        TestRequest::get()
            .uri(&format!("/users/{user}/tokens"))
            .insert_header(bearer(token))
    };
    // The caller's own token was used by this very request: its use is written
    // off the request path, so wait for it rather than for the response.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = send!(app, list(&alice.token, &alice.id));
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        let used = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == alice.token_id.as_str() && t["lastUsedAt"].is_string());
        if used {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "lastUsedAt never written: {page}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    let items = page["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [second["id"].as_str().unwrap(), alice.token_id.as_str()]
    );
    for item in items {
        let mut keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["createdAt", "expiresAt", "id", "lastUsedAt"]);
        let text = item.to_string();
        assert!(!text.contains(&alice.token), "{text}");
        assert!(!text.contains(second["token"].as_str().unwrap()), "{text}");
    }
    assert_eq!(page["nextCursor"], Value::Null);
    // Same rules as issuing: others' lists are 403, an admin sees anyone's.
    assert_eq!(send!(app, list(&bob.token, &alice.id)).status, 403);
    assert_eq!(
        send!(app, list(&admin.token, &alice.id)).json()["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(send!(app, list(&admin.token, "nobody")).status, 404);
    let anonymous = TestRequest::get().uri(&format!("/users/{}/tokens", alice.id));
    assert_eq!(send!(app, anonymous).status, 401);
    let paged = send!(
        app,
        TestRequest::get()
            .uri(&format!("/users/{}/tokens?limit=1", alice.id))
            .insert_header(bearer(&alice.token))
    )
    .json();
    assert_eq!(paged["items"].as_array().map(Vec::len), Some(1));
    assert!(paged["nextCursor"].is_string());
}
