//! Extractors: who is calling (`Auth`), the request body read only after that
//! (`Body`, with its deadline), and the configs that turn JSON, path and query
//! failures into problem+json.
//!
//! Handlers take their path and query as [`Input`] and unwrap them only after
//! authenticating, so a bad or missing token is 401 whatever else is wrong with the
//! request: actix polls all extractors together and would otherwise report whichever
//! failed first. For the same reason a body is never an extractor that reads: actix
//! would read it while the token is looked up, and an anonymous caller could make
//! the server take in a whole megabyte before its 401.

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Bytes, Data, Json, JsonConfig, PathConfig, PayloadConfig, QueryConfig};
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use domain::{Actor, Timestamp, Token};

use crate::AppState;
use crate::error::ApiError;

/// Bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A path, query or body extractor whose failure the handler reports with `?`.
pub type Input<T> = Result<T, actix_web::Error>;

pub fn json_config() -> JsonConfig {
    JsonConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _| ApiError::from(&err).into())
}

/// The same limit for bodies read as bytes (an optional JSON body).
pub fn payload_config() -> PayloadConfig {
    PayloadConfig::new(BODY_LIMIT)
}

/// How long a request body may take to arrive in full (`WEB_BODY_TIMEOUT_MS`),
/// counted from when the request reaches its handler. App data; without it,
/// [`BODY_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(pub Duration);

/// The body deadline when the app registers no [`BodyTimeout`].
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The request body, not yet read. A handler authenticates first and then reads
/// it with [`Body::json`] or [`Body::bytes`], so a caller without a valid
/// token is answered before a byte of the body is taken in. Reading it must end
/// within the [`BodyTimeout`], else 408: actix bounds the wait for a request's
/// head, not for its body, and a client trickling a byte a second would hold the
/// handler for as long as it liked.
pub struct Body {
    request: HttpRequest,
    payload: Payload,
    deadline: Instant,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl FromRequest for Body {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let timeout = req
            .app_data::<BodyTimeout>()
            .map_or(BODY_TIMEOUT, |timeout| timeout.0);
        ready(Ok(Self {
            request: req.clone(),
            payload: payload.take(),
            deadline: Instant::now() + timeout,
        }))
    }
}

impl Body {
    /// The body as JSON: `application/json` (else 415), at most 1 MiB (413),
    /// strict (400), in full before the deadline (408).
    pub async fn json<T: DeserializeOwned + 'static>(self) -> Result<T, ApiError> {
        let Self {
            request,
            mut payload,
            deadline,
        } = self;
        let json = within(deadline, Json::<T>::from_request(&request, &mut payload)).await?;
        Ok(json.map_err(ApiError::from)?.into_inner())
    }

    /// The whole body, at most 1 MiB (413), in full before the deadline (408),
    /// with the request it came with.
    pub async fn bytes(self) -> Result<(HttpRequest, Bytes), ApiError> {
        let Self {
            request,
            mut payload,
            deadline,
        } = self;
        let body = within(deadline, Bytes::from_request(&request, &mut payload))
            .await?
            .map_err(|err| {
                if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest("the body could not be read".into())
                }
            })?;
        Ok((request, body))
    }
}

async fn within<T>(deadline: Instant, read: impl Future<Output = T>) -> Result<T, ApiError> {
    let left = deadline.saturating_duration_since(Instant::now());
    actix_web::rt::time::timeout(left, read)
        .await
        .map_err(|_| ApiError::BodyTimeout)
}

pub fn path_config() -> PathConfig {
    PathConfig::default().error_handler(|err, _| ApiError::from(&err).into())
}

pub fn query_config() -> QueryConfig {
    QueryConfig::default().error_handler(|err, _| ApiError::from(&err).into())
}

/// The caller: anonymous without an `Authorization` header, the token's owner with a
/// valid one; an unknown, revoked or malformed token fails extraction with 401.
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

impl Auth {
    /// Anyone, including anonymous callers.
    pub fn actor(self) -> Actor {
        self.0
    }

    /// A signed-in member; anonymous callers get 401.
    pub fn member(self) -> Result<Actor, ApiError> {
        match self.0 {
            Actor::Anonymous => Err(ApiError::Unauthorized),
            member => Ok(member),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive),
/// `None` without the header, an error for any other shape.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let (scheme, token) = value
        .trim()
        .split_once(char::is_whitespace)
        .ok_or(ApiError::Unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    Ok(Some(token.to_owned()))
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let secret = bearer(req.headers());
        let state = req.app_data::<Data<AppState>>().cloned();
        Box::pin(async move {
            let Some(secret) = secret? else {
                return Ok(Auth(Actor::Anonymous));
            };
            let state =
                state.ok_or_else(|| ApiError::Internal("AppState is not registered".into()))?;
            let now = Timestamp::now();
            let found = state
                .read(move |conn| Token::authenticate(conn, &secret, now))
                .await?
                .ok_or(ApiError::Unauthorized)?;
            if found.stale_last_used {
                state.touch_token(found.token_id, now);
            }
            Ok(Auth(found.actor))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn parse(value: &str) -> Result<Option<String>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
        );
        bearer(&headers)
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", "bEaReR\tabc"] {
            assert_eq!(
                parse(value).ok().flatten().as_deref(),
                Some("abc"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for value in ["", "Bearer", "Bearer   ", "Basic abc", "Token abc", "abc"] {
            assert!(parse(value).is_err(), "{value:?}");
        }
        assert!(matches!(bearer(&HeaderMap::new()), Ok(None)));
    }
}
