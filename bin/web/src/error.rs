//! The one error type of the HTTP layer and its one mapping to `application/problem+json`
//! (RFC 9457). Internal details go to the log with the request id, never into a body.

use actix_web::error::{
    BlockingError, JsonPayloadError, PathError, PayloadError, QueryPayloadError,
};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use domain::ValidationErrors;

/// Why a request failed. `Display` is for the log; the body comes from [`Problem`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, wrong types, unknown fields, bad path or query parameters.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("missing, unknown or revoked token")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed { allow: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("body too large")]
    PayloadTooLarge,
    /// The body did not arrive in full before the body deadline.
    #[error("body not received in time")]
    BodyTimeout,
    #[error("body is not JSON")]
    UnsupportedMediaType,
    #[error(transparent)]
    Invalid(ValidationErrors),
    /// The database answers but is not at this build's schema, or does not answer.
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("the database stayed busy past its timeout")]
    Busy,
    /// A write failed because the disk holding the database is full; reads go on.
    #[error("the disk is full")]
    InsufficientStorage,
    /// Anything else: the message is logged, the caller only sees a generic 500.
    #[error("internal: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `title` is then the HTTP status phrase.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    #[schema(example = "Unprocessable Entity")]
    pub title: &'static str,
    #[schema(example = 422)]
    pub status: u16,
    pub detail: String,
    /// Every invalid field, present on 422 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldProblem>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    #[schema(example = "email")]
    pub field: String,
    #[schema(example = "must contain exactly one @ with text on both sides")]
    pub message: String,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ApiError {
    fn detail(&self) -> String {
        match self {
            Self::BadRequest(detail) => detail.clone(),
            Self::Unauthorized => "a valid bearer token is required".into(),
            Self::Forbidden => "you may not do this".into(),
            Self::NotFound(what) => (*what).into(),
            Self::MethodNotAllowed { allow } => format!("allowed methods: {allow}"),
            Self::Conflict(detail) => detail.clone(),
            Self::PayloadTooLarge => "the body is larger than 1 MiB".into(),
            Self::BodyTimeout => {
                "the body did not arrive in full in time; the connection is closed".into()
            }
            Self::UnsupportedMediaType => "the body must be application/json".into(),
            Self::Invalid(errors) => format!("{} field(s) failed validation", errors.0.len()),
            Self::NotReady(detail) => detail.clone(),
            Self::Busy => "the database is busy; retry shortly".into(),
            Self::InsufficientStorage => "the disk is full; the write was not made".into(),
            Self::Internal(_) => {
                "an internal error occurred; quote the x-request-id when reporting it".into()
            }
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Invalid(errors) => Some(
                    errors
                        .0
                        .iter()
                        .map(|e| FieldProblem {
                            field: e.field.to_owned(),
                            message: e.message.clone(),
                        })
                        .collect(),
                ),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotReady(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        match self {
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            Self::Busy => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            // What is left of a slow body is not worth waiting for, nor the
            // connection that carries it.
            Self::BodyTimeout => {
                response.force_close();
            }
            _ => {}
        }
        match serde_json::to_string(&self.problem()) {
            Ok(body) => response.body(body),
            // Serialising plain strings and numbers cannot fail; still, never panic.
            Err(_) => response.finish(),
        }
    }
}

impl From<domain::Error> for ApiError {
    fn from(err: domain::Error) -> Self {
        match err {
            domain::Error::NotFound => Self::NotFound("no such resource"),
            domain::Error::Forbidden => Self::Forbidden,
            domain::Error::Invalid(errors) => Self::Invalid(errors),
            domain::Error::Conflict(detail) => Self::Conflict(detail.into()),
            domain::Error::Cursor(err) => Self::BadRequest(format!("cursor: {err}")),
            domain::Error::Database(err) => err.into(),
            domain::Error::Internal(what) => Self::Internal(what.into()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        if db::is_busy(&err) {
            Self::Busy
        } else if db::is_disk_full(&err) {
            Self::InsufficientStorage
        } else if let diesel::result::Error::NotFound = err {
            Self::NotFound("no such resource")
        } else {
            Self::Internal(err.to_string())
        }
    }
}

impl From<db::Error> for ApiError {
    fn from(err: db::Error) -> Self {
        match err {
            db::Error::Busy => Self::Busy,
            db::Error::DiskFull => Self::InsufficientStorage,
            db::Error::Query(err) => err.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Invalid(errors)
    }
}

impl From<BlockingError> for ApiError {
    fn from(_: BlockingError) -> Self {
        Self::Internal("the blocking task panicked or was cancelled".into())
    }
}

impl From<&JsonPayloadError> for ApiError {
    fn from(err: &JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::OverflowKnownLength { .. }
            | JsonPayloadError::Overflow { .. }
            | JsonPayloadError::Payload(PayloadError::Overflow) => Self::PayloadTooLarge,
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Deserialize(err) => Self::BadRequest(format!("JSON body: {err}")),
            _ => Self::BadRequest("the body could not be read".into()),
        }
    }
}

impl From<&PathError> for ApiError {
    fn from(err: &PathError) -> Self {
        match err {
            // Only post ids are typed in paths; serde's message would name Rust types.
            PathError::Deserialize(_) => {
                Self::BadRequest("the id in the path must be a whole number within 64 bits".into())
            }
            _ => Self::BadRequest("bad path parameter".into()),
        }
    }
}

impl From<&QueryPayloadError> for ApiError {
    fn from(err: &QueryPayloadError) -> Self {
        match err {
            QueryPayloadError::Deserialize(err) => Self::BadRequest(format!("query: {err}")),
            _ => Self::BadRequest("bad query string".into()),
        }
    }
}

/// Extractor failures arrive as `actix_web::Error`; the extractor configs in
/// [`crate::configure`] build them from an `ApiError`, so this recovers it.
impl From<actix_web::Error> for ApiError {
    fn from(err: actix_web::Error) -> Self {
        if let Some(api) = err.as_error::<ApiError>() {
            api.clone()
        } else if let Some(json) = err.as_error::<JsonPayloadError>() {
            json.into()
        } else if let Some(path) = err.as_error::<PathError>() {
            path.into()
        } else if let Some(query) = err.as_error::<QueryPayloadError>() {
            query.into()
        } else {
            Self::Internal(err.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn internal_errors_never_reach_the_body() {
        let err = ApiError::Internal("near \"SELEC\": syntax error in diesel query".into());
        let response = err.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("SELEC") && !text.contains("diesel"),
            "{text}"
        );
        assert!(text.contains("\"type\":\"about:blank\""), "{text}");
    }

    #[test]
    fn busy_asks_to_retry() {
        let response = ApiError::Busy.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
    }

    #[test]
    fn a_full_disk_is_507_without_internals() {
        let err = ApiError::from(domain::Error::Database(db::Error::DiskFull));
        let response = err.error_response();
        assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(problem["status"], 507);
        assert_eq!(
            problem["detail"],
            "the disk is full; the write was not made"
        );
    }

    #[test]
    fn validation_lists_every_field() {
        let mut errors = ValidationErrors::default();
        errors.check::<()>("email", Err("bad".into()));
        errors.check::<()>("name", Err("empty".into()));
        let problem = ApiError::Invalid(errors).problem();
        assert_eq!(problem.status, 422);
        let fields: Vec<_> = problem
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["email", "name"]);
    }
}
