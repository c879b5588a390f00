//! The `web` binary: configuration, database, schema check, then serve until
//! SIGTERM/SIGINT, letting in-flight requests finish.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    // Configuration first: it loads `.env`, which may set RUST_LOG.
    let config = db::Config::from_env();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        // Colours only for people: log files and collectors get plain text.
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    match config.context("reading configuration").and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: db::Config) -> anyhow::Result<()> {
    let bind = std::env::var("BIND")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let database = config.database_path.display().to_string();
    let db = db::Db::open(&config).with_context(|| format!("opening {database}"))?;
    db.migrator(domain::MIGRATIONS)
        .ensure_current()
        .with_context(|| format!("refusing to serve {database}"))?;
    let state = web::AppState::new(db.clone());
    actix_web::rt::System::new().block_on(async move {
        let server = actix_web::HttpServer::new(move || web::app(state.clone()))
            .bind(&bind)
            .with_context(|| format!("binding {bind}"))?
            .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
            .run();
        tracing::info!(bind, database, "serving");
        server.await.context("serving")
    })?;
    tracing::info!("stopped accepting; in-flight requests done");
    // Fold the WAL back into the file so the next start (or a copy) begins clean.
    if let Err(err) = db.checkpoint() {
        tracing::warn!(error = %err, "final checkpoint failed");
    }
    drop(db);
    tracing::info!("database closed");
    Ok(())
}
