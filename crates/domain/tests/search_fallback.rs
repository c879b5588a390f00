//! A service that reuses `db` and `domain` without calling
//! `domain::install_search` still searches: its connections lack `posts_rank`,
//! and search falls back to FTS5's own bm25, with the same pages and scores.
//! Its own test binary, because `install_search` is for the whole process.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use diesel::prelude::*;
use domain::models::post::NewPost;
use domain::{Actor, Post, PostFilter, SearchQuery, Timestamp};

/// Whether the connection has the ranking function (a query on the index that
/// names it runs).
fn has_posts_rank(conn: &mut db::Connection) -> bool {
    diesel::sql_query(
        "SELECT posts_rank(posts_fts, 1, NULL, NULL, 10.0, 1.0) FROM posts_fts \
         WHERE posts_fts MATCH 'sqlite'",
    )
    .execute(conn)
    .map_err(|err| assert!(err.to_string().contains("no such function"), "{err}"))
    .is_ok()
}

/// Every page of a search, as (id, score bits) per hit.
fn pages(conn: &mut db::Connection, words: &str, now: Timestamp) -> Vec<Vec<(i64, u64)>> {
    let query = SearchQuery::parse(words).unwrap();
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let page = Post::search(
            conn,
            &Actor::Anonymous,
            &PostFilter::default(),
            &query,
            cursor.as_deref(),
            7,
            now,
        )
        .unwrap();
        pages.push(
            page.items
                .iter()
                .map(|hit| (hit.post.id, hit.score.to_bits()))
                .collect(),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
    }
}

#[test]
fn search_without_posts_rank_ranks_as_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let mut conn = common::migrated_with_ann(&path);
    let words = ["sqlite", "rust", "diesel", "wal", "index", "page", "backup"];
    let texts: Vec<(String, String)> = (0..300_usize)
        .map(|i| {
            let title = format!("post {i} {}", words[i % words.len()]);
            // Lengths and word counts vary, so bm25 tells the posts apart.
            let content = (0..(5 + i % 37))
                .map(|j| words[(i * 5 + j * 3 + j * j) % words.len()])
                .collect::<Vec<_>>()
                .join(" ");
            (title, content)
        })
        .collect();
    let published = Timestamp::from_unix(1_700_000_000);
    let rows: Vec<NewPost<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, (title, content))| NewPost {
            title,
            content,
            author_id: "ann",
            published_at: if i % 10 == 0 { None } else { published },
        })
        .collect();
    NewPost::insert_many(&mut conn, &rows).unwrap();
    let now = Timestamp::now();

    assert!(
        !has_posts_rank(&mut conn),
        "posts_rank before install_search"
    );
    let queries = ["sqlite", "wal index", "back*", "\"rust diesel\""];
    let fallback: Vec<_> = queries.iter().map(|q| pages(&mut conn, q, now)).collect();

    domain::install_search();
    let mut ranked = common::open(&path);
    assert!(
        has_posts_rank(&mut ranked),
        "no posts_rank after install_search"
    );
    for (query, fallback) in queries.iter().zip(&fallback) {
        let hits: usize = fallback.iter().map(Vec::len).sum();
        assert!(hits > 7, "{query}: {hits} hits, fewer than a page");
        assert_eq!(&pages(&mut ranked, query, now), fallback, "{query}");
    }
}
