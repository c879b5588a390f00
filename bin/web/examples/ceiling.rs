//! The HTTP ceiling for `make bench`: the same server as `web serve` (application,
//! routes, extractors, middleware, workers and database threads, the same database
//! opened) with one difference: `GET /posts/{id}` answers a constant post of the
//! average size of the demo posts (about 360 bytes of JSON) instead of reading it.
//! The real server's throughput is reported as a share of this one's, so the ratio
//! is what reading the post costs.
//!
//! With `CEILING_BLOCK=1` the constant is built on the read thread, with a reader
//! connection checked out, as the real handler reads there: the ceiling of any
//! handler that hands a read to the database threads, whatever the read is.
//!
//! With `CEILING_READ=raw` the post is read, but by hand: a raw prepared statement
//! (rusqlite, cached) on a reader connection of the worker's own, with the
//! server's memory map and one read transaction held for the server's life (the
//! load only reads). That is what reading a post costs at the least: SQLite's own
//! work and the row turned into the answer, none of `db`'s or Diesel's.
//!
//! With `CEILING_MIDDLEWARE=0` the app has none of `web::app`'s middleware
//! (request ids, request logs, compression negotiation, closing on an unread
//! body): the A/B of what that middleware costs per request.

use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::web::{self as routing, Data, Json, Path};
use actix_web::{App, HttpServer, guard};
use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};

use domain::Timestamp;
use rusqlite::OptionalExtension;
use web::extract::{Auth, Input};
use web::{ApiResult, AppState, views};

async fn constant(auth: Auth, id: Input<Path<i64>>) -> ApiResult<Json<views::Post>> {
    let _caller = auth.actor();
    Ok(Json(post(id?.into_inner())))
}

async fn constant_blocking(
    state: Data<AppState>,
    auth: Auth,
    id: Input<Path<i64>>,
) -> ApiResult<Json<views::Post>> {
    let _caller = auth.actor();
    let id = id?.into_inner();
    Ok(Json(state.read(move |_conn| Ok(post(id))).await?))
}

thread_local! {
    /// The worker's raw reader, its read transaction begun on the first read.
    static RAW: std::cell::RefCell<Option<rusqlite::Connection>> =
        const { std::cell::RefCell::new(None) };
}

/// The state is extracted as the real handler extracts it, and left unused.
async fn raw(
    _state: Data<AppState>,
    config: Data<db::Config>,
    auth: Auth,
    id: Input<Path<i64>>,
) -> ApiResult<Json<views::Post>> {
    let _caller = auth.actor();
    let id = id?.into_inner();
    let now = Timestamp::now().unix();
    let post = RAW.with_borrow_mut(|reader| {
        let conn = match reader {
            Some(conn) => conn,
            None => reader.insert(raw_reader(&config)?),
        };
        conn.prepare_cached(
            "SELECT id, title, content, author_id, published_at FROM posts WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok(views::Post {
                id: row.get(0)?,
                title: row.get(1)?,
                content: row.get(2)?,
                author_id: row.get(3)?,
                published_at: row
                    .get::<_, Option<i64>>(4)?
                    .filter(|at| *at <= now)
                    .and_then(Timestamp::from_unix)
                    .map(views::rfc3339),
            })
        })
        .optional()
    });
    match post {
        Ok(Some(post)) if post.published_at.is_some() => Ok(Json(post)),
        Ok(_) => Err(domain::Error::NotFound.into()),
        // A bench tool: any failure to read is the 500 a failing database gives.
        Err(err) => {
            tracing::error!(%err, "raw read");
            Err(actix_web::error::ErrorInternalServerError(err).into())
        }
    }
}

fn raw_reader(config: &db::Config) -> rusqlite::Result<rusqlite::Connection> {
    let db::Database::Sqlite(path) = &config.database else {
        return Err(rusqlite::Error::InvalidPath(
            "CEILING_READ=raw is for SQLite".into(),
        ));
    };
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA mmap_size = {}; PRAGMA cache_size = -{}; BEGIN; SELECT count(*) FROM sqlite_schema;",
        config.mmap_size, config.cache_kib
    ))?;
    Ok(conn)
}

fn post(id: i64) -> views::Post {
    views::Post {
        id,
        title: "Post 4242: sqlite and rust".into(),
        content: "sqlite rust diesel backup query index page cursor write read lock wal schema \
                  token server file sqlite rust diesel backup query index page cursor write \
                  read lock wal schema token server file sqlite rust diesel backup query index \
                  page cursor"
            .into(),
        author_id: "demo-000042".into(),
        published_at: Some("2026-01-01T01:10:42Z".into()),
    }
}

/// The settings of `web serve`, read the same way.
#[derive(Debug, Parser)]
#[command(about = "The HTTP ceiling of `make bench`")]
struct Args {
    #[command(flatten)]
    web: web::ServeArgs,
    #[command(flatten)]
    db: db::ConfigArgs,
}

fn main() -> anyhow::Result<()> {
    db::restrict_new_files();
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => return Err(err).context("reading .env"),
        _ => {}
    }
    // Its own port by default, so it can run beside `web serve`.
    let command = Args::command().mut_arg("bind", |bind| bind.default_value("127.0.0.1:8090"));
    let args = Args::from_arg_matches(&command.get_matches()).unwrap_or_else(|err| err.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let blocking = std::env::var("CEILING_BLOCK").is_ok_and(|v| v == "1");
    let raw_read = std::env::var("CEILING_READ").is_ok_and(|v| v == "raw");
    let middleware = std::env::var("CEILING_MIDDLEWARE").map_or(true, |v| v != "0");
    let config: db::Config = args.db.into();
    let state = AppState::new(db::Db::open(&config).context("opening the database")?)?;
    let config = Data::new(config);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            // `web::app` with one more resource in front: it answers GET only, so
            // the other methods on its path and every other route reach the
            // service's own handlers, as in `web serve`.
            let resource = routing::resource("/posts/{id}").guard(guard::Get());
            let resource = if raw_read {
                resource.to(raw)
            } else if blocking {
                resource.to(constant_blocking)
            } else {
                resource.to(constant)
            };
            let app = App::new()
                .app_data(Data::new(state.clone()))
                .app_data(config.clone())
                .service(resource)
                .configure(web::configure);
            // The same middleware as `web::app`, in the same order, or none.
            app.wrap(Condition::new(middleware, Compress::default()))
                .wrap(Condition::new(
                    middleware,
                    from_fn(web::middleware::close_on_unread_body),
                ))
                .wrap(Condition::new(
                    middleware,
                    from_fn(web::middleware::request_id),
                ))
                .wrap(Condition::new(middleware, web::middleware::request_log()))
        })
        .workers(args.web.web_workers)
        .bind(&args.web.bind)?
        .run()
        .await
    })?;
    Ok(())
}
