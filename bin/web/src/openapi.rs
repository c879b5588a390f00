//! What the OpenAPI document says besides its operations: the description, the
//! shared problem responses and schemas, the bearer scheme and the tags. The
//! operations come from the handlers, collected by `routes::document`.

#![expect(
    dead_code,
    reason = "the problem response types exist only to be documented"
)]

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::error::{FieldProblem, Problem};

#[derive(Debug, ToResponse)]
#[response(
    description = "Malformed JSON, wrong types, unknown fields or bad parameters",
    content_type = "application/problem+json"
)]
pub struct BadRequest(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Missing, unknown or revoked bearer token",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(Problem);

#[derive(Debug, ToResponse)]
#[response(description = "Not allowed", content_type = "application/problem+json")]
pub struct Forbidden(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "No such row, or one the caller may not see",
    content_type = "application/problem+json"
)]
pub struct NotFound(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Duplicate email, or a user who still has posts",
    content_type = "application/problem+json"
)]
pub struct Conflict(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "The body did not arrive in full within the server's body deadline \
                   (`WEB_BODY_TIMEOUT_MS`); the connection is closed",
    content_type = "application/problem+json"
)]
pub struct BodyTimeout(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Idempotency-Key: this key already issued a token, whose secret is shown \
                   only once; or the key's first request is still being processed",
    content_type = "application/problem+json"
)]
pub struct KeyConflict(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Body over 1 MiB",
    content_type = "application/problem+json"
)]
pub struct PayloadTooLarge(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Body is not application/json",
    content_type = "application/problem+json"
)]
pub struct UnsupportedMediaType(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Values that fail validation; `errors` lists every invalid field",
    content_type = "application/problem+json"
)]
pub struct Unprocessable(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "Unexpected failure; details are logged under the x-request-id",
    content_type = "application/problem+json"
)]
pub struct Internal(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "The database is unavailable, not migrated, or busy past its timeout \
                   (then with `Retry-After: 1`)",
    content_type = "application/problem+json"
)]
pub struct Unavailable(Problem);

#[derive(Debug, ToResponse)]
#[response(
    description = "The disk holding the database is full: the write was not made; \
                   reads go on working",
    content_type = "application/problem+json"
)]
pub struct InsufficientStorage(Problem);

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Posts API",
        description = "Users, posts and API tokens over one SQLite file. Errors are \
                       application/problem+json (RFC 9457); every response carries x-request-id."
    ),
    components(
        schemas(
            Problem,
            FieldProblem,
        ),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            BodyTimeout,
            KeyConflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            Internal,
            Unavailable,
            InsufficientStorage,
        )
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "posts", description = "Posts: public, drafts and scheduled"),
        (name = "users", description = "Accounts"),
        (name = "tokens", description = "API tokens"),
        (name = "operations", description = "Health, readiness, this document"),
    )
)]
pub struct ApiDoc;
