//! The HTTP ceiling for `make bench`: the same actix-web server, workers and
//! middleware (request ids, request log, compression) as `web serve`, answering
//! `GET /posts/{id}` with a constant post of the size the demo data has, without
//! touching the database. The real server's throughput is reported as a share of
//! this one's.
//!
//! With `CEILING_BLOCK=1` the constant is built inside `web::block`, on two
//! blocking threads per worker as `web serve` has: the ceiling of any handler that
//! hands its work to a blocking thread, whatever that work is.

use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{Json, Path, get};
use actix_web::{App, HttpServer};

async fn constant(id: Path<i64>) -> Json<::web::views::Post> {
    Json(post(id.into_inner()))
}

async fn constant_blocking(id: Path<i64>) -> actix_web::Result<Json<::web::views::Post>> {
    let id = id.into_inner();
    Ok(Json(actix_web::web::block(move || post(id)).await?))
}

fn post(id: i64) -> ::web::views::Post {
    ::web::views::Post {
        id,
        title: "Post 4242: sqlite and rust".into(),
        content: "sqlite rust diesel backup query index page cursor write read lock wal schema \
                  token server file sqlite rust diesel backup query index page cursor write \
                  read lock wal schema token server file sqlite rust diesel backup query index"
            .into(),
        author_id: "demo-000042".into(),
        published_at: Some("2026-01-01T01:10:42Z".into()),
    }
}

fn main() -> std::io::Result<()> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let blocking = std::env::var("CEILING_BLOCK").is_ok_and(|v| v == "1");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let route = if blocking {
                get().to(constant_blocking)
            } else {
                get().to(constant)
            };
            App::new()
                .route("/posts/{id}", route)
                .wrap(Compress::default())
                .wrap(from_fn(::web::middleware::request_log))
        })
        .worker_max_blocking_threads(2)
        .bind(&bind)?
        .run()
        .await
    })
}
