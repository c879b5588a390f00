//! A corpus of bad and awkward input: every bad request is a 4xx problem+json that
//! leaks nothing (checked by `send!` on every reply), and awkward text is stored
//! verbatim.

use actix_web::test::TestRequest;
use serde_json::{Value, json};

use crate::common::{self, Member, app, bearer, send};

fn admin_and_alice(t: &common::TestDb) -> (Member, Member) {
    (
        common::member(&t.db, "admin@example.com", Some("admin")),
        common::member(&t.db, "alice@example.com", None),
    )
}

fn json_post(path: &str, token: &str, body: impl Into<Vec<u8>>) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(bearer(token))
        .insert_header(("content-type", "application/json"))
        .set_payload(body.into())
}

#[actix_web::test]
async fn malformed_bodies_are_400() {
    let t = common::database(|c| c);
    let (admin, alice) = admin_and_alice(&t);
    let app = app!(t.db);
    let post = common::post(&t.db, &alice, "p", None);
    let corpus: &[(&str, &str)] = &[
        ("/posts", ""),
        ("/posts", "   "),
        ("/posts", "{"),
        ("/posts", r#"{"title":"t","content":"c""#),
        ("/posts", "null"),
        ("/posts", "[]"),
        ("/posts", r#""a string""#),
        ("/posts", r#"{"title":1,"content":"c"}"#),
        ("/posts", r#"{"title":"t","content":["c"]}"#),
        ("/posts", r#"{"title":"t"}"#),
        ("/posts", r#"{"title":"t","content":"c","extra":1}"#),
        ("/posts", r#"{"title":"t","content":"c","author_id":"x"}"#),
        (
            "/posts",
            r#"{"title":"t","content":"c","publishedAt":"tomorrow"}"#,
        ),
        (
            "/posts",
            r#"{"title":"t","content":"c","publishedAt":1700000000}"#,
        ),
        ("/posts", r#"{"title":"t","content":"c"} trailing"#),
        ("/posts", "{\"title\":\"t\",\"content\":\"\\ud800\"}"),
        ("/users", r#"{"email":"a@b.c"}"#),
        ("/users", r#"{"email":"a@b.c","name":"N","role":7}"#),
        ("/users", r#"{"email":"a@b.c","name":"N","admin":true}"#),
        ("/users", r#"{"email":null,"name":"N"}"#),
    ];
    for (path, body) in corpus {
        let reply = send!(app, json_post(path, &admin.token, *body));
        assert_eq!(reply.status, 400, "POST {path} {body:?}: {}", reply.text());
    }
    let patches: &[(String, &str)] = &[
        (format!("/posts/{post}"), r#"{"title":null}"#),
        (format!("/posts/{post}"), r#"{"content":null}"#),
        (format!("/posts/{post}"), r#"{"authorId":"x"}"#),
        (format!("/posts/{post}"), r#"{"publishedAt":false}"#),
        (format!("/users/{}", alice.id), r#"{"name":null}"#),
        (format!("/users/{}", alice.id), r#"{"email":42}"#),
        (format!("/users/{}", alice.id), r#"{"nickname":"x"}"#),
        (format!("/users/{}", alice.id), ""),
    ];
    for (path, body) in patches {
        let req = json_post(path, &admin.token, *body).method(actix_web::http::Method::PATCH);
        let reply = send!(app, req);
        assert_eq!(reply.status, 400, "PATCH {path} {body:?}: {}", reply.text());
    }
}

#[actix_web::test]
async fn content_type_and_size() {
    let t = common::database(|c| c);
    let (_, alice) = admin_and_alice(&t);
    let app = app!(t.db);
    let body = r#"{"title":"t","content":"c"}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let req = TestRequest::post()
            .uri("/posts")
            .insert_header(bearer(&alice.token))
            .insert_header(("content-type", content_type))
            .set_payload(body);
        assert_eq!(send!(app, req).status, 415, "{content_type}");
    }
    let missing = TestRequest::post()
        .uri("/posts")
        .insert_header(bearer(&alice.token))
        .set_payload(body);
    assert_eq!(send!(app, missing).status, 415);
    let empty_no_type = TestRequest::post()
        .uri("/posts")
        .insert_header(bearer(&alice.token));
    assert_eq!(send!(app, empty_no_type).status, 415);
    let with_charset = TestRequest::post()
        .uri("/posts")
        .insert_header(bearer(&alice.token))
        .insert_header(("content-type", "application/json; charset=utf-8"))
        .set_payload(body);
    assert_eq!(send!(app, with_charset).status, 201);

    // Over 1 MiB: 413 even though the JSON itself would be fine.
    let big = json!({"title": "t", "content": "x".repeat(1024 * 1024)}).to_string();
    assert_eq!(
        send!(app, json_post("/posts", &alice.token, big)).status,
        413
    );
    // Under 1 MiB but over the content limit: a validation error, not a size one.
    let long = json!({"title": "t", "content": "x".repeat(100_001)}).to_string();
    let reply = send!(app, json_post("/posts", &alice.token, long));
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["errors"][0]["field"], "content");
}

#[actix_web::test]
async fn awkward_text_is_stored_verbatim() {
    let t = common::database(|c| c);
    let (admin, alice) = admin_and_alice(&t);
    let app = app!(t.db);
    let contents = [
        "right\u{202e}to\u{200f}left \u{200b} marks",
        "emoji 😀👩‍👩‍👧‍👦🏳️‍🌈 and 𝕌𝕟𝕚𝕔𝕠𝕕𝕖",
        "'); DROP TABLE posts; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM users WHERE ('1'='1",
        "  leading and trailing spaces  \n\t",
        "lines\r\nand\ttabs",
        "<script>alert(1)</script>",
        "",
    ];
    for content in contents {
        // Titles take the same text where it is allowed in a one-line label.
        let title = format!(
            "{}title",
            content.replace(['\u{202e}', '\n', '\r', '\t'], " ")
        );
        let body =
            json!({"title": title, "content": content, "publishedAt": "2020-01-01T00:00:00Z"});
        let created = send!(app, json_post("/posts", &alice.token, body.to_string()));
        assert_eq!(created.status, 201, "{content:?}: {}", created.text());
        let id = created.json()["id"].as_i64().unwrap();
        let read = send!(app, TestRequest::get().uri(&format!("/posts/{id}"))).json();
        assert_eq!(
            read["content"].as_str(),
            Some(content),
            "content {content:?}"
        );
        assert_eq!(
            read["title"].as_str(),
            Some(title.trim()),
            "title {content:?}"
        );
    }
    // SQL-looking but valid e-mail and name.
    let email = "robert');drop_table_users;--@example.com";
    let name = "Robert'); DROP TABLE users; --";
    let created = send!(
        app,
        json_post(
            "/users",
            &admin.token,
            json!({"email": email, "name": name}).to_string()
        )
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let user = created.json();
    assert_eq!(
        (user["email"].as_str(), user["name"].as_str()),
        (Some(email), Some(name))
    );
    let users = send!(
        app,
        TestRequest::get()
            .uri("/users?limit=100")
            .insert_header(bearer(&admin.token))
    );
    assert_eq!(users.json()["items"].as_array().map(Vec::len), Some(3));
}

/// Text that would display as something else, or break a log or a terminal, is
/// never stored: control characters anywhere but line breaks and tabs in content,
/// and bidirectional controls in names and titles, are 422 naming the field.
#[actix_web::test]
async fn hostile_text_is_422_and_nothing_is_stored() {
    let t = common::database(|c| c);
    let (admin, alice) = admin_and_alice(&t);
    let app = app!(t.db);
    let post = common::post(&t.db, &alice, "kept", None);
    let cases: &[(&str, &str, Value, &str)] = &[
        (
            "POST",
            "/posts",
            json!({"title": "a\u{202e}b", "content": "c"}),
            "title",
        ),
        (
            "POST",
            "/posts",
            json!({"title": "a\u{2066}b", "content": "c"}),
            "title",
        ),
        (
            "POST",
            "/posts",
            json!({"title": "a\u{7}b", "content": "c"}),
            "title",
        ),
        (
            "POST",
            "/posts",
            json!({"title": "a\u{85}b", "content": "c"}),
            "title",
        ),
        (
            "POST",
            "/posts",
            json!({"title": "t", "content": "nul\u{0}"}),
            "content",
        ),
        (
            "POST",
            "/posts",
            json!({"title": "t", "content": "\u{1b}[2J"}),
            "content",
        ),
        (
            "POST",
            "/posts",
            json!({"title": "t", "content": "del\u{7f}"}),
            "content",
        ),
        (
            "PATCH",
            "/posts/{post}",
            json!({"title": "x\u{9b}y"}),
            "title",
        ),
        (
            "PATCH",
            "/posts/{post}",
            json!({"content": "x\u{0}y"}),
            "content",
        ),
        (
            "POST",
            "/users",
            json!({"email": "e@x.y", "name": "a\u{202b}b"}),
            "name",
        ),
        (
            "POST",
            "/users",
            json!({"email": "e@x.y", "name": "a\tb"}),
            "name",
        ),
        (
            "PATCH",
            "/users/{alice}",
            json!({"name": "a\u{2069}"}),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let path = path
            .replace("{post}", &post.to_string())
            .replace("{alice}", &alice.id);
        let reply = send!(
            app,
            json_post(&path, &admin.token, body.to_string())
                .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
        );
        assert_eq!(
            reply.status,
            422,
            "{method} {path} {body}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["errors"][0]["field"], *field, "{body}");
    }
    let posts = send!(
        app,
        TestRequest::get()
            .uri("/posts?limit=100")
            .insert_header(bearer(&admin.token))
    );
    let items = posts.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["title"], "kept");
    let me = send!(
        app,
        TestRequest::get()
            .uri("/me")
            .insert_header(bearer(&alice.token))
    );
    assert_eq!(me.json()["name"], "alice");
}

#[actix_web::test]
async fn bad_ids_and_paths() {
    let t = common::database(|c| c);
    let (admin, _) = admin_and_alice(&t);
    let app = app!(t.db);
    for id in [
        "99999999999999999999",
        "-99999999999999999999",
        "abc",
        "1.5",
        "1e3",
        "%00",
        "0x10",
        "%20",
    ] {
        let reply = send!(
            app,
            TestRequest::get()
                .uri(&format!("/posts/{id}"))
                .insert_header(bearer(&admin.token))
        );
        assert_eq!(reply.status, 400, "GET /posts/{id}");
    }
    for id in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
        let reply = send!(app, TestRequest::get().uri(&format!("/posts/{id}")));
        assert_eq!(reply.status, 404, "GET /posts/{id}");
    }
    // Authentication comes before the request's own input.
    let anonymous = send!(app, TestRequest::delete().uri("/posts/abc"));
    assert_eq!(anonymous.status, 401);
    let garbage = send!(
        app,
        TestRequest::patch()
            .uri("/posts/abc")
            .insert_header(bearer("garbage"))
            .insert_header(("content-type", "text/plain"))
            .set_payload("{")
    );
    assert_eq!(garbage.status, 401);
    // Odd user ids are just ids no row has.
    for id in ["nobody", "%27%20OR%201%3D1", "%F0%9F%98%80", "a%00b"] {
        let reply = send!(
            app,
            TestRequest::get()
                .uri(&format!("/users/{id}"))
                .insert_header(bearer(&admin.token))
        );
        assert_eq!(reply.status, 404, "GET /users/{id}");
    }
    let unknown = send!(app, TestRequest::get().uri("/nope"));
    assert_eq!(unknown.status, 404);
    assert_eq!(
        send!(app, TestRequest::get().uri("/posts/1/extra")).status,
        404
    );
    let wrong_method = send!(app, TestRequest::put().uri("/posts"));
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET, POST"));
    let wrong_method = send!(app, TestRequest::post().uri("/health"));
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET"));
}

#[actix_web::test]
async fn bad_query_parameters_are_400_unknown_ones_ignored() {
    let t = common::database(|c| c);
    let (admin, _) = admin_and_alice(&t);
    let app = app!(t.db);
    let users_cursor = {
        for i in 0..3 {
            common::member(&t.db, &format!("u{i}@example.com"), None);
        }
        let page = send!(
            app,
            TestRequest::get()
                .uri("/users?limit=1")
                .insert_header(bearer(&admin.token))
        );
        page.json()["nextCursor"].as_str().unwrap().to_owned()
    };
    let bad = [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=",
        "limit=1.0",
        "limit=99999999999999999999",
        "limit=1&limit=2",
        "cursor=",
        "cursor=!!!",
        "cursor=zzzz",
        "cursor=cDE",
        &format!("cursor={users_cursor}"),
        &format!("cursor={}", "A".repeat(4000)),
        "published=yes",
        "published=1",
        "published=",
        "published=TRUE",
    ];
    for query in bad {
        let reply = send!(app, TestRequest::get().uri(&format!("/posts?{query}")));
        assert_eq!(reply.status, 400, "/posts?{query}: {}", reply.text());
    }
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=%%%",
        "cursor=cDE",
    ] {
        let reply = send!(
            app,
            TestRequest::get()
                .uri(&format!("/users?{query}"))
                .insert_header(bearer(&admin.token))
        );
        assert_eq!(reply.status, 400, "/users?{query}");
    }
    // Anonymous callers of an admin route hear 401, whatever the query.
    assert_eq!(
        send!(app, TestRequest::get().uri("/users?limit=0")).status,
        401
    );
    for query in [
        "limit=1",
        "limit=100",
        "foo=bar",
        "limit=5&unknown=1&authorid=x",
        "published=true&published_at=x",
    ] {
        let reply = send!(app, TestRequest::get().uri(&format!("/posts?{query}")));
        assert_eq!(reply.status, 200, "/posts?{query}: {}", reply.text());
    }
}

#[actix_web::test]
async fn validation_reports_every_field() {
    let t = common::database(|c| c);
    let (admin, alice) = admin_and_alice(&t);
    let app = app!(t.db);
    let fields = |reply: &common::Reply| -> Vec<String> {
        reply.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
                e["field"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let reply = send!(
        app,
        json_post(
            "/users",
            &admin.token,
            r#"{"email":"nope","name":"   ","role":"root"}"#
        )
    );
    assert_eq!(reply.status, 422);
    assert_eq!(fields(&reply), ["email", "name", "role"]);
    let reply = send!(
        app,
        json_post(
            "/posts",
            &alice.token,
            json!({"title": " ", "content": "é".repeat(100_001)}).to_string()
        )
    );
    assert_eq!(reply.status, 422);
    assert_eq!(fields(&reply), ["title", "content"]);
    let reply = send!(
        app,
        json_post(
            "/posts",
            &admin.token,
            json!({"title": "t", "content": "c", "authorId": "ghost"}).to_string()
        )
    );
    assert_eq!(reply.status, 422);
    assert_eq!(fields(&reply), ["authorId"]);
    let req = json_post(
        &format!("/users/{}", alice.id),
        &admin.token,
        r#"{"email":"a@b@c","name":"","role":"owner"}"#,
    )
    .method(actix_web::http::Method::PATCH);
    let reply = send!(app, req);
    assert_eq!(reply.status, 422);
    assert_eq!(fields(&reply), ["email", "name", "role"]);
    // Boundaries count characters, not bytes.
    let ok = send!(
        app,
        json_post(
            "/posts",
            &alice.token,
            json!({"title": "😀".repeat(200), "content": "c"}).to_string()
        )
    );
    assert_eq!(ok.status, 201);
    let long = send!(
        app,
        json_post(
            "/posts",
            &alice.token,
            json!({"title": "😀".repeat(201), "content": "c"}).to_string()
        )
    );
    assert_eq!(long.status, 422);
}

#[actix_web::test]
async fn conflicts() {
    let t = common::database(|c| c);
    let (admin, alice) = admin_and_alice(&t);
    let app = app!(t.db);
    common::post(&t.db, &alice, "keeps alice", None);
    let delete = send!(
        app,
        TestRequest::delete()
            .uri(&format!("/users/{}", alice.id))
            .insert_header(bearer(&admin.token))
    );
    assert_eq!(delete.status, 409);
    let still = send!(
        app,
        TestRequest::get()
            .uri(&format!("/users/{}", alice.id))
            .insert_header(bearer(&admin.token))
    );
    assert_eq!(still.status, 200);
    let duplicate = send!(
        app,
        json_post(
            "/users",
            &admin.token,
            r#"{"email":" Alice@Example.com","name":"Twin"}"#
        )
    );
    assert_eq!(duplicate.status, 409);
    assert!(
        duplicate.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("email"))
    );
    let problem: Value = duplicate.json();
    assert_eq!(problem["title"], "Conflict");
    assert!(problem.get("errors").is_none());
}
