//! The route table against the OpenAPI document and against the real router.

use std::collections::BTreeSet;

use actix_web::http::Method;
use actix_web::test::TestRequest;
use serde_json::Value;
use utoipa::OpenApi;

use crate::common::{self, app, bearer, send};
use web::ENDPOINTS;
use web::openapi::ApiDoc;

fn doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

#[test]
fn the_document_lists_exactly_the_routes_and_statuses_of_the_table() {
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
    let table: BTreeSet<_> = ENDPOINTS
        .iter()
        .map(|e| {
            (
                e.verb.as_str().to_owned(),
                e.path.to_owned(),
                e.statuses.iter().copied().collect::<BTreeSet<u16>>(),
            )
        })
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "in the table, not the document: {missing:#?}\nin the document, not the table: {extra:#?}"
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

/// Every table row reaches a handler: no unknown-route 404, no 405.
#[actix_web::test]
async fn every_table_route_is_routed() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let post = common::post(&t.db, &admin, "p", None);
    let app = app!(t.db);
    for endpoint in ENDPOINTS {
        let id = if endpoint.path.starts_with("/posts") {
            post.to_string()
        } else if endpoint.path.starts_with("/tokens") {
            admin.token_id.clone()
        } else {
            admin.id.clone()
        };
        let path = endpoint.path.replace("{id}", &id);
        let method = Method::from_bytes(endpoint.verb.as_str().as_bytes()).unwrap();
        let reply = send!(
            app,
            TestRequest::default()
                .method(method)
                .uri(&path)
                .insert_header(bearer(&admin.token))
                .insert_header(("content-type", "application/json"))
                .set_payload("{}")
        );
        assert_ne!(reply.status, 405, "{} {path}", endpoint.verb.as_str());
        if reply.status == 404 {
            assert_ne!(
                reply.json()["detail"],
                "no route matches this path",
                "{} {path}",
                endpoint.verb.as_str()
            );
        }
    }
}

async fn constant() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().body("constant")
}

/// The bench's ceiling: one operation answered by another handler, everything else
/// (the other methods on its path, other paths, errors) served as usual.
#[actix_web::test]
async fn a_replacement_swaps_one_operation_only() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let post = common::post(&t.db, &admin, "p", None);
    let replacement = web::Replacement {
        verb: web::Verb::Get,
        path: "/posts/{id}",
        handler: |r| r.to(constant),
    };
    let app = actix_web::test::init_service(web::app(
        web::AppState::new(t.db.clone()).unwrap(),
        Some(replacement),
    ))
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
