//! The `studio` binary: opens the database, prints a one-time login URL on a line
//! of its own, and serves the studio on `STUDIO_BIND` (loopback only) until
//! SIGTERM/SIGINT.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "studio",
    about = "Browse and edit the database in a browser, on this machine only"
)]
struct Args {
    #[command(flatten)]
    studio: studio::StudioArgs,
    #[command(flatten)]
    db: db::ConfigArgs,
    /// Log filter (tracing-subscriber EnvFilter syntax)
    #[arg(long, env = "RUST_LOG", value_name = "FILTER", default_value = "info")]
    rust_log: String,
}

fn main() -> ExitCode {
    db::restrict_new_files();
    domain::install_search();
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("error: reading .env: {err}");
        return ExitCode::FAILURE;
    }
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&args.rust_log).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let (host, addr) =
        studio::loopback_host(&args.studio.studio_bind).map_err(anyhow::Error::msg)?;
    let config: db::Config = args.db.into();
    let database = config.database.to_string();
    let db = db::Db::open(&config).with_context(|| format!("opening {database}"))?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let token = studio::session::random_token()
        .map_err(|e| anyhow::anyhow!("no randomness for the login token: {e}"))?;
    let state = actix_web::web::Data::new(studio::State::new(
        db,
        &host,
        bound,
        args.studio.write,
        token.clone(),
    ));
    let url = state.login_url(&token);
    let mode = if state.write {
        "write mode"
    } else {
        "read-only"
    };
    eprintln!(
        "studio on {} ({mode}), database {database}; open this link once to sign in:",
        state.origin
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}").context("printing the login URL")?;
        out.flush().context("printing the login URL")?;
    }
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(move || studio::app(state.clone()))
            .listen(listener)
            .context("listening")?
            .workers(2)
            .shutdown_timeout(5)
            .run()
            .await
            .context("serving")
    })
}
