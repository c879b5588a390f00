//! Request ids, the one log line per request, and closing the connection of a
//! chunked request whose body was left unread.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{InternalError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_core::Stream;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's id when it is 1..=64 letters, digits and dashes (safe to log and echo),
/// else a new UUID v7.
pub fn request_id(sent: Option<&HeaderValue>) -> String {
    sent.and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Tags the response with `x-request-id` and logs method, path, status, latency and
/// request id; for a 5xx also the error, which the body never shows. Only the path
/// is logged: headers (and so tokens) never are.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(req.headers().get(&REQUEST_ID));
    let method = req.method().clone();
    let path = req.path().to_owned();
    let id_header = HeaderValue::from_str(&id).ok();
    let log = |status: StatusCode, error: Option<String>| {
        let status_code = status.as_u16();
        let latency_ms = format_args!("{:.3}", started.elapsed().as_secs_f64() * 1000.0);
        if status.is_server_error() {
            tracing::error!(
                %method, path, status = status_code, %latency_ms, request_id = %id,
                error = error.as_deref().unwrap_or("-"), "request"
            );
        } else {
            tracing::info!(%method, path, status = status_code, %latency_ms, request_id = %id, "request");
        }
    };
    match next.call(req).await {
        Ok(mut res) => {
            if let Some(value) = id_header {
                res.headers_mut().insert(REQUEST_ID, value);
            }
            // Only a 5xx logs its error; a 4xx's text would be built for nothing.
            let status = res.status();
            let error = status
                .is_server_error()
                .then(|| res.response().error().map(ToString::to_string))
                .flatten();
            log(status, error);
            Ok(res)
        }
        // An error that escaped every handler: actix renders it after us, so hand it
        // a finished response that carries the id too.
        Err(err) => {
            let mut response = err.error_response();
            if let Some(value) = id_header {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            log(response.status(), Some(err.to_string()));
            Err(InternalError::from_response(err, response).into())
        }
    }
}

/// Makes a chunked request whose body the handler left unread (a 401 before the
/// body, a 408 at the body deadline) close its connection after the response.
///
/// actix closes such a connection when the body had a `Content-Length`, but reads
/// and discards the rest of a chunked body once its handler has dropped it, at
/// whatever pace the client sends it: a client trickling a byte a second would
/// keep the connection for as long as it liked. actix decides when the response
/// has been written, and closes when the body is unread and still held, so the
/// response holds it until then.
pub async fn close_on_unread_body<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, HoldingBody>>, actix_web::Error> {
    if !req.chunked().unwrap_or(false) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let payload = SharedPayload(Rc::new(RefCell::new(req.take_payload())));
    req.set_payload(Payload::Stream {
        payload: Box::pin(payload.clone()),
    });
    let res = next.call(req).await?;
    Ok(res
        .map_body(|_, body| HoldingBody {
            body: body.boxed(),
            _payload: payload,
        })
        .map_into_right_body())
}

/// A request body read by the handler and held by the response.
#[derive(Clone)]
struct SharedPayload(Rc<RefCell<Payload>>);

impl Stream for SharedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Only the handler's reader polls it; the response merely holds it.
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

/// A response body that holds the request's body until it has been written.
pub struct HoldingBody {
    body: BoxBody,
    _payload: SharedPayload,
}

impl std::fmt::Debug for HoldingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldingBody").finish_non_exhaustive()
    }
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_others_replaced() {
        let keep = |raw: &str| {
            request_id(Some(
                &HeaderValue::from_str(raw).unwrap_or(HeaderValue::from_static("x")),
            )) == raw
        };
        assert!(keep("abc-123"));
        assert!(keep(&"a".repeat(64)));
        assert!(!keep(&"a".repeat(65)));
        assert!(!keep("has space"));
        assert!(!keep("semi;colon"));
        assert!(!keep("ünï"));
        let fresh = request_id(None);
        assert_eq!(
            uuid::Uuid::parse_str(&fresh)
                .map(|u| u.get_version_num())
                .ok(),
            Some(7)
        );
    }
}
