//! The HTTP layer of the service: routing, extractors and the mapping of errors to
//! problem+json. Nothing here writes SQL or decides permissions: handlers hand one
//! domain call to `db`'s executor.
//!
//! `main.rs` and the tests build the same application with [`app`] (or
//! [`configure`] plus [`AppState`] as app data inside another `App`).

pub mod error;
pub mod extract;
pub mod handlers;
pub mod middleware;
pub mod openapi;
pub mod requests;
pub mod routes;
pub mod views;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse};

pub use error::{ApiError, ApiResult};
pub use routes::Operation;

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

/// Everything [`app`] serves, for an `App` built elsewhere (the bench's ceiling
/// adds one handler in front of it): the extractor configs that answer
/// problem+json, every operation of [`routes::api`], a 405 (with `Allow`) for a
/// known path with another method, and a 404 for unknown paths. Expects
/// `Data<AppState>` as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(extract::json_config())
        .app_data(extract::path_config())
        .app_data(extract::query_config());
    // Registered and documented in one pass; the document itself is built once,
    // by `routes::document`, from the same function.
    routes::api(&mut routes::ServiceConfig::new(cfg));
    // Checked after every operation: only a path whose methods all missed lands
    // here. An operation's resource guards its method, so the router moves on.
    for (path, allow) in routes::allowed_methods() {
        cfg.service(web::resource(path).default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        })));
    }
    cfg.default_service(web::to(handlers::system::unknown_route));
}

/// The whole application: state, routes, compression, request ids and request logs.
pub fn app(
    state: AppState,
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
        .configure(configure)
        .wrap(Compress::default())
        .wrap(from_fn(middleware::request_id))
        .wrap(middleware::request_log())
}

/// HTTP workers: `WEB_WORKERS`, one per CPU when unset or blank; anything but a
/// whole number of at least 1 is an error naming the key. Database work runs on the
/// threads of [`AppState`], shared by all workers.
pub fn workers_from_env() -> Result<usize, db::Error> {
    Ok(db::count_from_env("WEB_WORKERS")?
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get)))
}
