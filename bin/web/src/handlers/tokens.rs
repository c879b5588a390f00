//! API tokens: issued for a user (shown once, optionally expiring), listed without
//! their secrets, revoked by their owner or an admin.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{Json, Path, Query};
use actix_web::{delete, get, post};

use domain::models::idempotency::{self, Outcome};
use domain::{Timestamp, Token};

use super::State;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, Input};
use crate::idempotency::{KeyedBody, answer, id_of};
use crate::openapi::{
    BadRequest, BodyTimeout, Forbidden, Internal, KeyConflict, NotFound, PayloadTooLarge,
    Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::requests::{NewTokenBody, PageQuery};
use crate::routes::ServiceConfig;
use crate::views::{IssuedToken, TokenInfo, TokenPage, rfc3339};

/// Issues a token for the caller themselves, or for anyone when an admin asks.
/// The body is optional: without one, or without `expiresAt`, the token never
/// expires.
#[utoipa::path(tag = "tokens",
    params(("id" = String, Path, description = "User id"),
        ("Idempotency-Key" = Option<String>, Header,
            description = crate::idempotency::HEADER_DOC, min_length = 1, max_length = 255,
            pattern = "^[!-~]+$")),
    request_body(content = Option<NewTokenBody>, description = "Optional"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Issued; the secret is shown this once", body = IssuedToken),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = BodyTimeout),
        (status = 409, response = KeyConflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[post("/users/{id}/tokens")]
pub async fn issue(
    state: State,
    auth: Auth,
    user_id: Path<String>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let user_id = user_id.into_inner();
    let body = KeyedBody::read(body).await?;
    let keyed = body.keyed.clone();
    let body: NewTokenBody = body.optional_json()?.unwrap_or_default();
    let expires_at = body.expires_at.map(Timestamp::from);
    let now = Timestamp::now();
    let outcome = state
        .write(move |conn| {
            idempotency::once(
                conn,
                &actor,
                keyed.as_ref(),
                now,
                |conn| Token::issue(conn, &actor, &user_id, expires_at, now),
                // What a retry may see: never the secret.
                |issued| {
                    answer(
                        StatusCode::CREATED,
                        &TokenInfo {
                            id: issued.id.clone(),
                            created_at: rfc3339(issued.created_at),
                            last_used_at: None,
                            expires_at: issued.expires_at.map(rfc3339),
                        },
                    )
                },
            )
        })
        .await?;
    state.prune_keys(now);
    let issued = match outcome {
        Outcome::First { value, .. } => value,
        Outcome::Replay(stored) => {
            let id = id_of(&stored).map_or_else(|| "?".to_owned(), |id| id.to_string());
            return Err(ApiError::Conflict(format!(
                "a token's secret is shown once; this key already issued token {id}"
            )));
        }
    };
    Ok(HttpResponse::Created()
        // The secret must not linger in caches.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IssuedToken::from(issued)))
}

/// A user's tokens, newest first, never their secrets: the user themselves, or
/// anyone's for an admin.
#[utoipa::path(tag = "tokens", params(("id" = String, Path, description = "User id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = TokenPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[get("/users/{id}/tokens")]
pub async fn list(
    state: State,
    auth: Auth,
    user_id: Path<String>,
    query: Input<Query<PageQuery>>,
) -> ApiResult<Json<TokenPage>> {
    let actor = auth.member()?;
    let user_id = user_id.into_inner();
    let page = query?.into_inner().parse()?;
    let found = state
        .read(move |conn| Token::list(conn, &actor, &user_id, page.cursor.as_deref(), page.limit))
        .await?;
    Ok(Json(found.into()))
}

/// Revokes a token: its owner or an admin.
#[utoipa::path(tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[delete("/tokens/{id}")]
pub async fn revoke(state: State, auth: Auth, id: Path<String>) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let id = id.into_inner();
    state
        .write(move |conn| Token::revoke(conn, &actor, &id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers and documents this module's operations.
pub(crate) fn routes(cfg: &mut ServiceConfig<'_>) {
    cfg.service(issue).service(list).service(revoke);
}
