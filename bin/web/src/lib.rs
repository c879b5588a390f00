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
mod serve;
pub mod views;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, Route};

pub use error::{ApiError, ApiResult};
pub use routes::{ENDPOINTS, Endpoint, Verb};
pub use serve::ServeArgs;

/// What every handler shares: the threads that run database work, and through
/// them the database.
#[derive(Debug, Clone)]
pub struct AppState {
    executor: db::Executor,
}

impl AppState {
    /// Starts the database threads (`DB_READ_THREADS` readers and one writer),
    /// shared by every HTTP worker.
    pub fn new(db: db::Db) -> Result<Self, db::Error> {
        Ok(Self {
            executor: db::Executor::start(db)?,
        })
    }

    pub fn db(&self) -> &db::Db {
        self.executor.db()
    }

    pub fn executor(&self) -> &db::Executor {
        &self.executor
    }

    /// Runs `f` on a reader connection (one snapshot) on the read threads.
    pub async fn read<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut domain::Connection) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.executor.read(f).await?)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the write thread: committed
    /// when it returns `Ok`.
    pub async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut domain::Connection) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.executor.write(f).await?)
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
