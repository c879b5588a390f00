//! The settings of `web serve` beyond the database's, declared once for the server
//! and for the HTTP ceiling of `make bench`.

use std::time::Duration;

use actix_web::http::KeepAlive;
use db::Setting;

/// Where the server listens, how many HTTP workers it runs, and how long it waits
/// for slow or idle clients; flatten beside [`db::ConfigArgs`]. Each is a flag and
/// an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServeArgs {
    /// Where the HTTP server listens
    #[arg(long, env = "BIND", value_name = "ADDR", default_value = "127.0.0.1:8080",
          value_parser = Setting::<String>::parsed())]
    pub bind: String,
    /// HTTP worker threads (default: one per CPU); they share the database threads
    #[arg(long, env = "WEB_WORKERS", value_name = "N", default_value_t = cpus(),
          value_parser = Setting::<usize>::count())]
    pub web_workers: usize,
    /// Time a client has to send a request's head (method, path, headers) after
    /// connecting, else 408 and the connection is closed
    #[arg(long, env = "WEB_CLIENT_REQUEST_TIMEOUT_MS", value_name = "MS", default_value_t = 5000,
          value_parser = Setting::<u64>::count())]
    pub web_client_request_timeout_ms: u64,
    /// Time a request's body has to arrive in full once its head is in, else 408
    /// and the connection is closed
    #[arg(long, env = "WEB_BODY_TIMEOUT_MS", value_name = "MS", default_value_t = 10_000,
          value_parser = Setting::<u64>::count())]
    pub web_body_timeout_ms: u64,
    /// Seconds an idle connection is kept open for the client's next request; 0
    /// closes each connection after its response
    #[arg(long, env = "WEB_KEEP_ALIVE_SECS", value_name = "SECONDS", default_value_t = 5,
          value_parser = Setting::<u64>::parsed())]
    pub web_keep_alive_secs: u64,
    /// Open connections per worker; past it, new ones wait until one closes
    #[arg(long, env = "WEB_MAX_CONNECTIONS", value_name = "N", default_value_t = 25_000,
          value_parser = Setting::<usize>::count())]
    pub web_max_connections: usize,
    /// Time a closing connection gets to shut down cleanly before it is dropped;
    /// 0 drops it at once
    #[arg(long, env = "WEB_CLIENT_DISCONNECT_TIMEOUT_MS", value_name = "MS", default_value_t = 1000,
          value_parser = Setting::<u64>::parsed())]
    pub web_client_disconnect_timeout_ms: u64,
}

impl ServeArgs {
    /// `HttpServer::client_request_timeout`.
    pub fn client_request_timeout(&self) -> Duration {
        Duration::from_millis(self.web_client_request_timeout_ms)
    }

    /// The deadline of [`crate::extract::Body`], registered as app data.
    pub fn body_timeout(&self) -> crate::extract::BodyTimeout {
        crate::extract::BodyTimeout(Duration::from_millis(self.web_body_timeout_ms))
    }

    /// `HttpServer::keep_alive`: off for 0.
    pub fn keep_alive(&self) -> KeepAlive {
        match self.web_keep_alive_secs {
            0 => KeepAlive::Disabled,
            secs => KeepAlive::Timeout(Duration::from_secs(secs)),
        }
    }

    /// `HttpServer::client_disconnect_timeout`.
    pub fn client_disconnect_timeout(&self) -> Duration {
        Duration::from_millis(self.web_client_disconnect_timeout_ms)
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}
