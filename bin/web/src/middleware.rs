//! Request ids and the one log line per request, on `tracing-actix-web` (wrap
//! `from_fn(`[`request_id`]`)` and then [`request_log`], so the log is outermost),
//! and closing the connection of a chunked request whose body was left unread.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{InternalError, PayloadError};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_core::Stream;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder, TracingLogger};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's id when it is 1..=64 letters, digits and dashes: safe to log and echo.
pub fn sane_id(sent: Option<&HeaderValue>) -> Option<&str> {
    sent.and_then(|v| v.to_str().ok()).filter(|id| {
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The request log: one line per request with method, path, status, latency and
/// request id; for a 5xx also the error, which the body never shows. Only the path
/// is logged: headers (and so tokens) never are.
pub fn request_log() -> TracingLogger<RequestLog> {
    TracingLogger::new()
}

/// How [`request_log`] opens and closes each request.
#[derive(Debug)]
pub struct RequestLog;

/// What the closing line needs from the start of its request.
struct Started {
    at: Instant,
    id: String,
}

impl RootSpanBuilder for RequestLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let at = Instant::now();
        // Else the UUID v7 that `TracingLogger` made for this request.
        let id = sane_id(request.headers().get(&REQUEST_ID)).map_or_else(
            || {
                request
                    .extensions()
                    .get::<RequestId>()
                    .map_or_else(uuid::Uuid::now_v7, |made| **made)
                    .to_string()
            },
            str::to_owned,
        );
        request.extensions_mut().insert(Started { at, id });
        // No span: the line carries its fields itself, and a span per request cost
        // 7-19% more server CPU per request with RUST_LOG=info (BENCHMARKS.md,
        // 2026-12-01).
        Span::none()
    }

    fn on_request_end<B: MessageBody>(
        _span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        match outcome {
            Ok(res) => {
                let request = res.request();
                let status = res.status();
                // Only a 5xx logs its error; a 4xx's text would be built for nothing.
                let error = status
                    .is_server_error()
                    .then(|| res.response().error().map(ToString::to_string))
                    .flatten();
                if let Some(started) = request.extensions().get::<Started>() {
                    log(request.method(), request.path(), status, started, error);
                }
            }
            // An error that escaped every handler (`request_id` passes it on; no
            // handler of this service lets one escape). The request went with it,
            // so this line has only what the error says.
            Err(err) => {
                let status = err.as_response_error().status_code();
                if status.is_server_error() {
                    tracing::error!(status = status.as_u16(), error = %err, "request");
                } else {
                    tracing::info!(status = status.as_u16(), "request");
                }
            }
        }
    }
}

fn log(method: &Method, path: &str, status: StatusCode, started: &Started, error: Option<String>) {
    let status_code = status.as_u16();
    let latency_ms = format_args!("{:.3}", started.at.elapsed().as_secs_f64() * 1000.0);
    let id = &started.id;
    if status.is_server_error() {
        tracing::error!(
            %method, path, status = status_code, %latency_ms, request_id = %id,
            error = error.as_deref().unwrap_or("-"), "request"
        );
    } else {
        tracing::info!(
            %method, path, status = status_code, %latency_ms, request_id = %id, "request"
        );
    }
}

/// Puts the id [`request_log`] chose on the response, also on an error that
/// escaped every handler: actix renders that after us, so it gets a finished
/// response that carries the id.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .extensions()
        .get::<Started>()
        .and_then(|started| HeaderValue::from_str(&started.id).ok());
    match next.call(req).await {
        Ok(mut res) => {
            if let Some(value) = id {
                res.headers_mut().insert(REQUEST_ID, value);
            }
            Ok(res)
        }
        Err(err) => {
            let mut response = err.error_response();
            if let Some(value) = id {
                response.headers_mut().insert(REQUEST_ID, value);
            }
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
    use std::io;
    use std::sync::{Arc, Mutex};

    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, try_call_service};
    use actix_web::{App, HttpResponse, error, web};

    use super::*;

    #[test]
    fn sane_ids_are_kept_others_refused() {
        let keep = |raw: &str| {
            sane_id(Some(
                &HeaderValue::from_str(raw).unwrap_or(HeaderValue::from_static("x")),
            )) == Some(raw)
        };
        assert!(keep("abc-123"));
        assert!(keep(&"a".repeat(64)));
        assert!(!keep(&"a".repeat(65)));
        assert!(!keep("has space"));
        assert!(!keep("semi;colon"));
        assert!(!keep("ünï"));
        assert_eq!(sane_id(None), None);
    }

    /// Everything logged while the guard lives, as the service's subscriber writes it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn start(&self) -> tracing::subscriber::DefaultGuard {
            let out = self.clone();
            tracing::subscriber::set_default(
                tracing_subscriber::fmt()
                    .with_env_filter("info")
                    .with_ansi(false)
                    .with_writer(move || out.clone())
                    .finish(),
            )
        }
        fn lines(&self) -> Vec<String> {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[actix_web::test]
    async fn one_line_per_request_with_its_id_and_a_5xx_error_but_no_headers() {
        let captured = Captured::default();
        let _guard = captured.start();
        let app = init_service(
            App::new()
                .route("/ok", web::get().to(HttpResponse::Ok))
                .route(
                    "/broken",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(error::ErrorInternalServerError("disk on fire"))
                    }),
                )
                .wrap(from_fn(request_id))
                .wrap(request_log()),
        )
        .await;
        let ok = call_service(
            &app,
            TestRequest::get()
                .uri("/ok?q=1")
                .insert_header(("authorization", "Bearer secret-token"))
                .to_request(),
        )
        .await;
        let made = ok.headers().get(&REQUEST_ID).unwrap().to_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(made).unwrap().get_version_num(),
            7,
            "{made}"
        );
        let broken = call_service(
            &app,
            TestRequest::get()
                .uri("/broken")
                .insert_header(("x-request-id", "trace-42"))
                .to_request(),
        )
        .await;
        assert_eq!(broken.status(), 500);
        assert_eq!(broken.headers().get(&REQUEST_ID).unwrap(), "trace-42");

        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let expected = [
            "INFO web::middleware: request method=GET path=\"/ok\" status=200 latency_ms=".into(),
            format!("request_id={made}"),
        ];
        assert!(expected.iter().all(|e| lines[0].contains(e)), "{lines:#?}");
        assert!(!lines[0].contains("secret") && !lines[0].contains("q=1"));
        let expected = [
            "ERROR web::middleware: request method=GET path=\"/broken\" status=500 latency_ms=",
            "request_id=trace-42 error=\"disk on fire\"",
        ];
        assert!(expected.iter().all(|e| lines[1].contains(e)), "{lines:#?}");
    }

    #[actix_web::test]
    async fn an_error_that_escaped_every_handler_keeps_its_id_and_is_logged() {
        let captured = Captured::default();
        let _guard = captured.start();
        let app = init_service(
            App::new()
                .route("/", web::get().to(HttpResponse::Ok))
                .wrap(from_fn(|_req, _next: Next<_>| async {
                    Err::<ServiceResponse, _>(error::ErrorServiceUnavailable("pool gone"))
                }))
                .wrap(from_fn(request_id))
                .wrap(request_log()),
        )
        .await;
        let escaped = try_call_service(
            &app,
            TestRequest::get()
                .uri("/")
                .insert_header(("x-request-id", "abc"))
                .to_request(),
        )
        .await
        .err()
        .unwrap();
        // What actix sends for it.
        let res = escaped.error_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers().get(&REQUEST_ID).unwrap(), "abc");
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("ERROR web::middleware: request status=503 error=pool gone"),
            "{lines:#?}"
        );
    }
}
