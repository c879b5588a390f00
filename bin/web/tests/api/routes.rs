//! The OpenAPI document, which is the route table, against the contract and
//! against the real router.

use std::collections::BTreeSet;

use actix_web::test::TestRequest;
use serde_json::Value;

use crate::common::{self, app, bearer, send};

fn doc() -> Value {
    serde_json::to_value(web::routes::document()).unwrap()
}

/// The contract's table (CONTRACT.md, section 3), each operation with every status
/// it can answer besides 405 (every write: 507, the disk is full; 408 where a
/// body may not arrive in time).
const CONTRACT: &[(&str, &str, &[u16])] = &[
    ("GET", "/health", &[200]),
    ("GET", "/ready", &[200, 503]),
    ("GET", "/openapi.json", &[200]),
    ("GET", "/posts", &[200, 400, 401, 500, 503]),
    (
        "POST",
        "/posts",
        &[201, 400, 401, 403, 408, 409, 413, 415, 422, 500, 503, 507],
    ),
    ("GET", "/posts/{id}", &[200, 400, 401, 404, 500, 503]),
    (
        "PATCH",
        "/posts/{id}",
        &[200, 400, 401, 403, 404, 408, 413, 415, 422, 500, 503, 507],
    ),
    (
        "DELETE",
        "/posts/{id}",
        &[204, 400, 401, 403, 404, 500, 503, 507],
    ),
    ("GET", "/me", &[200, 401, 500, 503]),
    ("GET", "/users", &[200, 400, 401, 403, 500, 503]),
    (
        "POST",
        "/users",
        &[201, 400, 401, 403, 408, 409, 413, 415, 422, 500, 503, 507],
    ),
    ("GET", "/users/{id}", &[200, 401, 403, 404, 500, 503]),
    (
        "PATCH",
        "/users/{id}",
        &[
            200, 400, 401, 403, 404, 408, 409, 413, 415, 422, 500, 503, 507,
        ],
    ),
    (
        "DELETE",
        "/users/{id}",
        &[204, 401, 403, 404, 409, 500, 503, 507],
    ),
    (
        "POST",
        "/users/{id}/tokens",
        &[
            201, 400, 401, 403, 404, 408, 409, 413, 415, 422, 500, 503, 507,
        ],
    ),
    (
        "GET",
        "/users/{id}/tokens",
        &[200, 400, 401, 403, 404, 500, 503],
    ),
    (
        "DELETE",
        "/tokens/{id}",
        &[204, 401, 403, 404, 500, 503, 507],
    ),
];

#[test]
fn the_document_lists_exactly_the_contracts_operations_and_statuses() {
    let doc = doc();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses: BTreeSet<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|s| s.parse().unwrap())
                .collect();
            documented.insert((method.to_uppercase(), path.clone(), statuses));
        }
    }
    let table: BTreeSet<_> = CONTRACT
        .iter()
        .map(|(method, path, statuses)| {
            (
                (*method).to_owned(),
                (*path).to_owned(),
                statuses.iter().copied().collect::<BTreeSet<u16>>(),
            )
        })
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "in the contract, not the document: {missing:#?}\nin the document, not the contract: {extra:#?}"
    );
}

#[test]
fn the_document_is_strict_and_names_the_bearer_scheme() {
    let doc = doc();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = &doc["components"]["schemas"];
    for body in [
        "NewUserBody",
        "UserChangesBody",
        "NewPostBody",
        "PostChangesBody",
    ] {
        assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
    }
    assert_eq!(
        schemas["NewPostBody"]["required"],
        serde_json::json!(["title", "content"])
    );
    assert_eq!(
        schemas["Post"]["properties"]["publishedAt"]["type"],
        serde_json::json!(["string", "null"])
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let problem = status.starts_with('4') || status.starts_with('5');
                if problem {
                    let reference = response["$ref"].as_str().unwrap_or_default();
                    assert!(
                        reference.starts_with("#/components/responses/"),
                        "{method} {path} {status}"
                    );
                }
            }
            let anonymous_ok = ["/health", "/ready", "/openapi.json"].contains(&path.as_str());
            if !anonymous_ok {
                let security = op["security"].to_string();
                assert!(
                    security.contains("bearer"),
                    "{method} {path} lacks security"
                );
            }
        }
    }
    for response in doc["components"]["responses"].as_object().unwrap().values() {
        assert!(response["content"]["application/problem+json"].is_object());
    }
}

#[actix_web::test]
async fn the_served_document_is_the_generated_one() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    let served = send!(app, TestRequest::get().uri("/openapi.json"));
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(served.json(), doc());
}

/// Every documented operation reaches a handler: no unknown-route 404, no 405.
#[actix_web::test]
async fn every_documented_operation_is_routed() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let post = common::post(&t.db, &admin, "p", None);
    let app = app!(t.db);
    let operations = web::routes::operations();
    assert_eq!(operations.len(), CONTRACT.len());
    for op in operations {
        let id = if op.path.starts_with("/posts") {
            post.to_string()
        } else if op.path.starts_with("/tokens") {
            admin.token_id.clone()
        } else {
            admin.id.clone()
        };
        let path = op.path.replace("{id}", &id);
        let reply = send!(
            app,
            TestRequest::default()
                .method(op.method.clone())
                .uri(&path)
                .insert_header(bearer(&admin.token))
                .insert_header(("content-type", "application/json"))
                .set_payload("{}")
        );
        assert_ne!(reply.status, 405, "{} {path}", op.method);
        if reply.status == 404 {
            assert_ne!(
                reply.json()["detail"],
                "no route matches this path",
                "{} {path}",
                op.method
            );
        }
    }
}

/// Another method on a documented path is 405 and lists the path's methods.
#[actix_web::test]
async fn another_method_on_a_known_path_is_405_with_allow() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    let reply = send!(app, TestRequest::put().uri("/posts/1"));
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, PATCH, DELETE"));
    let reply = send!(app, TestRequest::delete().uri("/posts"));
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, POST"));
    let reply = send!(app, TestRequest::get().uri("/nowhere"));
    assert_eq!(reply.status, 404);
}

async fn constant() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().body("constant")
}

/// The bench's ceiling builds its own `App`: one resource in front of
/// `web::configure` that answers GET only. Every other method on its path, other
/// paths and errors are served as usual.
#[actix_web::test]
async fn a_resource_in_front_of_configure_swaps_one_operation_only() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let post = common::post(&t.db, &admin, "p", None);
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(
                web::AppState::new(t.db.clone()).unwrap(),
            ))
            .service(
                actix_web::web::resource("/posts/{id}")
                    .guard(actix_web::guard::Get())
                    .to(constant),
            )
            .configure(web::configure)
            .wrap(actix_web::middleware::from_fn(web::middleware::request_id))
            .wrap(web::middleware::request_log()),
    )
    .await;
    let replaced = send!(app, TestRequest::get().uri("/posts/999999"));
    assert_eq!(
        (replaced.status, replaced.text().as_str()),
        (200, "constant")
    );
    let deleted = send!(
        app,
        TestRequest::delete()
            .uri(&format!("/posts/{post}"))
            .insert_header(bearer(&admin.token))
    );
    assert_eq!(deleted.status, 204);
    let listed = send!(app, TestRequest::get().uri("/posts"));
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["items"], serde_json::json!([]));
    let wrong = send!(app, TestRequest::put().uri("/posts/1"));
    assert_eq!(wrong.status, 405);
}
