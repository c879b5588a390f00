//! The studio: a data browser served by its own binary on a loopback address,
//! server-rendered (maud), with its CSS and JS compiled in. It reads through the
//! `db` crate's reader pool and writes through its single writer, and every change
//! goes through the `domain` crate's validation and rules, as the API's do.

use std::net::SocketAddr;

use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, web};

/// The value of a `Result` whose error is the page to answer with at once.
macro_rules! or_page {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(page) => return page,
        }
    };
}
pub(crate) use or_page;

pub mod edit;
pub mod export;
pub mod ops;
pub mod pages;
pub mod session;
pub mod sql;
pub mod tables;

/// The studio's own settings; the database's come from `db::ConfigArgs`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Studio")]
pub struct StudioArgs {
    /// Where the studio listens: a loopback address and port
    #[arg(long, env = "STUDIO_BIND", value_name = "HOST:PORT", default_value = "127.0.0.1:4983",
          value_parser = db::Setting::<String>::parsed())]
    pub studio_bind: String,
    /// Allow edits, inserts, deletes and backups (read-only without it; `make studio write=1`)
    #[arg(long = "write", env = "STUDIO_WRITE")]
    pub write: bool,
}

/// What every handler shares.
#[derive(Debug)]
pub struct State {
    pub db: db::Db,
    pub sessions: session::Sessions,
    /// Edits allowed (`--write`).
    pub write: bool,
    /// `HOST:PORT` as the browser sends it in `Host`.
    pub host: String,
    /// `http://HOST:PORT`, what a same-origin form sends in `Origin`.
    pub origin: String,
}

impl State {
    /// `bound` is the address actually bound (the port resolved when 0 was
    /// asked for); `host` the name it was asked for, which the browser uses.
    pub fn new(
        db: db::Db,
        host: &str,
        bound: SocketAddr,
        write: bool,
        login_token: String,
    ) -> State {
        let host = format!("{host}:{}", bound.port());
        State {
            db,
            sessions: session::Sessions::new(login_token),
            write,
            origin: format!("http://{host}"),
            host,
        }
    }

    /// The URL that signs a browser in, once.
    pub fn login_url(&self, token: &str) -> String {
        format!("{}/login?token={token}", self.origin)
    }
}

/// The host part of `HOST:PORT`, refused unless it is a loopback address: the
/// studio edits the database and must not be reachable from other machines.
pub fn loopback_host(bind: &str) -> Result<(String, SocketAddr), String> {
    use std::net::ToSocketAddrs;
    let (host, _) = bind
        .rsplit_once(':')
        .ok_or_else(|| format!("STUDIO_BIND {bind:?} must be HOST:PORT"))?;
    let addrs: Vec<SocketAddr> = bind
        .to_socket_addrs()
        .map_err(|e| format!("STUDIO_BIND {bind:?}: {e}"))?
        .collect();
    match addrs.first() {
        Some(addr) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok((host.to_owned(), *addr)),
        _ => Err(format!(
            "STUDIO_BIND {bind:?} is not a loopback address: the studio serves this machine only (use 127.0.0.1:PORT)"
        )),
    }
}

/// The whole application, for `main` and for tests alike.
pub fn app(
    state: web::Data<State>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::FormConfig::default().limit(1 << 20))
        .wrap(from_fn(session::guard))
        .route("/login", web::get().to(session::login))
        .route("/assets/studio.css", web::get().to(css))
        .route("/assets/studio.js", web::get().to(js))
        .route("/", web::get().to(pages::index))
        .route("/migrations", web::get().to(ops::migrations))
        .route("/backups", web::get().to(ops::backups))
        .route("/backups/take", web::post().to(ops::take_backup))
        .route("/backups/verify", web::post().to(ops::verify_backup))
        .route("/facts", web::get().to(ops::facts))
        .route("/t/{table}", web::get().to(pages::table))
        .route("/t/{table}/row", web::get().to(pages::row))
        .route("/t/{table}/export.{format}", web::get().to(export::export))
        .route("/t/{table}/new", web::get().to(edit::new_form))
        .route("/t/{table}/insert", web::post().to(edit::insert))
        .route("/t/{table}/update", web::post().to(edit::update))
        .route("/t/{table}/delete", web::get().to(edit::confirm_delete))
        .route("/t/{table}/delete", web::post().to(edit::delete))
        .default_service(web::to(|| async {
            pages::plain(actix_web::http::StatusCode::NOT_FOUND, "No such page.")
        }))
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("../assets/studio.css"))
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("../assets/studio.js"))
}
