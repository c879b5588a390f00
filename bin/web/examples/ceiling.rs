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

use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{self as routing, Data, Json, Path};
use actix_web::{App, HttpServer, guard};
use anyhow::Context;

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

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let blocking = std::env::var("CEILING_BLOCK").is_ok_and(|v| v == "1");
    let config = db::Config::from_env()?;
    let state = AppState::new(db::Db::open(&config).context("opening the database")?)?;
    let workers = web::workers_from_env()?;
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            // `web::app` with one more resource in front: it answers GET only, so
            // the other methods on its path and every other route reach the
            // service's own handlers, as in `web serve`.
            let resource = routing::resource("/posts/{id}").guard(guard::Get());
            let resource = if blocking {
                resource.to(constant_blocking)
            } else {
                resource.to(constant)
            };
            App::new()
                .app_data(Data::new(state.clone()))
                .service(resource)
                .configure(web::configure)
                .wrap(Compress::default())
                .wrap(from_fn(web::middleware::request_id))
                .wrap(web::middleware::request_log())
        })
        .workers(workers)
        .bind(&bind)?
        .run()
        .await
    })?;
    Ok(())
}
