//! `/me` and `/users`: who may see and change which account is the domain's; this
//! module maps HTTP to it.

use actix_web::HttpResponse;
use actix_web::web::{Json, Path, Query};
use actix_web::{delete, get, patch, post};

use domain::{NewUserInput, User, UserChangesInput};

use super::State;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, Input};
use crate::idempotency::{KeyedBody, create_once};
use crate::openapi::{
    BadRequest, BodyTimeout, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge,
    Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::requests::{NewUserBody, PageQuery, UserChangesBody};
use crate::routes::ServiceConfig;
use crate::views::{self, UserPage};

/// The caller's own account.
#[utoipa::path(tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = views::User),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[get("/me")]
pub async fn me(state: State, auth: Auth) -> ApiResult<Json<views::User>> {
    let actor = auth.member()?;
    let user = state
        .read(move |conn| User::current(conn, &actor))
        .await
        // The account went away between authentication and this read.
        .map_err(|err| match err {
            ApiError::NotFound(_) => ApiError::Unauthorized,
            other => other,
        })?;
    Ok(Json(user.into()))
}

/// Every user, newest first (admins only).
#[utoipa::path(tag = "users", params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = UserPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[get("/users")]
pub async fn list(
    state: State,
    auth: Auth,
    query: Input<Query<PageQuery>>,
) -> ApiResult<Json<UserPage>> {
    let actor = auth.member()?;
    let page = query?.into_inner().parse()?;
    let found = state
        .read(move |conn| User::list(conn, &actor, page.cursor.as_deref(), page.limit))
        .await?;
    Ok(Json(found.into()))
}

/// Creates a user (admins only).
#[utoipa::path(tag = "users", request_body = NewUserBody,
    params(("Idempotency-Key" = Option<String>, Header,
        description = crate::idempotency::HEADER_DOC, min_length = 1, max_length = 255,
        pattern = "^[!-~]+$")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = views::User,
            headers(("location" = String, description = "/users/{id}"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = BodyTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[post("/users")]
pub async fn create(state: State, auth: Auth, body: Body) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let body = KeyedBody::read(body).await?;
    let input = NewUserInput::from(body.json::<NewUserBody>()?);
    create_once(
        &state,
        actor,
        body.keyed,
        "/users",
        move |conn, actor, now| User::create(conn, actor, &input, now),
        views::User::from,
    )
    .await
}

/// One user: the caller themselves, or anyone for an admin.
#[utoipa::path(tag = "users",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = views::User),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[get("/users/{id}")]
pub async fn get(state: State, auth: Auth, id: Path<String>) -> ApiResult<Json<views::User>> {
    let actor = auth.member()?;
    let id = id.into_inner();
    let user = state
        .read(move |conn| User::find_visible(conn, &actor, &id))
        .await?;
    Ok(Json(user.into()))
}

/// Changes a user: members their own name and email, admins anything.
#[utoipa::path(tag = "users", request_body = UserChangesBody,
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed user", body = views::User),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = BodyTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[patch("/users/{id}")]
pub async fn update(
    state: State,
    auth: Auth,
    id: Path<String>,
    body: Body,
) -> ApiResult<Json<views::User>> {
    let actor = auth.member()?;
    let id = id.into_inner();
    let input = UserChangesInput::from(body.json::<UserChangesBody>().await?);
    let user = state
        .write(move |conn| User::update(conn, &actor, &id, &input))
        .await?;
    Ok(Json(user.into()))
}

/// Deletes a user who has no posts, and their tokens (admins only).
#[utoipa::path(tag = "users",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[delete("/users/{id}")]
pub async fn delete(state: State, auth: Auth, id: Path<String>) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let id = id.into_inner();
    state
        .write(move |conn| User::delete(conn, &actor, &id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers and documents this module's operations.
pub(crate) fn routes(cfg: &mut ServiceConfig<'_>) {
    cfg.service(me)
        .service(list)
        .service(create)
        .service(get)
        .service(update)
        .service(delete);
}
