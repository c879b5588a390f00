//! The settings of `web serve` beyond the database's, declared once for the server
//! and for the HTTP ceiling of `make bench`.

use db::Setting;

/// Where the server listens and how many HTTP workers it runs; flatten beside
/// [`db::ConfigArgs`]. Each is a flag and an environment variable.
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
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}
