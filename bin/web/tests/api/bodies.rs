//! Request bodies against slow and unauthorised clients: a write without a valid
//! token is answered before its body is read, and a body that has not arrived in
//! full by the deadline is 408.

use std::time::{Duration, Instant};

use actix_web::dev::{Payload, Service, ServiceResponse};
use actix_web::rt::time::{sleep, timeout};
use actix_web::test::{TestRequest, init_service};
use actix_web::web::Bytes;

use crate::common::{self, Reply, bearer};

/// Every operation that takes a body, with a path that exists.
fn writes(post: i64, user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("POST", "/posts".into()),
        ("PATCH", format!("/posts/{post}")),
        ("POST", "/users".into()),
        ("PATCH", format!("/users/{user}")),
        ("POST", format!("/users/{user}/tokens")),
    ]
}

/// A request announcing a 1 MiB JSON body of which only `sent` has arrived; the
/// rest comes when the test feeds `sender`, or never.
fn announcing_a_megabyte(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    sent: &'static [u8],
) -> (impl Sized, actix_http::Request) {
    let mut req = TestRequest::default()
        .method(method.parse().unwrap())
        .uri(path)
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-length", "1048576"));
    if let Some(value) = authorization {
        req = req.insert_header(("authorization", value));
    }
    let (mut sender, payload) = actix_http::h1::Payload::create(false);
    if !sent.is_empty() {
        sender.feed_data(Bytes::from_static(sent));
    }
    let (req, _) = req.to_request().replace_payload(Payload::from(payload));
    (sender, req)
}

async fn checked<B: actix_web::body::MessageBody>(res: ServiceResponse<B>) -> Reply {
    common::check(res).await
}

#[actix_web::test]
async fn a_write_without_a_valid_token_is_401_before_its_body_arrives() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let post = common::post(&t.db, &admin, "p", None);
    let app = common::app!(t.db);
    let unknown = format!("Bearer {}", "x".repeat(40));
    for (method, path) in writes(post, &admin.id) {
        for authorization in [None, Some(unknown.as_str()), Some("Basic YWRtaW46YWRtaW4=")] {
            let (_sender, req) = announcing_a_megabyte(method, &path, authorization, b"");
            let res = timeout(Duration::from_secs(2), app.call(req))
                .await
                .unwrap_or_else(|_| panic!("{method} {path} {authorization:?} waited for the body"))
                .unwrap();
            let reply = checked(res).await;
            assert_eq!(reply.status, 401, "{method} {path} {authorization:?}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
        // A valid token, by contrast, waits for the body.
        let token = format!("Bearer {}", admin.token);
        let (_sender, req) = announcing_a_megabyte(method, &path, Some(&token), b"");
        assert!(
            timeout(Duration::from_millis(300), app.call(req))
                .await
                .is_err(),
            "{method} {path} answered without its body"
        );
    }
}

#[actix_web::test]
async fn a_body_still_arriving_at_the_deadline_is_408() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let post = common::post(&t.db, &admin, "p", None);
    let deadline = Duration::from_millis(300);
    let app = init_service(
        web::app(web::AppState::new(t.db.clone()).unwrap())
            .app_data(web::extract::BodyTimeout(deadline)),
    )
    .await;
    let token = format!("Bearer {}", admin.token);
    for (method, path) in writes(post, &admin.id) {
        let (_sender, req) = announcing_a_megabyte(method, &path, Some(&token), b"{\"title\":");
        let started = Instant::now();
        let res = timeout(Duration::from_secs(5), app.call(req))
            .await
            .unwrap_or_else(|_| panic!("{method} {path} outlived its deadline"))
            .unwrap();
        let took = started.elapsed();
        assert!(!res.response().head().keep_alive(), "{method} {path}");
        let reply = checked(res).await;
        assert_eq!(reply.status, 408, "{method} {path}: {}", reply.text());
        assert!(
            took >= deadline && took < deadline * 4,
            "{method} {path}: 408 after {took:?}"
        );
    }
    let listed = common::send!(
        app,
        TestRequest::get()
            .uri("/posts")
            .insert_header(bearer(&admin.token))
    );
    assert_eq!(
        listed.json()["items"].as_array().map(Vec::len),
        Some(1),
        "a timed-out body created a post"
    );
}

#[actix_web::test]
async fn a_slow_body_that_arrives_within_the_deadline_is_served() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let app = init_service(
        web::app(web::AppState::new(t.db.clone()).unwrap())
            .app_data(web::extract::BodyTimeout(Duration::from_secs(5))),
    )
    .await;
    let body = br#"{"title":"slow","content":"in pieces"}"#;
    let (mut sender, payload) = actix_http::h1::Payload::create(false);
    let (req, _) = TestRequest::post()
        .uri("/posts")
        .insert_header(bearer(&admin.token))
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-length", body.len().to_string()))
        .to_request()
        .replace_payload(Payload::from(payload));
    actix_web::rt::spawn(async move {
        for piece in body.chunks(8) {
            sleep(Duration::from_millis(50)).await;
            sender.feed_data(Bytes::from_static(piece));
        }
        sender.feed_eof();
    });
    let reply = checked(app.call(req).await.unwrap()).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["title"], "slow");
}
