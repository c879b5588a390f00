//! A studio served on a free loopback port over a database of its own (a
//! temporary SQLite file, or a schema of its own on the PostgreSQL server
//! `TEST_DATABASE_URL` names), with a few rows, and a plain HTTP/1.1 client
//! that sends exactly the headers a test gives it (Host, Origin, Cookie).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use db::{Config, Database, Db};
use diesel::connection::SimpleConnection;
use domain::{Actor, NewPostInput, NewUserInput, Post, Role, Timestamp, Token, User};

pub const LOGIN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn admin() -> Actor {
    Actor::Member {
        id: "tests".into(),
        role: Role::Admin,
    }
}

/// Where the test database lives; dropped with it.
pub enum Place {
    File(#[expect(dead_code, reason = "held to be removed when dropped")] tempfile::TempDir),
    Schema { base: String, name: String },
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Schema { base, name } = self
            && let Ok(mut conn) = db::Connection::open(&Database::Postgres(base.clone()))
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
}

pub fn database() -> (Db, Place) {
    let (config, place) = match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.trim().is_empty() => {
            let base = base.trim().to_owned();
            let name = format!("s_{}", hex(8));
            let mut admin = db::Connection::open(&Database::Postgres(base.clone())).unwrap();
            admin
                .batch_execute(&format!("CREATE SCHEMA {name}"))
                .unwrap();
            let separator = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{separator}options=-csearch_path%3D{name}");
            (
                Config::for_database(Database::Postgres(url)),
                Place::Schema { base, name },
            )
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::for_path(dir.path().join("app.db"));
            config.backup_dir = dir.path().join("backups");
            (config, Place::File(dir))
        }
    };
    let db = Db::open(&config).unwrap();
    db.migrator(db::MIGRATIONS).run_pending().unwrap();
    (db, place)
}

fn hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The rows every test starts with.
pub struct Rows {
    pub ada: String,
    pub bob: String,
    pub draft: i64,
    pub long: i64,
    pub empty: i64,
    pub token_secret: String,
}

pub fn seed(db: &Db) -> Rows {
    db.write(|conn| {
        let now = Timestamp::from_unix(1_767_225_600).unwrap();
        let user = |conn: &mut db::Connection, email: &str, name: &str| {
            User::create(
                conn,
                &admin(),
                &NewUserInput {
                    email: email.into(),
                    name: name.into(),
                    role: None,
                },
                now,
            )
            .unwrap()
            .id
        };
        let ada = user(conn, "ada@example.com", "Ada");
        let bob = user(conn, "bob@example.com", "Bob");
        let post = |conn: &mut db::Connection,
                    author: &str,
                    title: &str,
                    content: &str,
                    at: Option<i64>| {
            Post::create(
                conn,
                &admin(),
                &NewPostInput {
                    title: title.into(),
                    content: content.into(),
                    author_id: Some(author.into()),
                    published_at: at.and_then(Timestamp::from_unix),
                },
            )
            .unwrap()
            .id
        };
        let draft = post(conn, &ada, "A draft", "not yet", None);
        let long = post(
            conn,
            &ada,
            "Long one",
            &"word ".repeat(100),
            Some(1_767_225_600),
        );
        let empty = post(conn, &bob, "Empty body", "", Some(1_767_225_700));
        let token_secret = Token::issue(conn, &admin(), &ada, None, Timestamp::now())
            .unwrap()
            .secret;
        Ok::<_, domain::Error>(Rows {
            ada,
            bob,
            draft,
            long,
            empty,
            token_secret,
        })
    })
    .unwrap()
}

/// A running studio.
pub struct Studio {
    pub db: Db,
    pub host: String,
    pub origin: String,
    _place: Place,
}

/// One answer: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Studio {
    pub fn start(write: bool) -> (Studio, Rows) {
        let (db, place) = database();
        let rows = seed(&db);
        (Studio::serve(db, place, write), rows)
    }

    pub fn serve(db: Db, place: Place, write: bool) -> Studio {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = listener.local_addr().unwrap();
        let state = actix_web::web::Data::new(studio::State::new(
            db.clone(),
            "127.0.0.1",
            bound,
            write,
            LOGIN.into(),
        ));
        let (host, origin) = (state.host.clone(), state.origin.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                actix_web::HttpServer::new(move || studio::app(state.clone()))
                    .listen(listener)
                    .unwrap()
                    .workers(1)
                    .run()
                    .await
            })
        });
        Studio {
            db,
            host,
            origin,
            _place: place,
        }
    }

    /// Sends one request with exactly these headers (plus Host, unless given,
    /// and Content-Length for a body).
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            request.push_str(&format!("Host: {}\r\n", self.host));
        }
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        if method != "GET" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let mut stream = TcpStream::connect(&self.host).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        parse(&raw)
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let header = cookie.map(|c| format!("studio_session={c}"));
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Cookie", h.as_str())).collect();
        self.send("GET", path, &headers, "")
    }

    /// Signs in through the login URL; the session id.
    pub fn login(&self) -> String {
        let reply = self.get(&format!("/login?token={LOGIN}"), None);
        assert_eq!(reply.status, 303, "{reply:?}");
        let cookie = reply.header("set-cookie").unwrap();
        cookie
            .strip_prefix("studio_session=")
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned()
    }

    /// The CSRF token the session's forms carry.
    pub fn csrf(&self, cookie: &str) -> String {
        let page = self.get("/t/users/new", Some(cookie)).body;
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with the CSRF token")
            + 19;
        page[at..at + 64].to_owned()
    }

    /// A form post from the studio's own pages.
    pub fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Reply {
        self.post_from(path, cookie, Some(&self.origin.clone()), form)
    }

    pub fn post_from(
        &self,
        path: &str,
        cookie: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Reply {
        let body = serde_urlencoded::to_string(form).unwrap();
        let cookie = format!("studio_session={cookie}");
        let mut headers = vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        if let Some(origin) = origin {
            headers.push(("Origin", origin));
        }
        self.send("POST", path, &headers, &body)
    }
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        raw = &raw[end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
