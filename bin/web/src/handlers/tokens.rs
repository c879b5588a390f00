//! API tokens: issued for a user (shown once), revoked by their owner or an admin.

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Path;
use actix_web::{delete, post};

use domain::{Timestamp, Token};

use super::State;
use crate::error::ApiResult;
use crate::extract::Auth;
use crate::openapi::{Forbidden, Internal, NotFound, Unauthorized, Unavailable};
use crate::routes::ServiceConfig;
use crate::views::IssuedToken;

/// Issues a token for the caller themselves, or for anyone when an admin asks.
/// Any request body is ignored.
#[utoipa::path(tag = "tokens",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Issued; the secret is shown this once", body = IssuedToken),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[post("/users/{id}/tokens")]
pub async fn issue(state: State, auth: Auth, user_id: Path<String>) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let user_id = user_id.into_inner();
    let now = Timestamp::now();
    let issued = state
        .write(move |conn| Token::issue(conn, &actor, &user_id, now))
        .await?;
    Ok(HttpResponse::Created()
        // The secret must not linger in caches.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IssuedToken::from(issued)))
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
    cfg.service(issue).service(revoke);
}
