//! Shared set-up: each test gets its own freshly migrated database file, users and
//! tokens made through the domain, and the app built by the same `web::app` as main.

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::test;
use serde_json::Value;
use tempfile::TempDir;

use domain::{Actor, NewPostInput, NewUserInput, Post, Role, Timestamp, Token};
use web::ApiError;

/// The app as `main` builds it, over `db`.
macro_rules! app {
    ($db:expr) => {
        actix_web::test::init_service(web::app(web::AppState::new($db.clone()).unwrap())).await
    };
}

/// Sends a `TestRequest` and checks it with [`check`].
macro_rules! send {
    ($app:expr, $req:expr) => {
        $crate::common::check(actix_web::test::call_service(&$app, $req.to_request()).await).await
    };
}

pub(crate) use {app, send};

/// A database of its own, migrated to this build's schema: a file in its own
/// folder, or, when `TEST_DATABASE_URL` names a PostgreSQL server (as
/// `scripts/test-postgres.sh` sets it), a schema of its own there.
pub struct TestDb {
    pub db: db::Db,
    pub _dir: TempDir,
    _schema: Option<PgSchema>,
}

pub fn database(tune: impl FnOnce(db::Config) -> db::Config) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let schema = PgSchema::new();
    let config = match &schema {
        Some(schema) => db::Config::for_database(db::Database::Postgres(schema.url.clone())),
        None => db::Config::for_path(dir.path().join("app.db")),
    };
    let db = db::Db::open(&tune(config)).unwrap();
    db.migrator(db::MIGRATIONS).run_pending().unwrap();
    TestDb {
        db,
        _dir: dir,
        _schema: schema,
    }
}

/// A schema on the PostgreSQL test server, dropped with it.
struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    fn new() -> Option<Self> {
        use diesel::connection::SimpleConnection;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::var("TEST_DATABASE_URL").ok()?.trim().to_owned();
        if base.is_empty() {
            return None;
        }
        let name = format!(
            "api_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        db::AnyConnection::open(&db::Database::Postgres(base.clone()))
            .unwrap()
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        Some(Self { base, name, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        if let Ok(mut conn) = db::AnyConnection::open(&db::Database::Postgres(self.base.clone())) {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub token: String,
    pub token_id: String,
}

pub fn member(db: &db::Db, email: &str, role: Option<&str>) -> Member {
    db.write(|conn| -> domain::Result<Member> {
        let now = Timestamp::now();
        let user = NewUserInput {
            email: email.into(),
            name: email.split('@').next().unwrap_or("x").into(),
            role: role.map(Into::into),
        }
        .validate(now)?
        .insert(conn)?;
        let actor = Actor::Member {
            id: user.id.clone(),
            role: user.role,
        };
        let token = Token::issue(conn, &actor, &user.id, None, now)?;
        Ok(Member {
            id: user.id,
            token: token.secret,
            token_id: token.id,
        })
    })
    .unwrap()
}

pub fn post(db: &db::Db, author: &Member, title: &str, published_at: Option<Timestamp>) -> i64 {
    let actor = Actor::Member {
        id: author.id.clone(),
        role: Role::User,
    };
    db.write(|conn| -> Result<i64, ApiError> {
        let input = NewPostInput {
            title: title.into(),
            content: format!("content of {title}"),
            author_id: None,
            published_at,
        };
        Ok(Post::create(conn, &actor, &input)?.id)
    })
    .unwrap()
}

pub fn revoke(db: &db::Db, who: &Member) {
    db.write(|conn| -> Result<(), ApiError> {
        let actor = Actor::Member {
            id: who.id.clone(),
            role: Role::User,
        };
        Ok(Token::revoke(conn, &actor, &who.token_id)?)
    })
    .unwrap();
}

pub fn hours_from_now(hours: i64) -> Timestamp {
    Timestamp::from_unix(Timestamp::now().unix() + hours * 3600).unwrap()
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The documented statuses of the operation `method path` would reach, if any.
fn documented(method: &str, path: &str) -> Option<Vec<u16>> {
    web::routes::operations()
        .into_iter()
        .find(|op| {
            op.method.as_str() == method && ResourceDef::new(op.path.as_str()).is_match(path)
        })
        .map(|op| op.statuses)
}

/// Checks what holds for every response: an `x-request-id`, a status the OpenAPI
/// document lists for the operation, and for errors a problem+json body
/// that leaks nothing.
pub async fn check<B: MessageBody>(res: ServiceResponse<B>) -> Reply {
    let method = res.request().method().to_string();
    let path = res.request().path().to_owned();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = test::read_body(res).await.to_vec();
    let reply = Reply {
        status,
        headers,
        body,
    };
    let id = reply.header("x-request-id").unwrap_or_default();
    assert!(!id.is_empty(), "{method} {path}: no x-request-id");
    if let Some(statuses) = documented(&method, &path) {
        assert!(
            statuses.contains(&status),
            "{method} {path}: {status} is not documented ({statuses:?}): {}",
            reply.text()
        );
    }
    if status >= 400 {
        assert_problem(&method, &path, &reply);
    }
    reply
}

pub fn assert_problem(method: &str, path: &str, reply: &Reply) {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{method} {path} {}: {}",
        reply.status,
        reply.text()
    );
    let text = reply.text();
    for leak in ["diesel", "Diesel", "SQL", "sqlite", "panicked", "backtrace"] {
        assert!(
            !text.contains(leak),
            "{method} {path}: body leaks {leak:?}: {text}"
        );
    }
    let problem = reply.json();
    assert_eq!(problem["status"], reply.status, "{text}");
    assert!(problem["type"].is_string(), "{text}");
    assert!(problem["title"].is_string(), "{text}");
    assert!(problem["detail"].is_string(), "{text}");
}

pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}
