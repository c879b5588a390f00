//! The `Idempotency-Key` header of the create operations (`POST /users`, `POST
//! /posts`, `POST /users/{id}/tokens`): read and checked here, with the request's
//! fingerprint and the rendering of the answer a retry gets again. Looking keys
//! up, storing answers and pruning them are the domain's
//! (`domain::models::idempotency`).

use std::fmt;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{StatusCode, header::ContentType};
use actix_web::mime;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use domain::models::idempotency::{Answer, Fingerprint, IdempotencyKey, KeyedRequest, Outcome};
use domain::{Actor, Timestamp};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Body;

/// The header's name as the API documents it (header names are case-insensitive).
pub const HEADER: &str = "Idempotency-Key";

/// The header's description in the OpenAPI document.
pub const HEADER_DOC: &str = "Makes a retry safe: the same key with the same body within 24 \
    hours answers the first response's status and body again and creates nothing; the same \
    key with another body is 422. Keys are per caller. 1 to 255 visible ASCII characters \
    (0x21 to 0x7E), else 400.";

/// The body of a create request, read whole (the fingerprint covers it), with the
/// request's `Idempotency-Key` when it sent one. A bad key is 400.
#[derive(Debug)]
pub struct KeyedBody {
    pub body: Bytes,
    pub keyed: Option<KeyedRequest>,
    /// Whether the content type is JSON, checked as actix's `Json` extractor does.
    json: bool,
}

impl KeyedBody {
    /// The body as a required JSON document, as actix's `Json` extractor reads one:
    /// 415 unless the content type is JSON, 400 unless it parses.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.json {
            return Err(ApiError::UnsupportedMediaType);
        }
        serde_json::from_slice(&self.body)
            .map_err(|err| ApiError::BadRequest(format!("JSON body: {err}")))
    }
}

impl KeyedBody {
    /// Reads the body of a create request, after the handler authenticated: at most
    /// 1 MiB (413), in full before the deadline (408), with its key checked (400)
    /// and its fingerprint taken.
    pub async fn read(body: Body) -> Result<Self, ApiError> {
        let (request, body) = body.bytes().await?;
        let json = matches!(request.mime_type(), Ok(Some(m))
            if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let keyed = key(request.headers())?.map(|key| KeyedRequest {
            fingerprint: Fingerprint::of(request.method().as_str(), request.path(), &body),
            key,
        });
        Ok(Self { body, keyed, json })
    }

    /// The body as an optional JSON document: `None` when empty or JSON `null`;
    /// otherwise as [`KeyedBody::json`] reads one.
    pub fn optional_json<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        if self.body.is_empty() {
            return Ok(None);
        }
        self.json::<Option<T>>()
    }
}

/// The request's key: `None` without the header; 400 for a bad value or for more
/// than one header.
fn key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = headers.get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(format!(
            "{HEADER}: send one header, not several"
        )));
    }
    IdempotencyKey::parse(value.as_bytes())
        .map(Some)
        .map_err(|why| ApiError::BadRequest(format!("{HEADER}: {why}")))
}

/// Renders `view` as the answer a create request sends and stores for retries.
pub fn answer(status: StatusCode, view: &impl Serialize) -> domain::Result<Answer> {
    let body = serde_json::to_string(view)
        .map_err(|_| domain::Error::Internal("the answer could not be rendered"))?;
    Ok(Answer {
        status: status.as_u16(),
        body,
    })
}

/// Runs a create request once per `Idempotency-Key`: `create` in the write
/// transaction, its `view` stored as the 201 answer, and the response of
/// [`created`] (a retry gets the stored answer again, and nothing is created).
pub async fn create_once<T, V>(
    state: &AppState,
    actor: Actor,
    keyed: Option<KeyedRequest>,
    collection: &str,
    create: impl Fn(&mut domain::Connection, &Actor, Timestamp) -> domain::Result<T> + Send + 'static,
    view: impl Fn(T) -> V + Send + 'static,
) -> Result<HttpResponse, ApiError>
where
    T: Clone + Send + 'static,
    V: Serialize,
{
    let now = Timestamp::now();
    let outcome = state
        .write(move |conn| {
            domain::models::idempotency::once(
                conn,
                &actor,
                keyed.as_ref(),
                now,
                |conn| create(conn, &actor, now),
                |value| answer(StatusCode::CREATED, &view(value.clone())),
            )
        })
        .await?;
    state.prune_keys(now);
    created(outcome, collection)
}

/// The response to a create request, the first time and on a retry alike: the
/// stored status and body, byte for byte, with `Location: {collection}/{id}`.
pub fn created<T>(outcome: Outcome<T>, collection: &str) -> Result<HttpResponse, ApiError> {
    let (Outcome::First { answer, .. } | Outcome::Replay(answer)) = outcome;
    let status = StatusCode::from_u16(answer.status)
        .map_err(|_| ApiError::Internal(format!("stored status {}", answer.status)))?;
    let mut response = HttpResponse::build(status);
    if let Some(id) = id_of(&answer) {
        response.insert_header((header::LOCATION, format!("{collection}/{id}")));
    }
    Ok(response
        .insert_header(ContentType::json())
        .body(answer.body))
}

/// The `id` of the resource an answer's body shows.
pub fn id_of(answer: &Answer) -> Option<Id> {
    #[derive(Deserialize)]
    struct Created {
        id: Id,
    }
    serde_json::from_str::<Created>(&answer.body)
        .ok()
        .map(|c| c.id)
}

/// A resource id as the API shows it: a number for posts, a string otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    Text(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}
