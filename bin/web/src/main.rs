//! The `web` binary: `web serve` (the default) runs the API until SIGTERM/SIGINT,
//! letting in-flight requests finish; `web migrate | rollback | status | backup |
//! restore FILE` are the database commands of the `db` crate with this service's
//! embedded migrations; `web move --to URL` copies every row to another database.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod transfer;

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often a running server folds the WAL back into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(
    about = "The HTTP API and its database commands",
    after_help = "Without a command, `web` runs `web serve`; `web serve --help` lists its settings."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log filter (tracing-subscriber EnvFilter syntax)
    #[arg(long, env = "RUST_LOG", value_name = "FILTER", default_value = "info", global = true,
          value_parser = db::Setting::new(log_filter))]
    rust_log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API on BIND (the default command).
    Serve(Serve),
    /// Copy every row to another database (SQLite or PostgreSQL) in one
    /// transaction, then verify counts and checksums of every table.
    Move(transfer::MoveArgs),
    #[command(flatten)]
    Db(db::cli::Command),
    /// Rebuild the search index of posts from the posts, with a progress bar;
    /// `--check` only checks that it matches them (exit status 1 when not).
    Reindex(Reindex),
}

#[derive(Debug, Parser)]
struct Reindex {
    /// Check the index against the posts instead of rebuilding it.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    db: db::ConfigArgs,
}

#[derive(Debug, Parser)]
#[command(name = "web serve")]
struct Serve {
    #[command(flatten)]
    web: web::ServeArgs,
    #[command(flatten)]
    db: db::ConfigArgs,
}

fn main() -> ExitCode {
    // Before anything is created: the database and its backups are private.
    db::restrict_new_files();
    domain::install_search();
    // Before the arguments: `.env` fills in what the environment leaves unset.
    if let Err(err) = load_dot_env() {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&args.rust_log))
        // Colours only for people: log files and collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    // `web` alone serves, with the settings `web serve` reads.
    let command = args
        .command
        .unwrap_or_else(|| Command::Serve(Serve::parse_from(["web serve"])));
    let outcome = match command {
        Command::Serve(Serve { web, db }) => serve(db.into(), &web),
        Command::Move(args) => transfer::run(args),
        Command::Db(command) => db::cli::run(db::MIGRATIONS, &command).map_err(Into::into),
        Command::Reindex(Reindex { check, db }) => reindex(db.into(), check),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads `.env` from the working folder (or one above it) without overriding the
/// environment; having none is normal.
fn load_dot_env() -> anyhow::Result<()> {
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => Err(err).context("reading .env"),
        _ => Ok(()),
    }
}

fn log_filter(raw: &str) -> Result<String, String> {
    EnvFilter::try_new(raw)
        .map(|_| raw.to_owned())
        .map_err(|err| err.to_string())
}

/// `web reindex [--check]`.
fn reindex(config: db::Config, check: bool) -> anyhow::Result<()> {
    use domain::models::search;
    let db = db::Db::open(&config)?;
    db.migrator(db::MIGRATIONS).ensure_current()?;
    if check {
        return match db.write(search::check)? {
            None => {
                println!("search index: ok");
                Ok(())
            }
            Some(problem) => anyhow::bail!("search index: {problem}; `web reindex` rebuilds it"),
        };
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "reindex {bar:40} {pos}/{len} posts {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let indexed = db.write(|conn| {
        search::rebuild(conn, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
    })?;
    bar.finish_and_clear();
    println!(
        "search index: rebuilt from {indexed} posts in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

fn serve(config: db::Config, settings: &web::ServeArgs) -> anyhow::Result<()> {
    let bind = settings.bind.as_str();
    let database = config.database.to_string();
    // Held until exit: `restore` refuses to replace the file under a server.
    let _lock = db::ServerLock::acquire(&config)?;
    let db = db::Db::open(&config).with_context(|| format!("opening {database}"))?;
    db.migrator(db::MIGRATIONS)
        .ensure_current()
        .with_context(|| format!("refusing to serve {database}"))?;
    let state = web::AppState::new(db.clone()).context("starting the database threads")?;
    let (stop, stopped) = mpsc::channel::<()>();
    let maintenance = {
        let db = db.clone();
        thread::spawn(move || maintain(&db, &stopped))
    };
    let body_timeout = settings.body_timeout();
    let app = move || web::app(state.clone()).app_data(body_timeout);
    let served = actix_web::rt::System::new().block_on(async move {
        let server = actix_web::HttpServer::new(app)
            .bind(bind)
            .with_context(|| format!("binding {bind}"))?
            .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
            .workers(settings.web_workers)
            .client_request_timeout(settings.client_request_timeout())
            .keep_alive(settings.keep_alive())
            .max_connections(settings.web_max_connections)
            .client_disconnect_timeout(settings.client_disconnect_timeout())
            .run();
        tracing::info!(bind, database, "serving");
        server.await.context("serving")
    });
    drop(stop);
    let _ = maintenance.join();
    served?;
    tracing::info!("stopped accepting; in-flight requests done");
    // Fold the WAL back into the file so the next start (or a copy) begins clean.
    if let Err(err) = db.checkpoint() {
        tracing::warn!(error = %err, "final checkpoint failed");
    }
    drop(db);
    tracing::info!("database closed");
    Ok(())
}

/// Background upkeep until `stop` is dropped: passive checkpoints keep the WAL
/// bounded between automatic ones, and scheduled backups (`BACKUP_INTERVAL`) run
/// on their own connection, so writers are never blocked for their duration.
fn maintain(db: &db::Db, stop: &mpsc::Receiver<()>) {
    // (interval, when the next one is due), when backups are scheduled.
    let mut backups = db
        .config()
        .backup_interval
        .map(|every| (every, Instant::now() + every));
    if backups.is_some() && db.is_postgres() {
        // Backups of a PostgreSQL database are pg_dump's; say so once, not every interval.
        tracing::warn!("BACKUP_INTERVAL is ignored on PostgreSQL: schedule pg_dump instead");
        backups = None;
    }
    let wake_every = backups.map_or(CHECKPOINT_EVERY, |(every, _)| CHECKPOINT_EVERY.min(every));
    loop {
        match stop.recv_timeout(wake_every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Err(err) = db.checkpoint_passive() {
            tracing::warn!(error = %err, "checkpoint failed");
        }
        if let Some((every, due)) = &mut backups
            && Instant::now() >= *due
        {
            *due = Instant::now() + *every;
            let started = Instant::now();
            match db.backup(&|_, _, _| {}) {
                Ok(backup) => tracing::info!(
                    file = %backup.path.display(),
                    bytes = backup.manifest.size,
                    ms = started.elapsed().as_millis() as u64,
                    "scheduled backup verified"
                ),
                Err(err) => tracing::error!(error = %err, "scheduled backup failed"),
            }
        }
    }
}
