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
//! With `CEILING_MIDDLEWARE=0` the app has none of `web::app`'s middleware
//! (request ids, request logs, compression negotiation, closing on an unread
//! body): the A/B of what that middleware costs per request.

use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::web::{self as routing, Data, Json, Path};
use actix_web::{App, HttpServer, guard};
use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};

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
    let middleware = std::env::var("CEILING_MIDDLEWARE").map_or(true, |v| v != "0");
    let state = AppState::new(db::Db::open(&args.db.into()).context("opening the database")?)?;
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
            let app = App::new()
                .app_data(Data::new(state.clone()))
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
