//! Domain queries against the same query as a raw prepared statement (rusqlite's
//! statement cache on the same bundled SQLite): the ratio is Diesel's and the
//! domain's overhead over what SQLite itself costs.

#![expect(clippy::unwrap_used, reason = "benchmark set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use domain::models::post::NewPost;
use domain::models::user::NewUser;
use domain::{Actor, Post, PostFilter, Role, Timestamp};
use std::hint::black_box;

const POSTS: i64 = 10_000;
const NOW: i64 = 1_800_000_000;

/// The same row the domain returns, read the raw way.
#[expect(
    dead_code,
    reason = "fields are read only to build the row, as the domain does"
)]
struct RawPost {
    id: i64,
    title: String,
    content: String,
    author_id: String,
    published_at: Option<i64>,
}

impl RawPost {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            title: r.get(1)?,
            content: r.get(2)?,
            author_id: r.get(3)?,
            published_at: r.get(4)?,
        })
    }
}

fn setup(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("bench.db").to_str().unwrap().to_owned();
    let mut sqlite = SqliteConnection::establish(&path).unwrap();
    sqlite
        .batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    sqlite.run_pending_migrations(db::MIGRATIONS).unwrap();
    let mut conn = db::Connection::Sqlite(sqlite);
    NewUser {
        id: "author".into(),
        email: "author@example.com".into(),
        name: "Author".into(),
        role: Role::User,
        created_at: Timestamp::from_unix(NOW).unwrap(),
    }
    .insert(&mut conn)
    .unwrap();
    let content = "lorem ipsum ".repeat(40);
    conn.transaction(|c| {
        for chunk in (1..=POSTS).collect::<Vec<_>>().chunks(1000) {
            let titles: Vec<String> = chunk.iter().map(|i| format!("Post {i}")).collect();
            let rows: Vec<NewPost<'_>> = titles
                .iter()
                .enumerate()
                .map(|(k, title)| NewPost {
                    title,
                    content: &content,
                    author_id: "author",
                    published_at: (k % 10 != 0).then(|| Timestamp::from_unix(NOW - 10).unwrap()),
                })
                .collect();
            NewPost::insert_many(c, &rows)?;
        }
        Ok::<_, domain::Error>(())
    })
    .unwrap();
    path
}

fn ids() -> impl FnMut() -> i64 {
    let mut x: i64 = 7;
    move || {
        x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
        x % POSTS + 1
    }
}

fn point_query(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(&dir);
    let now = Timestamp::from_unix(NOW).unwrap();
    let mut group = c.benchmark_group("point");

    let mut conn = db::Connection::Sqlite(SqliteConnection::establish(&path).unwrap());
    let mut next = ids();
    group.bench_function("domain", |b| {
        b.iter(|| {
            // Drafts are NotFound for anonymous callers, as over HTTP.
            let _ = black_box(Post::find_visible(
                &mut conn,
                &Actor::Anonymous,
                next(),
                now,
            ));
        })
    });

    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut next = ids();
    let mut stmt = raw
        .prepare("SELECT id, title, content, author_id, published_at FROM posts WHERE id = ?1")
        .unwrap();
    group.bench_function("raw", |b| {
        b.iter(|| {
            let row = stmt.query_row([next()], RawPost::from_row);
            let visible = row
                .ok()
                .filter(|p| p.published_at.is_some_and(|at| at <= NOW));
            black_box(visible);
        })
    });
    group.finish();
}

fn list_query(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(&dir);
    let now = Timestamp::from_unix(NOW).unwrap();
    let mut group = c.benchmark_group("list20");

    let mut conn = db::Connection::Sqlite(SqliteConnection::establish(&path).unwrap());
    group.bench_function("domain", |b| {
        b.iter(|| {
            black_box(
                Post::list(
                    &mut conn,
                    &Actor::Anonymous,
                    &PostFilter::default(),
                    None,
                    20,
                    now,
                )
                .unwrap(),
            )
        })
    });

    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = raw
        .prepare(
            "SELECT id, title, content, author_id, published_at FROM posts \
             WHERE id < ?1 AND published_at IS NOT NULL AND published_at <= ?2 \
             ORDER BY id DESC LIMIT 21",
        )
        .unwrap();
    group.bench_function("raw", |b| {
        b.iter(|| {
            let rows: Vec<RawPost> = stmt
                .query_map([i64::MAX, NOW], RawPost::from_row)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            black_box(rows)
        })
    });
    group.finish();
}

criterion_group!(benches, point_query, list_query);
criterion_main!(benches);
