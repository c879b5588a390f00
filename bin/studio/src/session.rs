//! Who may use the studio: the one-time login token printed at start, the
//! sessions it opens (random ids in an HttpOnly, SameSite=Strict cookie), each
//! with its CSRF token, and the checks every request passes first: the `Host`
//! the studio is bound to, the session, a same-origin `Origin` on writes, and the
//! headers that keep other pages from framing or reading it.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::State;

pub const COOKIE: &str = "studio_session";

/// Sent with every response: nothing from elsewhere, no framing, no sniffing.
pub const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// 32 random bytes as hex.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Equal without telling, by its timing, how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
}

/// The login token (until used) and the open sessions.
#[derive(Debug)]
pub struct Sessions {
    login: Mutex<Option<String>>,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(login_token: String) -> Self {
        Self {
            login: Mutex::new(Some(login_token)),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Trades the login token for a new session id, once.
    fn log_in(&self, token: &str) -> Option<String> {
        let mut login = self.login.lock().ok()?;
        let valid = login.as_deref().is_some_and(|t| same(t, token));
        if !valid {
            return None;
        }
        *login = None;
        let id = random_token().ok()?;
        let csrf = random_token().ok()?;
        self.open.lock().ok()?.insert(id.clone(), Session { csrf });
        Some(id)
    }

    fn get(&self, id: &str) -> Option<Session> {
        self.open.lock().ok()?.get(id).cloned()
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct Login {
    token: String,
}

/// `GET /login?token=...`: sets the session cookie and goes to the tables.
pub async fn login(state: web::Data<State>, query: Option<web::Query<Login>>) -> HttpResponse {
    let session = query.and_then(|q| state.sessions.log_in(&q.token));
    match session {
        Some(id) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .insert_header((
                header::SET_COOKIE,
                format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"),
            ))
            .finish(),
        None => crate::pages::plain(
            StatusCode::UNAUTHORIZED,
            "This login link is wrong or was already used. Restart the studio for a new one.",
        ),
    }
}

/// The session of a request that passed [`guard`].
pub fn session(req: &HttpRequest) -> Option<Session> {
    req.extensions().get::<Session>().cloned()
}

/// The session's CSRF token, for the forms of a page (empty without a session).
pub fn csrf(req: &HttpRequest) -> String {
    session(req).map(|s| s.csrf).unwrap_or_default()
}

/// Refuses a write whose form does not carry the session's CSRF token.
#[expect(
    clippy::result_large_err,
    reason = "the error is the page a handler answers with at once"
)]
pub fn check_csrf(req: &HttpRequest, sent: Option<&str>) -> Result<Session, HttpResponse> {
    let session = session(req).ok_or_else(|| {
        crate::pages::plain(StatusCode::UNAUTHORIZED, "Sign in through the login link.")
    })?;
    match sent {
        Some(sent) if same(sent, &session.csrf) => Ok(session),
        _ => Err(crate::pages::plain(
            StatusCode::FORBIDDEN,
            "Refused: the form did not carry this session's CSRF token.",
        )),
    }
}

/// Every request: `Host` must be the bound address (else 421), a session is
/// required outside `/login` and `/assets/` (else 401), and a request that may
/// write must come from the studio's own origin (else 403), and only in write
/// mode (else 403). Every response gets the policy headers.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
        return Ok(refuse(req, StatusCode::INTERNAL_SERVER_ERROR, "no state"));
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if host != state.host {
        return Ok(refuse(
            req,
            StatusCode::MISDIRECTED_REQUEST,
            "Refused: this studio answers only to the address it is bound to.",
        ));
    }
    let path = req.path();
    let public = path == "/login" || path.starts_with("/assets/");
    if !public {
        let session = cookie(req.headers()).and_then(|id| state.sessions.get(id));
        match session {
            Some(session) => {
                req.extensions_mut().insert(session);
            }
            None => {
                return Ok(refuse(
                    req,
                    StatusCode::UNAUTHORIZED,
                    "Sign in through the login link the studio printed when it started.",
                ));
            }
        }
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok());
        if origin != Some(state.origin.as_str()) {
            return Ok(refuse(
                req,
                StatusCode::FORBIDDEN,
                "Refused: a change must come from a page of this studio (Origin).",
            ));
        }
        if !state.write {
            return Ok(refuse(
                req,
                StatusCode::FORBIDDEN,
                "Refused: the studio is read-only. Start it with `make studio write=1` to edit.",
            ));
        }
    }
    let started = std::time::Instant::now();
    let mut res = next.call(req).await?.map_into_left_body();
    secure(res.headers_mut());
    // The server's own time for the page (to its head, for a streamed export):
    // what the benchmark reads, and what a browser's network panel shows.
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.2}")) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("server-timing"), value);
    }
    Ok(res)
}

fn refuse<B>(
    req: ServiceRequest,
    status: StatusCode,
    message: &str,
) -> ServiceResponse<EitherBody<B>> {
    let mut res = crate::pages::plain(status, message);
    secure(res.headers_mut());
    req.into_response(res).map_into_right_body()
}

/// The session id from the `Cookie` header.
fn cookie(headers: &header::HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn secure(headers: &mut header::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
