//! The minimal reference server of `make bench`: actix-web and rusqlite with
//! nothing else, answering the bench's three loads on the same database file:
//! `GET /posts/{id}`, `GET /posts?limit=20` and `POST /posts`. Reads run inline
//! on the HTTP worker, on a connection of its own, with cached statements; each
//! write is one `BEGIN IMMEDIATE` transaction on one shared writer connection.
//! No authentication (the bench's token is ignored), no middleware, no request
//! ids, no logs: what `web serve` is measured against.
//!
//! Settings from the environment: `DATABASE_URL` (a path), `BIND`,
//! `WEB_WORKERS` (default: one per CPU the process may run on) and
//! `SQLITE_SYNCHRONOUS` (default `NORMAL`, as `web serve`).

use std::cell::RefCell;
use std::sync::Mutex;

use actix_web::web::{self as routing, Data, Json, Path, Query};
use actix_web::{App, HttpResponse, HttpServer};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Post {
    id: i64,
    title: String,
    content: String,
    author_id: String,
    published_at: Option<String>,
}

impl Post {
    const COLUMNS: &str = "id, title, content, author_id, published_at";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Post> {
        Ok(Post {
            id: row.get(0)?,
            title: row.get(1)?,
            content: row.get(2)?,
            author_id: row.get(3)?,
            published_at: row.get::<_, Option<i64>>(4)?.and_then(|secs| {
                DateTime::from_timestamp(secs, 0)
                    .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
            }),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    items: Vec<Post>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPost {
    title: String,
    content: String,
    published_at: Option<DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

struct Shared {
    path: String,
    synchronous: String,
    writer: Mutex<Connection>,
    author_id: String,
}

thread_local! {
    /// The worker's own reader connection, opened on its first request.
    static READER: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn open(path: &str, synchronous: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))?;
    Ok(conn)
}

fn read<T>(
    shared: &Shared,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    READER.with_borrow_mut(|reader| {
        let conn = match reader {
            Some(conn) => conn,
            None => reader.insert(open(&shared.path, &shared.synchronous)?),
        };
        f(conn)
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn failed(err: rusqlite::Error) -> HttpResponse {
    HttpResponse::InternalServerError().body(err.to_string())
}

async fn get_post(shared: Data<Shared>, id: Path<i64>) -> HttpResponse {
    let found = read(&shared, |conn| {
        conn.prepare_cached(&format!(
            "SELECT {} FROM posts WHERE id = ? AND published_at IS NOT NULL \
             AND published_at <= ?",
            Post::COLUMNS
        ))?
        .query_row(params![id.into_inner(), now()], Post::from_row)
        .optional()
    });
    match found {
        Ok(Some(post)) => HttpResponse::Ok().json(post),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(err) => failed(err),
    }
}

async fn list_posts(shared: Data<Shared>, query: Query<Limit>) -> HttpResponse {
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let page = read(&shared, |conn| {
        // Below a cursor (here, none yet: the largest id), as `web serve` asks: so
        // SQLite walks the rowids down instead of sorting the published posts.
        conn.prepare_cached(&format!(
            "SELECT {} FROM posts WHERE id < ? AND published_at IS NOT NULL \
             AND published_at <= ? ORDER BY id DESC LIMIT ?",
            Post::COLUMNS
        ))?
        .query_map(params![i64::MAX, now(), limit], Post::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()
    });
    match page {
        Ok(items) => HttpResponse::Ok().json(Page {
            next_cursor: items.last().map(|post| post.id.to_string()),
            items,
        }),
        Err(err) => failed(err),
    }
}

async fn create_post(shared: Data<Shared>, new: Json<NewPost>) -> HttpResponse {
    let new = new.into_inner();
    let created = (|| {
        let mut conn = shared
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let post = tx
            .prepare_cached(&format!(
                "INSERT INTO posts (title, content, author_id, published_at) \
                 VALUES (?, ?, ?, ?) RETURNING {}",
                Post::COLUMNS
            ))?
            .query_row(
                params![
                    new.title,
                    new.content,
                    shared.author_id,
                    new.published_at.map(|at| at.timestamp())
                ],
                Post::from_row,
            )?;
        tx.commit()?;
        Ok(post)
    })();
    match created {
        Ok(post) => HttpResponse::Created().json(post),
        Err(err) => failed(err),
    }
}

fn main() -> anyhow::Result<()> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let path = var("DATABASE_URL", "app.db");
    let synchronous = var("SQLITE_SYNCHRONOUS", "NORMAL");
    let bind = var("BIND", "127.0.0.1:8091");
    let writer = open(&path, &synchronous).context("opening the database")?;
    // Posts are written as the first admin, as `web serve` writes them for the
    // bench's token.
    let author_id: String = writer
        .query_row(
            "SELECT id FROM users WHERE role = 'admin' ORDER BY id LIMIT 1",
            [],
            |row| row.get(0),
        )
        .context("finding an admin to write posts as")?;
    let shared = Data::new(Shared {
        path,
        synchronous,
        writer: Mutex::new(writer),
        author_id,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .route("/posts/{id}", routing::get().to(get_post))
            .route("/posts", routing::get().to(list_posts))
            .route("/posts", routing::post().to(create_post))
    });
    if let Ok(workers) = std::env::var("WEB_WORKERS") {
        server = server.workers(workers.parse().context("WEB_WORKERS")?);
    }
    actix_web::rt::System::new().block_on(server.bind(&bind)?.run())?;
    Ok(())
}
