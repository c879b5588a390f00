//! `GET /posts?q=`: ranked matches with snippets under the visibility of every
//! list, keyset pages in rank order, and 400 (never 500) for a `q` it cannot read.

use actix_web::test::TestRequest;
use serde_json::Value;

use crate::common::{self, app, bearer, send};

/// `q` as a query-string value.
fn encoded(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_q_it_cannot_read_is_400_with_the_reason() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    for (q, says) in [
        ("", "empty"),
        ("   ", "empty"),
        ("*", "letter or digit"),
        ("\"", "letter or digit"),
        (&"x".repeat(10_000), "at most 200"),
        ("\"rust lang", "unmatched double quote"),
        ("NEAR(rust lang, 3)", "NEAR"),
        ("title:rust", "column filters"),
        ("{title content}:rust", "column filters"),
        ("rust AND content : go", "column filters"),
    ] {
        let reply = send!(
            app,
            TestRequest::get().uri(&format!("/posts?q={}", encoded(q)))
        );
        assert_eq!(reply.status, 400, "{q:?}: {}", reply.text());
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(says), "{q:?}: {detail}");
    }
    // FTS5 syntax that is not refused is read as words, never as syntax.
    for q in [
        "rust OR go",
        "rust NOT go",
        "c++ ^start",
        "a* b* -c",
        "(x)",
        "'; DROP TABLE posts; --",
    ] {
        let reply = send!(
            app,
            TestRequest::get().uri(&format!("/posts?q={}", encoded(q)))
        );
        assert_eq!(reply.status, 200, "{q:?}: {}", reply.text());
        assert_eq!(reply.json()["items"], Value::Array(vec![]), "{q:?}");
    }
}

#[actix_web::test]
async fn matches_come_best_first_with_a_plain_text_snippet() {
    let t = common::database(|c| c);
    let ann = common::member(&t.db, "ann@example.com", None);
    let app = app!(t.db);
    let past = Some(common::hours_from_now(-1));
    let in_content = common::post(&t.db, &ann, "Sunday notes", past);
    let in_title = common::post(&t.db, &ann, "A <b>Café</b> review", past);
    let draft = common::post(&t.db, &ann, "café draft", None);
    send!(
        app,
        TestRequest::patch()
            .uri(&format!("/posts/{in_content}"))
            .insert_header(bearer(&ann.token))
            .set_json(serde_json::json!({"content": "We met at the CAFE by the river."}))
    );

    let page = send!(app, TestRequest::get().uri("/posts?q=cafe")).json();
    assert_eq!(ids(&page), [in_title, in_content]);
    assert!(page["nextCursor"].is_null());
    let first = &page["items"][0];
    assert_eq!(first["title"], "A <b>Café</b> review");
    // The passage of the content that matched (`common::post` writes "content
    // of" the title), as plain text: the markup is text too.
    assert_eq!(first["snippet"]["text"], "content of A <b>Café</b> review");
    assert_eq!(
        first["snippet"]["highlights"],
        serde_json::json!([[16, 20]])
    );
    let second = &page["items"][1]["snippet"];
    assert_eq!(second["text"], "We met at the CAFE by the river.");
    assert_eq!(second["highlights"], serde_json::json!([[14, 18]]));

    // The owner also finds the draft; prefix and filters combine.
    let own = send!(
        app,
        TestRequest::get()
            .uri("/posts?q=caf&published=false")
            .insert_header(bearer(&ann.token))
    )
    .json();
    assert_eq!(ids(&own), [draft]);
    let by_other = send!(app, TestRequest::get().uri("/posts?q=cafe&authorId=nobody")).json();
    assert_eq!(ids(&by_other), Vec::<i64>::new());

    // Without q, no snippet at all.
    let list = send!(app, TestRequest::get().uri("/posts")).json();
    assert!(list["items"][0].get("snippet").is_none(), "{list}");
}

#[actix_web::test]
async fn pages_of_a_search_follow_its_cursor() {
    let t = common::database(|c| c);
    let ann = common::member(&t.db, "ann@example.com", None);
    let app = app!(t.db);
    let past = Some(common::hours_from_now(-1));
    let mut all: Vec<i64> = (0..12)
        .map(|n| common::post(&t.db, &ann, &"walnut ".repeat(n % 3 + 1), past))
        .collect();
    let whole = ids(&send!(app, TestRequest::get().uri("/posts?q=walnut&limit=100")).json());
    let mut seen = Vec::new();
    let mut uri = "/posts?q=walnut&limit=5".to_owned();
    loop {
        let page = send!(app, TestRequest::get().uri(&uri)).json();
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(next) => uri = format!("/posts?q=walnut&limit=5&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, whole);
    seen.sort_unstable();
    all.sort_unstable();
    assert_eq!(seen, all);
    // A cursor of the plain list is not one of a search.
    let list = send!(app, TestRequest::get().uri("/posts?limit=1")).json();
    let foreign = list["nextCursor"].as_str().unwrap();
    let reply = send!(
        app,
        TestRequest::get().uri(&format!("/posts?q=walnut&cursor={foreign}"))
    );
    assert_eq!(reply.status, 400);
}
