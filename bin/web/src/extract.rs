//! Extractors: who is calling (`Auth`), and the configs that turn JSON, path and
//! query failures into problem+json.
//!
//! Handlers take their path, query and body as [`Input`] and unwrap them only after
//! authenticating, so a bad or missing token is 401 whatever else is wrong with the
//! request: actix polls all extractors together and would otherwise report whichever
//! failed first.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Data, JsonConfig, PathConfig, QueryConfig};
use actix_web::{FromRequest, HttpRequest};

use domain::{Actor, Token};

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
            state
                .read(move |conn| Token::authenticate(conn, &secret))
                .await?
                .map(Auth)
                .ok_or(ApiError::Unauthorized)
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
