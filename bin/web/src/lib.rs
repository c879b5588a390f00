//! The HTTP layer of the service: routing, extractors and the mapping of errors to
//! problem+json. Nothing here writes SQL: handlers call one domain function inside
//! one blocking section with a connection from `db`.
//!
//! `main.rs` and the tests build the same application with [`app`] (or
//! [`configure`] plus [`AppState`] as app data inside another `App`).

pub mod error;
pub mod extract;
pub mod handlers;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod views;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, Route};

pub use error::{ApiError, ApiResult};
pub use routes::{ENDPOINTS, Endpoint, Verb};

/// What every handler shares: the database handle.
#[derive(Debug, Clone)]
pub struct AppState {
    db: Arc<db::Db>,
}

impl AppState {
    pub fn new(db: db::Db) -> Self {
        Self { db: Arc::new(db) }
    }

    pub fn db(&self) -> &db::Db {
        &self.db
    }

    /// Runs `f` on a reader connection (one snapshot) off the async workers.
    pub async fn read<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut domain::Conn) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = Arc::clone(&self.db);
        web::block(move || db.read(|conn| f(conn).map_err(ApiError::from))).await?
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer, off the async
    /// workers: committed when it returns `Ok`.
    pub async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut domain::Conn) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = Arc::clone(&self.db);
        web::block(move || db.write(|conn| f(conn).map_err(ApiError::from))).await?
    }
}

/// Registers every route of [`ENDPOINTS`], the extractor configs that answer
/// problem+json, a 405 (with `Allow`) for a known path with another method, and a
/// 404 for unknown paths. Expects `Data<AppState>` as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, None);
}

/// One operation of [`ENDPOINTS`] answered by another handler; see [`app`].
#[derive(Debug, Clone, Copy)]
pub struct Replacement {
    pub verb: Verb,
    pub path: &'static str,
    pub handler: fn(Route) -> Route,
}

fn register(cfg: &mut web::ServiceConfig, replacement: Option<Replacement>) {
    cfg.app_data(extract::json_config())
        .app_data(extract::path_config())
        .app_data(extract::query_config());
    for (path, endpoints) in routes::resources() {
        let allow = endpoints
            .iter()
            .map(|e| e.verb.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut resource = web::resource(path).default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        }));
        for endpoint in endpoints {
            let handler = match replacement {
                Some(r) if r.verb == endpoint.verb && r.path == endpoint.path => r.handler,
                _ => endpoint.handler,
            };
            resource = resource.route(handler(web::method(endpoint.verb.method())));
        }
        cfg.service(resource);
    }
    cfg.default_service(web::to(handlers::system::unknown_route));
}

/// The whole application: state, routes, compression, request ids and request logs.
/// `replacement` swaps the handler of one operation and leaves everything else
/// (routes, extractor configs, middleware) as it is: `make bench` measures its HTTP
/// ceiling as this server answering `GET /posts/{id}` with a constant post. The
/// service itself passes `None`.
pub fn app(
    state: AppState,
    replacement: Option<Replacement>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(Data::new(state))
        .configure(move |cfg| register(cfg, replacement))
        .wrap(Compress::default())
        .wrap(from_fn(middleware::request_log))
}

/// The server's threads: `WEB_WORKERS` HTTP workers (default: one per CPU), each
/// with `WEB_BLOCKING_THREADS` threads for its `web::block` calls (default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads {
    pub workers: usize,
    pub blocking: usize,
}

impl Threads {
    pub fn from_env() -> Self {
        let count = |key: &str| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
        };
        Self {
            workers: count("WEB_WORKERS").unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
            }),
            // SQLite work is CPU-bound, so one blocking thread per worker (as many as
            // cores) serves the most: with `make bench` on 2 cores, one per worker
            // gave 8% more reads and 2% more mixed-load throughput than two, and 64
            // serve about 20% fewer reads than 2. More help only when writes wait
            // long on another process's write lock.
            blocking: count("WEB_BLOCKING_THREADS").unwrap_or(1),
        }
    }
}
