//! Operations endpoints: liveness, readiness and the OpenAPI document. They ignore
//! the `Authorization` header, and `/health` and `/ready` run their checks on
//! actix's blocking threads (`web::block`), not on `db`'s executor: a read lane
//! saturated by requests must not make a live server look dead or unready.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::get;
use actix_web::web::{self, Json};

use super::State;
use crate::error::{ApiError, ApiResult};
use crate::routes::ServiceConfig;
use crate::views::{self, Health, LastBackup, Readiness};

/// The process is alive; also reports the age of the newest verified backup.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
#[get("/health")]
pub async fn health(state: State) -> Json<Health> {
    let executor = state.executor().clone();
    // Reading the backup folder is blocking I/O; liveness must not fail on it.
    // Ignoring a failed `web::block` is deliberate: the process is alive anyway.
    let latest = web::block(move || db::latest_backup(executor.db().config()))
        .await
        .ok()
        .and_then(|found| {
            found
                .inspect_err(|err| tracing::warn!(error = %err, "cannot read the newest backup"))
                .ok()
        })
        .flatten();
    Json(Health {
        status: "ok",
        database: state.db().backend(),
        last_backup: latest.map(|m| LastBackup {
            at: views::rfc3339(m.created_at.into()),
            age_seconds: (chrono::Utc::now() - m.created_at).num_seconds(),
            file: m.file,
        }),
    })
}

/// The database answers, is at exactly this build's schema, and takes writes:
/// while writes fail because the disk is full, 503 saying so.
#[utoipa::path(tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, response = crate::openapi::Unavailable),
    ))]
#[get("/ready")]
pub async fn ready(state: State) -> ApiResult<Json<Readiness>> {
    // Not ready while writes fail: a balancer should send them elsewhere. The
    // probe looks for room itself, as no write may come to clear the mark.
    // (A SQLite file's disk: PostgreSQL's server reports its own.)
    if let Some(since) = state.disk_full().since()
        && let Some(database) = state.db().config().database.sqlite_path()
    {
        let disk_full = state.disk_full().clone();
        let database = database.to_owned();
        if !web::block(move || disk_full.probe(&database)).await? {
            return Err(ApiError::NotReady(format!(
                "writes are failing because the disk is full (since {}); free space on \
                 the database's disk",
                views::rfc3339(since)
            )));
        }
    }
    let executor = state.executor().clone();
    // Reading the applied migrations is the query that proves the database answers.
    let checked =
        web::block(move || executor.db().migrator(db::MIGRATIONS).ensure_current()).await?;
    match checked {
        Ok(()) => Ok(Json(Readiness {
            status: "ready",
            database: state.db().backend(),
        })),
        Err(err @ (db::Error::MigrationsPending(_) | db::Error::SchemaTooNew(_))) => {
            Err(ApiError::NotReady(err.to_string()))
        }
        Err(db::Error::Busy) => Err(ApiError::Busy),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::NotReady("the database does not answer".into()))
        }
    }
}

/// This document.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json")))]
#[get("/openapi.json")]
pub async fn openapi() -> ApiResult<HttpResponse> {
    static DOC: OnceLock<Result<String, String>> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        crate::routes::document()
            .to_pretty_json()
            .map_err(|e| e.to_string())
    });
    match doc {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(json.as_str())),
        Err(err) => Err(ApiError::Internal(err.clone())),
    }
}

/// Fallback for paths no route matches.
pub async fn unknown_route() -> ApiResult<HttpResponse> {
    Err(ApiError::NotFound("no route matches this path"))
}

/// Registers and documents this module's operations.
pub(crate) fn routes(cfg: &mut ServiceConfig<'_>) {
    cfg.service(health).service(ready).service(openapi);
}
