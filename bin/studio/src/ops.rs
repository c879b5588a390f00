//! The operations pages: migrations (applied and pending, with dates), backups
//! (the list with their manifests; in write mode, take one and verify one), and
//! the database's facts as read back from it, SQLite's or PostgreSQL's.

use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::prelude::*;
use diesel::sql_types::Text;
use maud::{Markup, html};

use crate::State;
use crate::pages::{Failure, blocking, html, layout, plain};
use crate::session::check_csrf;
use crate::tables::{self, View};

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// `GET /migrations`.
pub async fn migrations(state: web::Data<State>) -> HttpResponse {
    let shared = state.clone();
    let loaded = blocking(move || {
        let status = shared.db.migrator(db::MIGRATIONS).status()?;
        let mut dates = Vec::new();
        if let Some(table) = tables::table("__diesel_schema_migrations") {
            shared.db.read(|conn| {
                tables::for_each_batch(conn, table, &View::first(table), 500, |rows| {
                    dates.extend(rows);
                    true
                })
                .map_err(Failure::from)
            })?;
        }
        Ok((status, dates))
    })
    .await;
    let (status, dates) = crate::or_page!(loaded);
    let run_on = |name: &str| {
        let version = digits(name.split('_').next().unwrap_or(""));
        dates
            .iter()
            .find(|row| row[0].as_deref().map(digits) == Some(version.clone()))
            .and_then(|row| row[1].clone())
    };
    let body = html! {
        h1 { "Migrations" }
        table.list {
            thead { tr { th { "migration" } th { "state" } th { "applied at (UTC)" } } }
            tbody {
                @for name in &status.applied { tr { td { code { (name) } } td { "applied" } td { (run_on(name).unwrap_or_default()) } } }
                @for name in &status.pending { tr.pending { td { code { (name) } } td { strong { "pending" } } td { "—" } } }
                @for version in &status.unknown { tr.unknown { td { code { (version) } } td { "applied by a newer build" } td { "" } } }
            }
        }
        p.hint { (status.applied.len()) " applied, " (status.pending.len()) " pending. " code { "make migrate" } " applies pending ones." }
    };
    html(StatusCode::OK, layout(&state, "Migrations", body))
}

/// The backups, newest first, each with its manifest when it has one.
fn listed(config: &db::Config) -> Result<Vec<(PathBuf, Option<db::Manifest>)>, Failure> {
    Ok(db::list_backups(config)?
        .into_iter()
        .rev()
        .map(|path| {
            let manifest = db::read_manifest(&path).ok();
            (path, manifest)
        })
        .collect())
}

/// `GET /backups`.
pub async fn backups(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    let config = state.db.config().clone();
    let listed = crate::or_page!(blocking(move || listed(&config)).await);
    let csrf = crate::session::csrf(&req);
    html(
        StatusCode::OK,
        layout(
            &state,
            "Backups",
            backups_page(&state, &listed, &csrf, None),
        ),
    )
}

fn backups_page(
    state: &State,
    listed: &[(PathBuf, Option<db::Manifest>)],
    csrf: &str,
    message: Option<Markup>,
) -> Markup {
    let postgres = state.db.is_postgres();
    html! {
        h1 { "Backups" }
        @if let Some(message) = message { (message) }
        @if postgres {
            p { "On PostgreSQL, backups are the server's tools: " code { "pg_dump -Fc -f app.dump \"$DATABASE_URL\"" } "." }
        } @else {
            p.hint { "Folder: " code { (state.db.config().backup_dir.display()) } "; the newest " (state.db.config().backup_keep) " are kept." }
            @if state.write {
                form method="post" action="/backups/take" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Take a backup now" }
                }
            }
            table.list {
                thead { tr { th { "file" } th { "taken (UTC)" } th { "schema" } th.num { "bytes" } th { "rows" } th { "sha256" } @if state.write { th {} } } }
                tbody {
                    @for (path, m) in listed {
                        @let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        tr {
                            td { code { (file) } }
                            @if let Some(m) = m {
                                td { (m.created_at.format("%Y-%m-%d %H:%M:%S")) }
                                td { code { (m.schema_version.clone().unwrap_or_default()) } }
                                td.num { (m.size) }
                                td { @for (t, n) in &m.tables { (t) " " (n) br; } }
                                td { code.hash { (m.sha256.chars().take(16).collect::<String>()) "…" } }
                            } @else {
                                td colspan="5" { em { "no manifest" } }
                            }
                            @if state.write {
                                td { form method="post" action="/backups/verify" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="file" value=(file);
                                    button type="submit" { "Verify" }
                                } }
                            }
                        }
                    }
                    @if listed.is_empty() { tr { td colspan="6" { em { "No backups yet." } } } }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
    file: Option<String>,
}

/// `POST /backups/take`: a verified snapshot now.
pub async fn take_backup(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(page) = check_csrf(&req, form.csrf.as_deref()) {
        return page;
    }
    let shared = state.clone();
    let outcome = crate::or_page!(blocking(move || Ok(shared.db.backup(&|_, _, _| {}))).await);
    let message = match outcome {
        Ok(backup) => {
            html! { p.message role="status" { "Backup taken and verified: " code { (backup.manifest.file) } } }
        }
        Err(err) => html! { p.message.bad role="alert" { "No backup: " (err.to_string()) } },
    };
    after(state, &req, message).await
}

/// Verifies the backup named `file`, only if the list shows it: a name cannot
/// point elsewhere.
fn verify_listed(config: &db::Config, file: &str) -> Result<db::Manifest, db::Error> {
    let path = db::list_backups(config)?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == file))
        .ok_or_else(|| db::Error::Restore(format!("{file} is not one of the backups")))?;
    db::verify_backup(&path, &db::MIGRATIONS, &|_, _, _| {})
}

/// `POST /backups/verify`: checks one backup against its manifest.
pub async fn verify_backup(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(page) = check_csrf(&req, form.csrf.as_deref()) {
        return page;
    }
    let Some(file) = form.file.clone() else {
        return plain(StatusCode::BAD_REQUEST, "Which backup?");
    };
    let config = state.db.config().clone();
    let outcome = crate::or_page!(blocking(move || Ok(verify_listed(&config, &file))).await);
    let message = match outcome {
        Ok(m) => {
            html! { p.message role="status" { "Verified: " code { (m.file) } " matches its manifest and passes SQLite's checks." } }
        }
        Err(err) => {
            html! { p.message.bad role="alert" { "Verification failed: " (err.to_string()) } }
        }
    };
    after(state, &req, message).await
}

async fn after(state: web::Data<State>, req: &HttpRequest, message: Markup) -> HttpResponse {
    let config = state.db.config().clone();
    let listed = blocking(move || listed(&config)).await.unwrap_or_default();
    let csrf = crate::session::csrf(req);
    html(
        StatusCode::OK,
        layout(
            &state,
            "Backups",
            backups_page(&state, &listed, &csrf, Some(message)),
        ),
    )
}

#[derive(QueryableByName)]
struct Fact {
    #[diesel(sql_type = Text)]
    value: String,
}

fn fact(conn: &mut db::Connection, sql: &str) -> Result<String, db::Error> {
    Ok(diesel::sql_query(sql).get_result::<Fact>(conn)?.value)
}

fn file_size(path: &Path) -> String {
    std::fs::metadata(path).map_or_else(
        |_| "absent".into(),
        |m| format!("{} bytes", tables::grouped(m.len() as i64)),
    )
}

/// `GET /facts`: the database as it reports itself.
pub async fn facts(state: web::Data<State>) -> HttpResponse {
    let shared = state.clone();
    let loaded = blocking(move || {
        let db = &shared.db;
        let mut facts: Vec<(String, String)> = vec![
            ("backend".into(), db.backend().into()),
            ("database".into(), db.config().database.to_string()),
        ];
        match db.config().database.sqlite_path() {
            Some(path) => {
                facts.push(("file size".into(), file_size(path)));
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                facts.push(("WAL file size".into(), file_size(Path::new(&wal))));
                let mut conn = db.reader_conn()?;
                for (name, sql) in [
                    ("SQLite version", "SELECT sqlite_version() AS value"),
                    (
                        "page size",
                        "SELECT CAST(page_size AS TEXT) AS value FROM pragma_page_size",
                    ),
                    (
                        "page count",
                        "SELECT CAST(page_count AS TEXT) AS value FROM pragma_page_count",
                    ),
                    (
                        "free pages",
                        "SELECT CAST(freelist_count AS TEXT) AS value FROM pragma_freelist_count",
                    ),
                ] {
                    facts.push((name.into(), fact(&mut conn, sql)?));
                }
                // Read back on the writer, which has them as the API's writer does.
                let mut writer = db.writer_conn()?;
                for name in [
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "journal_size_limit",
                    "wal_autocheckpoint",
                    "cache_size",
                    "mmap_size",
                ] {
                    facts.push((format!("PRAGMA {name}"), db::pragma(&mut writer, name)?));
                }
                drop(writer);
                facts.push((
                    "PRAGMA query_only (readers)".into(),
                    db::pragma(&mut conn, "query_only")?,
                ));
            }
            None => {
                let mut conn = db.reader_conn()?;
                facts.push((
                    "server version".into(),
                    fact(&mut conn, "SELECT version() AS value")?,
                ));
                facts.push((
                    "database size".into(),
                    fact(
                        &mut conn,
                        "SELECT pg_size_pretty(pg_database_size(current_database())) AS value",
                    )?,
                ));
                for name in [
                    "server_version",
                    "max_connections",
                    "shared_buffers",
                    "work_mem",
                    "default_transaction_isolation",
                    "statement_timeout",
                    "idle_in_transaction_session_timeout",
                    "TimeZone",
                    "application_name",
                ] {
                    facts.push((format!("setting {name}"), db::pg_setting(&mut conn, name)?));
                }
            }
        }
        Ok(facts)
    })
    .await;
    let facts = crate::or_page!(loaded);
    let body = html! {
        h1 { "Database" }
        table.record { tbody { @for (name, value) in &facts { tr { th scope="row" { (name) } td { code { (value) } } } } } }
    };
    html(StatusCode::OK, layout(&state, "Database", body))
}
