//! No list query scans the posts table: whatever the caller, filter and cursor,
//! SQLite's plan for `Post::list` searches by rowid or an index and stops after a
//! page. The SQL is the one Diesel really sends, captured by instrumentation.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::sql_types::Text;
use domain::models::post::NewPost;
use domain::models::user::NewUser;
use domain::{Actor, Post, PostFilter, Role, Timestamp, User};

#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// Records the SQL of every statement the connection runs.
#[derive(Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let text = query.to_string();
            // Display is "<sql> -- binds: [...]"; the plan does not depend on the values.
            let sql = text.split(" -- binds:").next().unwrap_or(&text).to_owned();
            self.0.lock().unwrap().push(sql);
        }
    }
}

fn plan(conn: &mut db::Connection, sql: &str) -> Vec<String> {
    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<PlanRow>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.detail)
        .collect()
}

#[test]
fn no_list_query_scans_the_posts_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.db");
    let mut conn = common::migrated_with_ann(&path);
    let published = Timestamp::from_unix(1_700_000_000);
    let content = "x".repeat(100);
    let titles: Vec<String> = (0..2000).map(|i| format!("post {i}")).collect();
    let rows: Vec<NewPost<'_>> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| NewPost {
            title,
            content: &content,
            author_id: "ann",
            published_at: if i % 10 == 0 { None } else { published },
        })
        .collect();
    NewPost::insert_many(&mut conn, &rows).unwrap();
    // Statistics as a production file would have them after `ANALYZE`.
    diesel::sql_query("ANALYZE").execute(&mut conn).unwrap();

    let recorded = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(Recorder(recorded.clone()));
    let now = Timestamp::now();
    let actors = [
        Actor::Anonymous,
        Actor::Member {
            id: "ann".into(),
            role: Role::User,
        },
        Actor::Member {
            id: "root".into(),
            role: Role::Admin,
        },
    ];
    let cursor = domain::cursor::encode_post(500);
    let mut listed = 0;
    for actor in &actors {
        for author_id in [None, Some("ann".to_owned())] {
            for published in [None, Some(true), Some(false)] {
                for cursor in [None, Some(cursor.as_str())] {
                    let filter = PostFilter {
                        author_id: author_id.clone(),
                        published,
                    };
                    Post::list(&mut conn, actor, &filter, cursor, 20, now).unwrap();
                    listed += 1;
                }
            }
        }
    }
    User::list(&mut conn, &actors[2], None, 20).unwrap();

    // The detector itself: a list without the keyset bound is a scan.
    let unbounded = plan(
        &mut conn,
        "SELECT * FROM posts WHERE published_at <= 5 ORDER BY id DESC LIMIT 21",
    );
    assert!(
        unbounded.iter().any(|s| s.starts_with("SCAN posts")),
        "{unbounded:?}"
    );

    let statements: Vec<String> = recorded.lock().unwrap().clone();
    let post_lists: Vec<&String> = statements
        .iter()
        .filter(|s| s.contains("FROM `posts`") && s.contains("ORDER BY"))
        .collect();
    assert!(
        post_lists.len() >= listed - 4,
        "captured {} of {listed}",
        post_lists.len()
    );
    for sql in post_lists {
        let steps = plan(&mut conn, sql);
        for step in &steps {
            assert!(
                !(step.starts_with("SCAN") && step.contains("posts")),
                "{sql}\nscans posts: {steps:?}"
            );
        }
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{sql}\nsorts outside an index: {steps:?}"
        );
    }
}

/// The users list (admins) and a user's tokens page by a row-value keyset
/// `(created_at, id) < (?, ?)`: SQLite searches their `(created_at, id)` indexes
/// from the cursor, never scans the table, never sorts.
#[test]
fn users_and_tokens_lists_search_their_keyset_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.db");
    let mut conn = common::migrated(&path);
    let admin = Actor::Member {
        id: "u-0000".into(),
        role: Role::Admin,
    };
    for i in 0..500 {
        NewUser {
            id: format!("u-{i:04}"),
            email: format!("u{i}@example.com"),
            name: "U".into(),
            role: if i == 0 { Role::Admin } else { Role::User },
            created_at: Timestamp::from_unix(1_700_000_000 + i / 3).unwrap(),
        }
        .insert(&mut conn)
        .unwrap();
    }
    for i in 0..50 {
        domain::Token::issue(
            &mut conn,
            &admin,
            "u-0000",
            None,
            Timestamp::from_unix(1_700_000_000 + i / 2).unwrap(),
        )
        .unwrap();
    }
    diesel::sql_query("ANALYZE").execute(&mut conn).unwrap();

    let recorded = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(Recorder(recorded.clone()));
    let users = User::list(&mut conn, &admin, None, 20).unwrap();
    User::list(&mut conn, &admin, users.next_cursor.as_deref(), 20).unwrap();
    let tokens = domain::Token::list(&mut conn, &admin, "u-0000", None, 20).unwrap();
    domain::Token::list(
        &mut conn,
        &admin,
        "u-0000",
        tokens.next_cursor.as_deref(),
        20,
    )
    .unwrap();

    let statements: Vec<String> = recorded.lock().unwrap().clone();
    for (table, index) in [
        ("users", "users_created_at_id_idx"),
        ("tokens", "tokens_user_id_created_at_idx"),
    ] {
        let lists: Vec<&String> = statements
            .iter()
            .filter(|s| s.contains(&format!("FROM `{table}`")) && s.contains("ORDER BY"))
            .collect();
        assert_eq!(lists.len(), 2, "{table}: {statements:#?}");
        let with_cursor = lists[1];
        assert!(
            with_cursor.contains(&format!(r#"("{table}"."created_at", "{table}"."id") < ("#)),
            "{with_cursor}"
        );
        for sql in lists {
            let steps = plan(&mut conn, sql);
            assert!(
                steps.iter().any(|s| s.contains(index)),
                "{sql}\ndoes not use {index}: {steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE")),
                "{sql}\nsorts outside an index: {steps:?}"
            );
        }
        let steps = plan(&mut conn, with_cursor);
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with(&format!("SEARCH {table}")) && s.contains("created_at")),
            "{with_cursor}\nthe cursor does not bound the index search: {steps:?}"
        );
    }
    // The detector itself: without the keyset bound the index is walked from its
    // end (a SCAN, fine for a first page), which the SEARCH check above refuses.
    let first_page = plan(
        &mut conn,
        "SELECT id FROM users ORDER BY created_at DESC, id DESC LIMIT 21",
    );
    assert!(
        !first_page.iter().any(|s| s.starts_with("SEARCH users")),
        "{first_page:?}"
    );
}
