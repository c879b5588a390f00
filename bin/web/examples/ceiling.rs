//! The HTTP ceiling for `make bench`: the same actix-web server, workers and
//! middleware (request ids, request log, compression) as `web serve`, answering
//! `GET /posts/{id}` with a constant post of the size the demo data has, without
//! touching the database. The real server's throughput is reported as a share of
//! this one's.

use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{Json, Path, get};
use actix_web::{App, HttpServer};

async fn constant(id: Path<i64>) -> Json<::web::views::Post> {
    Json(::web::views::Post {
        id: id.into_inner(),
        title: "Post 4242: sqlite and rust".into(),
        content: "sqlite rust diesel backup query index page cursor write read lock wal schema \
                  token server file sqlite rust diesel backup query index page cursor write \
                  read lock wal schema token server file sqlite rust diesel backup query index"
            .into(),
        author_id: "demo-000042".into(),
        published_at: Some("2026-01-01T01:10:42Z".into()),
    })
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
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .route("/posts/{id}", get().to(constant))
                .wrap(Compress::default())
                .wrap(from_fn(::web::middleware::request_log))
        })
        .bind(&bind)?
        .run()
        .await
    })
}
