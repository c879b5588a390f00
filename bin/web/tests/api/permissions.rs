//! The contract's permission table, cell by cell: every route for anonymous callers,
//! members (own and other people's rows) and admins, plus revoked and malformed
//! tokens and the case-insensitive `Bearer` scheme.

use actix_web::http::Method;
use actix_web::test::TestRequest;
use serde_json::Value;

use crate::common::{self, Member, TestDb, app, bearer, send};

/// Users, tokens and posts every case starts from.
struct World {
    t: TestDb,
    admin: Member,
    alice: Member,
    bob: Member,
    /// A user without posts, so deletable.
    dave: Member,
    /// A member whose only token is revoked.
    revoked: Member,
    posts: Vec<(&'static str, i64)>,
}

fn world() -> World {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let alice = common::member(&t.db, "alice@example.com", None);
    let bob = common::member(&t.db, "bob@example.com", None);
    let dave = common::member(&t.db, "dave@example.com", None);
    let revoked = common::member(&t.db, "carol@example.com", None);
    common::revoke(&t.db, &revoked);
    let past = Some(common::hours_from_now(-1));
    let future = Some(common::hours_from_now(24));
    let posts = vec![
        (
            "alice_public",
            common::post(&t.db, &alice, "alice public", past),
        ),
        (
            "alice_draft",
            common::post(&t.db, &alice, "alice draft", None),
        ),
        (
            "alice_scheduled",
            common::post(&t.db, &alice, "alice scheduled", future),
        ),
        ("bob_public", common::post(&t.db, &bob, "bob public", past)),
        ("bob_draft", common::post(&t.db, &bob, "bob draft", None)),
    ];
    World {
        t,
        admin,
        alice,
        bob,
        dave,
        revoked,
        posts,
    }
}

impl World {
    /// Replaces `{alice}` (user id), `{alice_token}` (token id), `{alice_secret}`
    /// and `{alice_draft}` (post id) style placeholders.
    fn expand(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, m) in [
            ("admin", &self.admin),
            ("alice", &self.alice),
            ("bob", &self.bob),
            ("dave", &self.dave),
            ("revoked", &self.revoked),
        ] {
            out = out
                .replace(&format!("{{{name}_token}}"), &m.token_id)
                .replace(&format!("{{{name}_secret}}"), &m.token)
                .replace(&format!("{{{name}}}"), &m.id);
        }
        for (name, id) in &self.posts {
            out = out.replace(&format!("{{{name}}}"), &id.to_string());
        }
        out
    }

    fn post_names(&self, ids: &[i64]) -> Vec<&'static str> {
        ids.iter()
            .map(|id| {
                self.posts
                    .iter()
                    .find(|(_, p)| p == id)
                    .map_or("new", |(name, _)| *name)
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Alice,
    Bob,
    Admin,
    Revoked,
    /// A literal `Authorization` header, placeholders expanded.
    Header(&'static str),
}

impl Who {
    fn header(self, w: &World) -> Option<String> {
        let token = match self {
            Self::Anonymous => return None,
            Self::Alice => &w.alice.token,
            Self::Bob => &w.bob.token,
            Self::Admin => &w.admin.token,
            Self::Revoked => &w.revoked.token,
            Self::Header(raw) => return Some(w.expand(raw)),
        };
        Some(bearer(token).1)
    }
}

use Who::{Admin, Alice, Anonymous, Bob, Revoked};

/// (who, method, path, JSON body, expected status)
type Case = (Who, &'static str, &'static str, Option<&'static str>, u16);

const PATCH_TITLE: Option<&str> = Some(r#"{"title":"changed"}"#);
const NEW_POST: Option<&str> = Some(r#"{"title":"new","content":"body"}"#);
const NEW_USER: Option<&str> = Some(r#"{"email":"new@example.com","name":"New"}"#);

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Operations ignore the Authorization header entirely.
    (Anonymous, "GET", "/health", None, 200),
    (Alice, "GET", "/health", None, 200),
    (Admin, "GET", "/health", None, 200),
    (Revoked, "GET", "/health", None, 200),
    (Who::Header("Basic Zm9vOmJhcg=="), "GET", "/health", None, 200),
    (Anonymous, "GET", "/ready", None, 200),
    (Alice, "GET", "/ready", None, 200),
    (Admin, "GET", "/ready", None, 200),
    (Revoked, "GET", "/ready", None, 200),
    (Anonymous, "GET", "/openapi.json", None, 200),
    (Revoked, "GET", "/openapi.json", None, 200),
    // GET /posts (contents checked in `list_visibility`).
    (Anonymous, "GET", "/posts", None, 200),
    (Alice, "GET", "/posts", None, 200),
    (Admin, "GET", "/posts", None, 200),
    (Revoked, "GET", "/posts", None, 401),
    // GET /posts/{id}
    (Anonymous, "GET", "/posts/{alice_public}", None, 200),
    (Anonymous, "GET", "/posts/{alice_draft}", None, 404),
    (Anonymous, "GET", "/posts/{alice_scheduled}", None, 404),
    (Alice, "GET", "/posts/{alice_draft}", None, 200),
    (Alice, "GET", "/posts/{alice_scheduled}", None, 200),
    (Alice, "GET", "/posts/{bob_public}", None, 200),
    (Alice, "GET", "/posts/{bob_draft}", None, 404),
    (Bob, "GET", "/posts/{alice_draft}", None, 404),
    (Admin, "GET", "/posts/{alice_draft}", None, 200),
    (Admin, "GET", "/posts/{bob_draft}", None, 200),
    (Admin, "GET", "/posts/999999", None, 404),
    (Revoked, "GET", "/posts/{alice_public}", None, 401),
    // POST /posts
    (Anonymous, "POST", "/posts", NEW_POST, 401),
    (Alice, "POST", "/posts", NEW_POST, 201),
    (Alice, "POST", "/posts", Some(r#"{"title":"t","content":"c","authorId":"{alice}"}"#), 201),
    (Alice, "POST", "/posts", Some(r#"{"title":"t","content":"c","authorId":"{bob}"}"#), 403),
    (Admin, "POST", "/posts", Some(r#"{"title":"t","content":"c","authorId":"{bob}"}"#), 201),
    (Admin, "POST", "/posts", Some(r#"{"title":"t","content":"c","authorId":"nobody"}"#), 422),
    (Admin, "POST", "/posts", NEW_POST, 201),
    (Revoked, "POST", "/posts", NEW_POST, 401),
    // PATCH /posts/{id}
    (Anonymous, "PATCH", "/posts/{alice_public}", PATCH_TITLE, 401),
    (Alice, "PATCH", "/posts/{alice_public}", PATCH_TITLE, 200),
    (Alice, "PATCH", "/posts/{alice_draft}", PATCH_TITLE, 200),
    (Bob, "PATCH", "/posts/{alice_public}", PATCH_TITLE, 403),
    (Bob, "PATCH", "/posts/{alice_draft}", PATCH_TITLE, 404),
    (Bob, "PATCH", "/posts/{alice_scheduled}", PATCH_TITLE, 404),
    (Admin, "PATCH", "/posts/{alice_draft}", PATCH_TITLE, 200),
    (Admin, "PATCH", "/posts/999999", PATCH_TITLE, 404),
    (Revoked, "PATCH", "/posts/{alice_public}", PATCH_TITLE, 401),
    // DELETE /posts/{id}
    (Anonymous, "DELETE", "/posts/{alice_public}", None, 401),
    (Alice, "DELETE", "/posts/{alice_public}", None, 204),
    (Alice, "DELETE", "/posts/{alice_draft}", None, 204),
    (Bob, "DELETE", "/posts/{alice_public}", None, 403),
    (Bob, "DELETE", "/posts/{alice_draft}", None, 404),
    (Admin, "DELETE", "/posts/{bob_draft}", None, 204),
    (Admin, "DELETE", "/posts/999999", None, 404),
    (Revoked, "DELETE", "/posts/{alice_public}", None, 401),
    // GET /me
    (Anonymous, "GET", "/me", None, 401),
    (Alice, "GET", "/me", None, 200),
    (Admin, "GET", "/me", None, 200),
    (Revoked, "GET", "/me", None, 401),
    // GET /users
    (Anonymous, "GET", "/users", None, 401),
    (Alice, "GET", "/users", None, 403),
    (Admin, "GET", "/users", None, 200),
    (Revoked, "GET", "/users", None, 401),
    // POST /users
    (Anonymous, "POST", "/users", NEW_USER, 401),
    (Alice, "POST", "/users", NEW_USER, 403),
    (Admin, "POST", "/users", NEW_USER, 201),
    (Admin, "POST", "/users", Some(r#"{"email":"ALICE@example.com ","name":"Dup"}"#), 409),
    (Revoked, "POST", "/users", NEW_USER, 401),
    // GET /users/{id}
    (Anonymous, "GET", "/users/{alice}", None, 401),
    (Alice, "GET", "/users/{alice}", None, 200),
    (Bob, "GET", "/users/{alice}", None, 403),
    (Alice, "GET", "/users/nobody", None, 403),
    (Admin, "GET", "/users/{alice}", None, 200),
    (Admin, "GET", "/users/nobody", None, 404),
    (Revoked, "GET", "/users/{alice}", None, 401),
    // PATCH /users/{id}
    (Anonymous, "PATCH", "/users/{alice}", Some(r#"{"name":"A"}"#), 401),
    (Alice, "PATCH", "/users/{alice}", Some(r#"{"name":"A","email":"a2@example.com"}"#), 200),
    (Alice, "PATCH", "/users/{alice}", Some(r#"{"role":"admin"}"#), 403),
    (Alice, "PATCH", "/users/{alice}", Some(r#"{"role":"user"}"#), 403),
    (Bob, "PATCH", "/users/{alice}", Some(r#"{"name":"A"}"#), 403),
    (Alice, "PATCH", "/users/{alice}", Some(r#"{"email":"bob@example.com"}"#), 409),
    (Admin, "PATCH", "/users/{alice}", Some(r#"{"role":"admin"}"#), 200),
    (Admin, "PATCH", "/users/nobody", Some(r#"{"name":"A"}"#), 404),
    (Revoked, "PATCH", "/users/{alice}", Some(r#"{"name":"A"}"#), 401),
    // DELETE /users/{id}
    (Anonymous, "DELETE", "/users/{dave}", None, 401),
    (Alice, "DELETE", "/users/{dave}", None, 403),
    (Dave, "DELETE", "/users/{dave}", None, 403),
    (Admin, "DELETE", "/users/{dave}", None, 204),
    (Admin, "DELETE", "/users/{alice}", None, 409),
    (Admin, "DELETE", "/users/nobody", None, 404),
    (Revoked, "DELETE", "/users/{dave}", None, 401),
    // POST /users/{id}/tokens
    (Anonymous, "POST", "/users/{alice}/tokens", None, 401),
    (Alice, "POST", "/users/{alice}/tokens", None, 201),
    (Bob, "POST", "/users/{alice}/tokens", None, 403),
    (Admin, "POST", "/users/{alice}/tokens", None, 201),
    (Admin, "POST", "/users/nobody/tokens", None, 404),
    (Revoked, "POST", "/users/{revoked}/tokens", None, 401),
    // DELETE /tokens/{id}
    (Anonymous, "DELETE", "/tokens/{alice_token}", None, 401),
    (Alice, "DELETE", "/tokens/{alice_token}", None, 204),
    (Bob, "DELETE", "/tokens/{alice_token}", None, 403),
    (Admin, "DELETE", "/tokens/{alice_token}", None, 204),
    (Admin, "DELETE", "/tokens/nothing", None, 404),
    (Revoked, "DELETE", "/tokens/{revoked_token}", None, 401),
    // The scheme name is case-insensitive; anything else is 401.
    (Who::Header("bearer {alice_secret}"), "GET", "/me", None, 200),
    (Who::Header("BEARER {alice_secret}"), "GET", "/me", None, 200),
    (Who::Header("BeArEr   {alice_secret}"), "GET", "/me", None, 200),
    (Who::Header("Bearer {alice_secret}x"), "GET", "/me", None, 401),
    (Who::Header("Bearer"), "GET", "/posts", None, 401),
    (Who::Header("Basic Zm9vOmJhcg=="), "GET", "/posts", None, 401),
    (Who::Header("{alice_secret}"), "GET", "/posts", None, 401),
];

#[expect(
    non_upper_case_globals,
    reason = "reads like the other callers in the table"
)]
const Dave: Who = Who::Header("Bearer {dave_secret}");

fn request(w: &World, who: Who, method: &str, path: &str, body: Option<&str>) -> TestRequest {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = TestRequest::default().method(method).uri(&w.expand(path));
    if let Some(header) = who.header(w) {
        req = req.insert_header(("authorization", header));
    }
    if let Some(body) = body {
        req = req
            .insert_header(("content-type", "application/json"))
            .set_payload(w.expand(body));
    }
    req
}

#[actix_web::test]
async fn every_cell_of_the_permission_table() {
    let mut failures = Vec::new();
    for &(who, method, path, body, expected) in CASES {
        // Each case on its own world: deletes and changes do not leak into the next.
        let w = world();
        let app = app!(w.t.db);
        let reply = send!(app, request(&w, who, method, path, body));
        if reply.status != expected {
            failures.push(format!(
                "{who:?} {method} {path}: expected {expected}, got {} {}",
                reply.status,
                reply.text()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cells:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[actix_web::test]
async fn a_revoked_token_is_401_on_every_route_but_operations() {
    let w = world();
    let app = app!(w.t.db);
    for op in web::routes::operations() {
        let path = op.path.replace("{id}", &w.alice.id);
        let path = if path.starts_with("/posts/") {
            w.expand("/posts/{alice_public}")
        } else {
            path
        };
        let body = [Method::POST, Method::PATCH]
            .contains(&op.method)
            .then_some("{}");
        let reply = send!(app, request(&w, Revoked, op.method.as_str(), &path, body));
        let expected = if ["/health", "/ready", "/openapi.json"].contains(&op.path.as_str()) {
            200
        } else {
            401
        };
        assert_eq!(reply.status, expected, "{} {path}", op.method);
        if expected == 401 {
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
}

async fn visible(w: &World, who: Who, query: &str) -> Vec<&'static str> {
    let app = app!(w.t.db);
    let reply = send!(app, request(w, who, "GET", &format!("/posts{query}"), None));
    assert_eq!(reply.status, 200, "{who:?} {query}: {}", reply.text());
    let ids: Vec<i64> = reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    w.post_names(&ids)
}

#[actix_web::test]
async fn list_visibility() {
    let w = world();
    let all_public = ["bob_public", "alice_public"];
    let cases: &[(Who, &str, &[&str])] = &[
        (Anonymous, "", &all_public),
        (
            Alice,
            "",
            &[
                "bob_public",
                "alice_scheduled",
                "alice_draft",
                "alice_public",
            ],
        ),
        (Bob, "", &["bob_draft", "bob_public", "alice_public"]),
        (
            Admin,
            "",
            &[
                "bob_draft",
                "bob_public",
                "alice_scheduled",
                "alice_draft",
                "alice_public",
            ],
        ),
        (Anonymous, "?published=true", &all_public),
        (Alice, "?published=true", &all_public),
        (Admin, "?published=true", &all_public),
        (Anonymous, "?published=false", &[]),
        (
            Alice,
            "?published=false",
            &["alice_scheduled", "alice_draft"],
        ),
        (
            Admin,
            "?published=false",
            &["bob_draft", "alice_scheduled", "alice_draft"],
        ),
        (Anonymous, "?authorId={alice}", &["alice_public"]),
        (Alice, "?authorId={bob}", &["bob_public"]),
        (Admin, "?authorId={bob}", &["bob_draft", "bob_public"]),
        (Admin, "?authorId=nobody", &[]),
        (
            Alice,
            "?authorId={alice}&published=false",
            &["alice_scheduled", "alice_draft"],
        ),
    ];
    for &(who, query, expected) in cases {
        assert_eq!(
            visible(&w, who, &w.expand(query)).await,
            expected,
            "{who:?} {query}"
        );
    }
}

#[actix_web::test]
async fn me_is_the_caller_and_users_read_back() {
    let w = world();
    let app = app!(w.t.db);
    let me = send!(app, request(&w, Alice, "GET", "/me", None)).json();
    assert_eq!(me["id"], Value::from(w.alice.id.clone()));
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["role"], "user");
    let created_at = me["createdAt"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "{created_at}"
    );
    let admin = send!(app, request(&w, Admin, "GET", "/me", None)).json();
    assert_eq!(admin["role"], "admin");
    let keys: Vec<&String> = me.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["createdAt", "email", "id", "name", "role"]);
}

#[actix_web::test]
async fn issued_tokens_work_once_revoked_they_do_not() {
    let w = world();
    let app = app!(w.t.db);
    let issued = send!(
        app,
        request(
            &w,
            Alice,
            "POST",
            &format!("/users/{}/tokens", w.alice.id),
            None
        )
    );
    assert_eq!(issued.status, 201);
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let token = issued.json();
    let keys: Vec<&String> = token.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["createdAt", "expiresAt", "id", "token"]);
    assert_eq!(token["expiresAt"], Value::Null);
    let header = format!("Bearer {}", token["token"].as_str().unwrap());
    let me = send!(
        app,
        TestRequest::get()
            .uri("/me")
            .insert_header(("authorization", header.clone()))
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["id"], Value::from(w.alice.id.clone()));
    let revoke = send!(
        app,
        TestRequest::delete()
            .uri(&format!("/tokens/{}", token["id"].as_str().unwrap()))
            .insert_header(("authorization", header.clone()))
    );
    assert_eq!(revoke.status, 204);
    assert!(revoke.body.is_empty());
    let after = send!(
        app,
        TestRequest::get()
            .uri("/me")
            .insert_header(("authorization", header))
    );
    assert_eq!(after.status, 401);
    // The other token of the same user still works.
    assert_eq!(
        send!(app, request(&w, Alice, "GET", "/me", None)).status,
        200
    );
}

#[actix_web::test]
async fn deleting_a_user_removes_their_tokens() {
    let w = world();
    let app = app!(w.t.db);
    let deleted = send!(app, request(&w, Admin, "DELETE", "/users/{dave}", None));
    assert_eq!(deleted.status, 204);
    assert_eq!(
        send!(app, request(&w, Dave, "GET", "/me", None)).status,
        401
    );
}

#[actix_web::test]
async fn patching_posts_and_users_changes_only_what_was_sent() {
    let w = world();
    let app = app!(w.t.db);
    let path = w.expand("/posts/{alice_public}");
    let unpublished = send!(
        app,
        request(&w, Alice, "PATCH", &path, Some(r#"{"publishedAt":null}"#))
    );
    assert_eq!(unpublished.status, 200);
    let post = unpublished.json();
    assert_eq!(post["publishedAt"], Value::Null);
    assert_eq!(post["title"], "alice public");
    assert_eq!(
        send!(app, request(&w, Anonymous, "GET", &path, None)).status,
        404
    );
    let republished = send!(
        app,
        request(
            &w,
            Alice,
            "PATCH",
            &path,
            Some(r#"{"publishedAt":"2020-01-02T03:04:05+01:00"}"#)
        )
    );
    assert_eq!(republished.json()["publishedAt"], "2020-01-02T02:04:05Z");
    let unchanged = send!(app, request(&w, Alice, "PATCH", &path, Some("{}"))).json();
    assert_eq!(unchanged["publishedAt"], "2020-01-02T02:04:05Z");
    assert_eq!(
        send!(app, request(&w, Anonymous, "GET", &path, None)).status,
        200
    );

    let user = send!(
        app,
        request(
            &w,
            Alice,
            "PATCH",
            "/users/{alice}",
            Some(r#"{"name":"  Alice L.  "}"#)
        )
    )
    .json();
    assert_eq!(
        (user["name"].as_str(), user["email"].as_str()),
        (Some("Alice L."), Some("alice@example.com"))
    );
}

#[actix_web::test]
async fn created_resources_point_to_themselves() {
    let w = world();
    let app = app!(w.t.db);
    let post = send!(
        app,
        request(
            &w,
            Alice,
            "POST",
            "/posts",
            Some(r#"{"title":"  Hi  ","content":"  x  "}"#)
        )
    );
    assert_eq!(post.status, 201);
    let body = post.json();
    assert_eq!(
        post.header("location"),
        Some(format!("/posts/{}", body["id"]).as_str())
    );
    assert_eq!(body["authorId"], Value::from(w.alice.id.clone()));
    assert_eq!(body["title"], "Hi");
    assert_eq!(body["content"], "  x  ");
    assert_eq!(body["publishedAt"], Value::Null);
    let user = send!(
        app,
        request(
            &w,
            Admin,
            "POST",
            "/users",
            Some(r#"{"email":" New@Example.COM","name":"N","role":"admin"}"#)
        )
    );
    assert_eq!(user.status, 201);
    let body = user.json();
    assert_eq!(body["email"], "new@example.com");
    assert_eq!(body["role"], "admin");
    assert_eq!(
        user.header("location"),
        Some(format!("/users/{}", body["id"].as_str().unwrap()).as_str())
    );
}
