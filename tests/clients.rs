//! Slow, idle and unauthorised clients over raw TCP against the real server: a
//! write without a valid token is answered before its body, heads and bodies
//! trickled a byte a second are cut off at their deadlines while other clients are
//! served, and 1 000 idle connections do not stop service.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use end_to_end::{ADMIN_TOKEN, Sandbox, Server, wait_for};
use serde_json::json;

/// The seeded admin's id.
const ADMIN_ID: &str = "admin-001";
/// What "answered at once" and "served promptly" allow, on a busy 2-core machine.
const PROMPT: Duration = Duration::from_secs(1);

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// What a raw client saw: the response as text, how long after `started` its first
/// byte came, and when the server closed the connection, if it did within the limit.
#[derive(Debug)]
struct Seen {
    text: String,
    answered: Option<Duration>,
    closed: Option<Duration>,
}

impl Seen {
    fn status(&self) -> Option<u16> {
        self.text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
    }

    fn header(&self, name: &str) -> Option<&str> {
        let head = self.text.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads whatever the server sends until it closes the connection or `limit`
/// (counted from `started`) passes.
fn read_until_closed(stream: &mut TcpStream, started: Instant, limit: Duration) -> Seen {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut answered = None;
    let mut buf = [0; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => {
                return Seen {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    answered,
                    closed: Some(started.elapsed()),
                };
            }
            Ok(n) => {
                answered.get_or_insert_with(|| started.elapsed());
                bytes.extend_from_slice(&buf[..n]);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // A reset after the response is a close too.
            Err(_) => {
                return Seen {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    answered,
                    closed: Some(started.elapsed()),
                };
            }
        }
    }
    Seen {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        answered,
        closed: None,
    }
}

/// Sends `head`, then one byte of `trickle` a second (round and round) until the
/// server closes the connection; returns what it saw, timed from the head.
fn trickle(server: &Server, head: String, trickle: &'static [u8]) -> thread::JoinHandle<Seen> {
    let mut stream = connect(server);
    thread::spawn(move || {
        stream.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            let done = Arc::clone(&done);
            thread::spawn(move || {
                for byte in trickle.iter().cycle().take(60) {
                    thread::sleep(Duration::from_secs(1));
                    if done.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                }
            })
        };
        let seen = read_until_closed(&mut stream, started, Duration::from_secs(15));
        done.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        seen
    })
}

fn post_head(path: &str, token: &str, framing: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
}

/// Calls the server as an ordinary client and checks that it answered `status`
/// promptly.
fn served(server: &Server, method: &str, path: &str, body: Option<&serde_json::Value>) -> u16 {
    let started = Instant::now();
    let reply = server.call(method, path, Some(ADMIN_TOKEN), body);
    let took = started.elapsed();
    assert!(took < PROMPT, "{method} {path} took {took:?}");
    reply.status
}

fn posts(server: &Server) -> usize {
    let reply = server.call("GET", "/posts?limit=100", Some(ADMIN_TOKEN), None);
    reply.body["items"].as_array().unwrap().len()
}

#[test]
fn a_write_without_a_valid_token_is_401_before_its_body() {
    let s = Sandbox::new();
    s.prepare();
    let server = s.serve(&[]);
    let created = server.call(
        "POST",
        "/posts",
        Some(ADMIN_TOKEN),
        Some(&json!({"title": "t", "content": "c"})),
    );
    let post = created.body["id"].as_i64().unwrap();
    let unknown = format!("Authorization: Bearer {}\r\n", "u".repeat(40));
    for (method, path) in [
        ("POST", "/posts".to_owned()),
        ("PATCH", format!("/posts/{post}")),
        ("DELETE", format!("/posts/{post}")),
        ("POST", "/users".to_owned()),
        ("PATCH", format!("/users/{ADMIN_ID}")),
        ("POST", format!("/users/{ADMIN_ID}/tokens")),
    ] {
        for (authorization, framing) in [
            ("", "Content-Length: 1048576"),
            (unknown.as_str(), "Content-Length: 1048576"),
            ("", "Transfer-Encoding: chunked"),
            (unknown.as_str(), "Transfer-Encoding: chunked"),
        ] {
            let mut stream = connect(&server);
            // The head of a body, and not a byte of the body.
            stream
                .write_all(
                    format!(
                        "{method} {path} HTTP/1.1\r\nHost: test\r\n{authorization}\
                         Content-Type: application/json\r\n{framing}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .unwrap();
            let started = Instant::now();
            let seen = read_until_closed(&mut stream, started, Duration::from_secs(5));
            let what = format!("{method} {path} {authorization:?} {framing}");
            assert_eq!(seen.status(), Some(401), "{what}: {seen:?}");
            assert!(
                seen.answered.is_some_and(|at| at < PROMPT),
                "{what}: {seen:?}"
            );
            assert_eq!(seen.header("www-authenticate"), Some("Bearer"), "{what}");
            assert_eq!(
                seen.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
            // The unread body is not waited for: the connection goes too.
            assert!(seen.closed.is_some(), "{what}: {seen:?}");
        }
    }
    assert_eq!(posts(&server), 1, "the post is still there");
}

#[test]
fn trickled_bodies_are_cut_off_at_the_deadline_while_others_are_served() {
    let s = Sandbox::new();
    s.prepare();
    let deadline = Duration::from_secs(2);
    let server = s.serve(&[("WEB_BODY_TIMEOUT_MS", "2000")]);
    let length = "Content-Length: 100000";
    let chunked = "Transfer-Encoding: chunked";
    let slow: Vec<_> = [
        ("/posts", length, &b"{\"title\": \"slow\"}"[..]),
        ("/posts", length, b" "),
        ("/users", length, b" "),
        ("/users/admin-001/tokens", length, b" "),
        ("/posts", chunked, b"1\r\n \r\n"),
        ("/users/admin-001/tokens", chunked, b"1\r\n \r\n"),
    ]
    .into_iter()
    .map(|(path, framing, bytes)| {
        let handle = trickle(&server, post_head(path, ADMIN_TOKEN, framing), bytes);
        (format!("{path} {framing}"), handle)
    })
    .collect();

    // While they trickle, everyone else is served as usual.
    let started = Instant::now();
    let mut created = 0;
    while started.elapsed() < deadline + Duration::from_secs(1) {
        assert_eq!(served(&server, "GET", "/posts", None), 200);
        let body = json!({"title": "meanwhile", "content": "served"});
        assert_eq!(served(&server, "POST", "/posts", Some(&body)), 201);
        created += 1;
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        created >= 10,
        "only {created} posts while the clients trickled"
    );

    for (what, handle) in slow {
        let seen = handle.join().unwrap();
        assert_eq!(seen.status(), Some(408), "{what}: {seen:?}");
        assert_eq!(
            seen.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        let answered = seen.answered.unwrap();
        assert!(
            answered >= deadline - Duration::from_millis(100) && answered < deadline + PROMPT,
            "{what}: 408 after {answered:?}"
        );
        assert!(
            seen.closed
                .is_some_and(|at| at < deadline + Duration::from_secs(3)),
            "{what}: the connection stayed open: {seen:?}"
        );
    }
    assert_eq!(posts(&server), created, "a trickled body created a post");
}

#[test]
fn a_trickled_head_is_cut_off_at_its_deadline() {
    let s = Sandbox::new();
    s.prepare();
    let server = s.serve(&[("WEB_CLIENT_REQUEST_TIMEOUT_MS", "1000")]);
    let seen = trickle(
        &server,
        "GET /posts HTTP/1.1\r\n".into(),
        b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    .join()
    .unwrap();
    assert_eq!(seen.status(), Some(408), "{seen:?}");
    assert!(
        seen.closed.is_some_and(|at| at < Duration::from_secs(4)),
        "{seen:?}"
    );
    assert_eq!(served(&server, "GET", "/posts", None), 200);
}

/// Lets this process (and the server it starts) open `n` files, within the hard
/// limit.
fn allow_open_files(n: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < n) {
        assert!(
            limit.maximum.is_none_or(|max| max >= n),
            "the hard open-file limit is below {n}: {limit:?}"
        );
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(n),
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
}

#[test]
fn a_thousand_idle_connections_do_not_stop_service() {
    allow_open_files(4096);
    let s = Sandbox::new();
    s.prepare();
    let head_timeout = Duration::from_secs(3);
    let server = s.serve(&[("WEB_CLIENT_REQUEST_TIMEOUT_MS", "3000")]);
    let open_files = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .unwrap()
            .count()
    };
    let before = open_files();
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..1000).map(|_| connect(&server)).collect();
    // Accepted by the server, not waiting in the kernel's backlog.
    wait_for("the server to hold the connections", head_timeout, || {
        let held = open_files() - before;
        if held >= 1000 { Ok(()) } else { Err(held) }
    });

    assert_eq!(served(&server, "GET", "/posts", None), 200);
    let body = json!({"title": "busy", "content": "but served"});
    assert_eq!(served(&server, "POST", "/posts", Some(&body)), 201);
    assert_eq!(served(&server, "GET", "/me", None), 200);
    assert!(
        opened.elapsed() < head_timeout,
        "too slow to show anything: {:?}",
        opened.elapsed()
    );

    // Having sent nothing, each is closed once its head timeout passes.
    for stream in &mut idle {
        let seen = read_until_closed(stream, opened, head_timeout + Duration::from_secs(5));
        assert!(seen.closed.is_some(), "{seen:?}");
    }
    assert_eq!(served(&server, "GET", "/posts", None), 200);
}
