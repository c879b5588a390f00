//! `/posts`: visibility and ownership are the domain's; this module maps HTTP to it.

use actix_web::HttpResponse;
use actix_web::web::{Json, Path, Query};
use actix_web::{delete, get, patch, post};

use domain::{Post, Search, Timestamp};

use super::State;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Input};
use crate::idempotency::{KeyedBody, create_once};
use crate::openapi::{
    BadRequest, BodyTimeout, Forbidden, Internal, KeyConflict, NotFound, PayloadTooLarge,
    Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::requests::{NewPostBody, PostChangesBody, PostQuery, PostsRequest};
use crate::routes::ServiceConfig;
use crate::views::{self, PostPage};

/// Posts the caller may see, newest id first: public ones for everyone, plus the
/// caller's own drafts, or everything for an admin. With `q`, the ones that match,
/// best match first, each with its `snippet`.
#[utoipa::path(tag = "posts", params(PostQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = PostPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[get("/posts")]
pub async fn list(
    state: State,
    auth: Auth,
    query: Input<Query<PostQuery>>,
) -> ApiResult<Json<PostPage>> {
    let actor = auth.actor();
    let now = Timestamp::now();
    match query?.into_inner().parse()? {
        PostsRequest::List(filter, page) => {
            let found = state
                .read(move |conn| {
                    Post::list(
                        conn,
                        &actor,
                        &filter,
                        page.cursor.as_deref(),
                        page.limit,
                        now,
                    )
                })
                .await?;
            Ok(Json(found.into()))
        }
        PostsRequest::Search(filter, search, page) => {
            let search = Search::new(
                actor,
                filter,
                search,
                page.cursor.as_deref(),
                page.limit,
                now,
            )?;
            let found = state.search(search).await?;
            Ok(Json(found.into()))
        }
    }
}

/// One post, if the caller may see it (else 404).
#[utoipa::path(tag = "posts",
    params(("id" = i64, Path, description = "Post id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The post", body = views::Post),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
#[get("/posts/{id}")]
pub async fn get(state: State, auth: Auth, id: Input<Path<i64>>) -> ApiResult<Json<views::Post>> {
    let actor = auth.actor();
    let id = id?.into_inner();
    let now = Timestamp::now();
    // A point read: on the worker itself, cheaper than the hop to a read thread.
    let post = state
        .read_here(move |conn| Post::find_visible(conn, &actor, id, now))
        .await?;
    Ok(Json(post.into()))
}

/// Creates a post: members write as themselves, admins for any existing author.
#[utoipa::path(tag = "posts", request_body = NewPostBody,
    params(("Idempotency-Key" = Option<String>, Header,
        description = crate::idempotency::HEADER_DOC, min_length = 1, max_length = 255,
        pattern = "^[!-~]+$")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = views::Post,
            headers(("location" = String, description = "/posts/{id}"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = BodyTimeout),
        (status = 409, response = KeyConflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[post("/posts")]
pub async fn create(state: State, auth: Auth, body: Body) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let body = KeyedBody::read(body).await?;
    let input = domain::NewPostInput::from(body.json::<NewPostBody>()?);
    create_once(
        &state,
        actor,
        body.keyed,
        "/posts",
        move |conn, actor, _| Post::create(conn, actor, &input),
        views::Post::from,
    )
    .await
}

/// Changes a post the caller owns (admins: any). `publishedAt: null` unpublishes.
#[utoipa::path(tag = "posts", request_body = PostChangesBody,
    params(("id" = i64, Path, description = "Post id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed post", body = views::Post),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = BodyTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[patch("/posts/{id}")]
pub async fn update(
    state: State,
    auth: Auth,
    id: Input<Path<i64>>,
    body: Body,
) -> ApiResult<Json<views::Post>> {
    let actor = auth.member()?;
    let id = id?.into_inner();
    let input = domain::PostChangesInput::from(body.json::<PostChangesBody>().await?);
    let now = Timestamp::now();
    let post = state
        .write(move |conn| Post::update(conn, &actor, id, &input, now))
        .await?;
    Ok(Json(post.into()))
}

/// Deletes a post the caller owns (admins: any).
#[utoipa::path(tag = "posts",
    params(("id" = i64, Path, description = "Post id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 507, response = crate::openapi::InsufficientStorage),
    ))]
#[delete("/posts/{id}")]
pub async fn delete(state: State, auth: Auth, id: Input<Path<i64>>) -> ApiResult<HttpResponse> {
    let actor = auth.member()?;
    let id = id?.into_inner();
    let now = Timestamp::now();
    state
        .write(move |conn| Post::delete(conn, &actor, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers and documents this module's operations.
pub(crate) fn routes(cfg: &mut ServiceConfig<'_>) {
    cfg.service(list)
        .service(get)
        .service(create)
        .service(update)
        .service(delete);
}
