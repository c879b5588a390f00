//! Keyset pagination: walking every page while rows are added in between returns
//! each older row exactly once, newest first.

use actix_web::test::TestRequest;

use crate::common::{self, app, bearer, send};

#[actix_web::test]
async fn walking_posts_while_others_are_written_sees_each_older_post_once() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    let past = Some(common::hours_from_now(-1));
    let mut older: Vec<i64> = (0..23)
        .map(|i| common::post(&t.db, &alice, &format!("old {i}"), past))
        .collect();
    older.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/posts?limit=5&cursor={c}"),
            None => "/posts?limit=5".to_owned(),
        };
        let page = send!(app, TestRequest::get().uri(&uri)).json();
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|p| p["id"].as_i64().unwrap()));
        // Someone writes between our page fetches.
        common::post(&t.db, &alice, &format!("new during page {pages}"), past);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 50, "pagination does not end");
    }
    assert_eq!(seen, older);
    assert_eq!(pages, 5);
}

#[actix_web::test]
async fn last_page_has_a_null_cursor_and_limits_apply() {
    let t = common::database(|c| c);
    let alice = common::member(&t.db, "alice@example.com", None);
    let app = app!(t.db);
    for i in 0..25 {
        common::post(
            &t.db,
            &alice,
            &format!("p{i}"),
            Some(common::hours_from_now(-1)),
        );
    }
    let default = send!(app, TestRequest::get().uri("/posts")).json();
    assert_eq!(default["items"].as_array().map(Vec::len), Some(20));
    assert!(default["nextCursor"].is_string());
    let all = send!(app, TestRequest::get().uri("/posts?limit=100")).json();
    assert_eq!(all["items"].as_array().map(Vec::len), Some(25));
    assert!(all["nextCursor"].is_null());
    let one = send!(app, TestRequest::get().uri("/posts?limit=1")).json();
    assert_eq!(one["items"].as_array().map(Vec::len), Some(1));

    let empty = common::database(|c| c);
    let app = app!(empty.db);
    let page = send!(app, TestRequest::get().uri("/posts")).json();
    assert_eq!(page, serde_json::json!({"items": [], "nextCursor": null}));
}

#[actix_web::test]
async fn walking_users_sees_each_once_newest_first() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    for i in 0..11 {
        common::member(&t.db, &format!("u{i}@example.com"), None);
    }
    let app = app!(t.db);
    let mut seen = Vec::new();
    let mut uri = "/users?limit=4".to_owned();
    loop {
        let page = send!(
            app,
            TestRequest::get()
                .uri(&uri)
                .insert_header(bearer(&admin.token))
        )
        .json();
        seen.extend(page["items"].as_array().unwrap().iter().map(|u| {
            (
                u["createdAt"].as_str().unwrap().to_owned(),
                u["id"].as_str().unwrap().to_owned(),
            )
        }));
        match page["nextCursor"].as_str() {
            Some(next) => uri = format!("/users?limit=4&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted);
}
