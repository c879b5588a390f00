//! The HTTP layer of the service: routing, extractors and the mapping of errors to
//! problem+json. Nothing here writes SQL or decides permissions: handlers hand one
//! domain call to `db`'s executor.
//!
//! `main.rs` and the tests build the same application with [`app`] (or
//! [`configure`] plus [`AppState`] as app data inside another `App`).

pub mod disk;
pub mod docs;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod idempotency;
pub mod middleware;
pub mod openapi;
pub mod requests;
pub mod routes;
mod serve;
pub mod views;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse};

pub use error::{ApiError, ApiResult};
pub use routes::Operation;
pub use serve::ServeArgs;

/// The most shares a search's ranking is split into, whatever the read threads.
pub const SEARCH_SHARES: u32 = 8;

/// What every handler shares: the threads that run database work, and through
/// them the database.
#[derive(Debug, Clone)]
pub struct AppState {
    executor: db::Executor,
    /// Tokens whose "last used" this process wrote, with when: at most one write
    /// an hour per token, however many requests carry it.
    touched: Arc<Mutex<HashMap<String, i64>>>,
    /// Whether writes are failing because the disk is full (for `/ready`).
    disk_full: disk::DiskFull,
    /// When this process last pruned expired idempotency keys (Unix seconds).
    keys_pruned_at: Arc<AtomicI64>,
}

/// Expired idempotency keys are pruned at most this often by one process.
const KEY_PRUNE_INTERVAL_SECS: i64 = 60;

/// Forget remembered tokens past this many, so the map stays small.
const TOUCHED_MAX: usize = 10_000;

impl AppState {
    /// Starts the database threads (`DB_READ_THREADS` readers and one writer),
    /// shared by every HTTP worker.
    pub fn new(db: db::Db) -> Result<Self, db::Error> {
        Ok(Self {
            executor: db::Executor::start(db)?,
            touched: Arc::default(),
            disk_full: disk::DiskFull::default(),
            keys_pruned_at: Arc::default(),
        })
    }

    /// Records, off the request's path, that the token `id` was used at `now`: a
    /// job on the write lane that nobody awaits, at most once an hour per token,
    /// so a request that only reads stays a read.
    pub fn touch_token(&self, id: String, now: domain::Timestamp) {
        {
            let Ok(mut touched) = self.touched.lock() else {
                return;
            };
            let due = now.unix() - domain::models::token::LAST_USED_GRANULARITY_SECS;
            if touched.get(&id).is_some_and(|&at| at > due) {
                return;
            }
            if touched.len() >= TOUCHED_MAX {
                touched.clear();
            }
            touched.insert(id.clone(), now.unix());
        }
        self.write_unawaited("record a token's last use", move |conn| {
            domain::Token::touch(conn, &id, now)
        });
    }

    /// Deletes a batch of expired idempotency keys, off the request's path: a job
    /// on the write lane that nobody awaits, at most once a minute, after a keyed
    /// write. (Inside each keyed write, the range it reads made concurrent
    /// PostgreSQL writers collide.)
    pub fn prune_keys(&self, now: domain::Timestamp) {
        let last = self.keys_pruned_at.load(Ordering::Relaxed);
        if now.unix() - last < KEY_PRUNE_INTERVAL_SECS
            || self
                .keys_pruned_at
                .compare_exchange(last, now.unix(), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.write_unawaited("prune expired idempotency keys", move |conn| {
            domain::models::idempotency::prune_expired(conn, now)
        });
    }

    /// Runs `f` on the write lane without anyone awaiting it: housekeeping that
    /// must not hold up the request that caused it. A failure is logged (it could
    /// not `what`) and, like any write's, noted for `/ready` when the disk is full.
    fn write_unawaited<T, F>(&self, what: &'static str, f: F)
    where
        F: FnMut(&mut domain::Connection) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let executor = self.executor.clone();
        let disk_full = self.disk_full.clone();
        actix_web::rt::spawn(async move {
            let written = executor.write(f).await;
            disk_full.record(&written);
            if let Err(err) = written {
                tracing::warn!(error = %err, "could not {what}");
            }
        });
    }

    pub fn db(&self) -> &db::Db {
        self.executor.db()
    }

    pub fn executor(&self) -> &db::Executor {
        &self.executor
    }

    pub fn disk_full(&self) -> &disk::DiskFull {
        &self.disk_full
    }

    /// Runs `f` on a reader connection (one snapshot) on the read threads.
    pub async fn read<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut domain::Connection) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.executor.read(f).await?)
    }

    /// Runs a search with its ranking split into one share per read thread (at
    /// most [`SEARCH_SHARES`]), ranked side by side, then merged into its page on
    /// one more read: on an idle server a search takes about its share of the time.
    /// A narrow window first, the whole one when that is too narrow (see
    /// [`domain::Search`]).
    pub async fn search(&self, search: domain::Search) -> ApiResult<domain::Page<domain::Hit>> {
        let parts = if search.can_find() {
            u32::try_from(self.executor.read_threads())
                .unwrap_or(1)
                .clamp(1, SEARCH_SHARES)
        } else {
            0
        };
        let mut search = search;
        loop {
            let step = Arc::new(search.clone());
            let windows = (0..parts)
                .map(|n| {
                    let step = Arc::clone(&step);
                    move |conn: &mut domain::Connection| step.window(conn, n, parts)
                })
                .collect();
            let shares = self.executor.read_all(windows).await?;
            let ranked = Arc::clone(&step);
            match self
                .executor
                .read(move |conn| ranked.page(conn, shares))
                .await?
            {
                Some(page) => return Ok(page),
                None => search.widen(),
            }
        }
    }

    /// Runs `f` at once on this worker's own reader connection on SQLite (see
    /// [`db::Executor::read_here`]), on a read thread on PostgreSQL: for point reads.
    pub async fn read_here<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut domain::Connection) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.executor.read_here(f).await?)
    }

    /// Runs `f` in a write transaction on a write thread (`BEGIN IMMEDIATE` on
    /// SQLite, serializable on PostgreSQL, where a lost race runs `f` again):
    /// committed when it returns `Ok`. A full disk is noted for `/ready`.
    pub async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnMut(&mut domain::Connection) -> domain::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let written = self.executor.write(f).await;
        self.disk_full.record(&written);
        Ok(written?)
    }
}

/// Everything [`app`] serves, for an `App` built elsewhere (the bench's ceiling
/// adds one handler in front of it): the extractor configs that answer
/// problem+json, every operation of [`routes::api`], a 405 (with `Allow`) for a
/// known path with another method, and a 404 for unknown paths. Expects
/// `Data<AppState>` as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(extract::json_config())
        .app_data(extract::payload_config())
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
    docs::configure(cfg);
    cfg.default_service(web::to(handlers::system::unknown_route));
}

/// The whole application: state, routes, compression, request ids, request logs,
/// and no lingering over an unread chunked body.
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
        .wrap(from_fn(middleware::close_on_unread_body))
        .wrap(from_fn(middleware::request_id))
        .wrap(middleware::request_log())
}
