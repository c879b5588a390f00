//! Retries with `Idempotency-Key` against the real server: a client that gave up
//! mid-request (before, while, or after the server did the work) and then sent
//! the same request again finds exactly one row.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use diesel::prelude::*;
use domain::schema::posts;
use end_to_end::{ADMIN_TOKEN, Sandbox, Server, wait_for};
use serde_json::{Value, json};

/// When the client gives up on its first attempt.
#[derive(Debug, Clone, Copy)]
enum GiveUp {
    /// Halfway through sending the body: the request never arrives whole.
    MidBody,
    /// Right after sending the whole request, without waiting for anything.
    AfterSending,
    /// Once the server has created the post, before reading the answer.
    AfterTheWrite,
}

fn count(s: &Sandbox, title: &str) -> i64 {
    posts::table
        .filter(posts::title.eq(title))
        .count()
        .get_result(&mut s.any_conn())
        .unwrap()
}

/// `POST /posts` with `key` over a raw connection, abandoned as `give_up` says.
fn abandon(s: &Sandbox, server: &Server, key: &str, body: &str, give_up: GiveUp) {
    let address = server.base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /posts HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    match give_up {
        GiveUp::MidBody => {
            stream
                .write_all(&body.as_bytes()[..body.len() / 2])
                .unwrap();
            stream.flush().unwrap();
            // Let the server start reading, so that it is mid-request when we go.
            std::thread::sleep(Duration::from_millis(100));
        }
        GiveUp::AfterSending => stream.write_all(body.as_bytes()).unwrap(),
        GiveUp::AfterTheWrite => {
            stream.write_all(body.as_bytes()).unwrap();
            let title = serde_json::from_str::<Value>(body).unwrap()["title"]
                .as_str()
                .unwrap()
                .to_owned();
            wait_for(
                "the abandoned post to be written",
                Duration::from_secs(10),
                || match count(s, &title) {
                    0 => Err("no row yet"),
                    _ => Ok(()),
                },
            );
        }
    }
    // Gone without reading a byte of the answer.
    stream.shutdown(Shutdown::Both).unwrap();
    drop(stream);
}

/// The retry: the same key and the very same bytes, read to the end.
fn retry(server: &Server, key: &str, body: &str) -> (u16, String) {
    let response = server
        .agent
        .post(format!("{}/posts", server.base))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("Idempotency-Key", key)
        .content_type("application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().read_to_string().unwrap())
}

#[test]
fn a_retry_after_the_client_gave_up_finds_exactly_one_row() {
    retries_find_exactly_one_row(&Sandbox::new());
}

#[test]
fn a_retry_after_the_client_gave_up_finds_exactly_one_row_on_postgres() {
    if let Some(s) = Sandbox::on_postgres() {
        retries_find_exactly_one_row(&s);
    }
}

fn retries_find_exactly_one_row(s: &Sandbox) {
    s.prepare();
    let server = s.serve(&[]);
    for (n, give_up) in [GiveUp::MidBody, GiveUp::AfterSending, GiveUp::AfterTheWrite]
        .into_iter()
        .enumerate()
    {
        let title = format!("retried {give_up:?}");
        let key = format!("retry-{n}");
        let body = json!({"title": title, "content": "sent once, created once"}).to_string();
        abandon(s, &server, &key, &body, give_up);
        let (status, answer) = retry(&server, &key, &body);
        assert_eq!(status, 201, "{give_up:?}: {answer}");
        let post: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(post["title"], title.as_str());
        assert_eq!(count(s, &title), 1, "{give_up:?}");
        // Once more, after the retry got its answer: the same answer, still one row.
        assert_eq!(retry(&server, &key, &body), (201, answer), "{give_up:?}");
        assert_eq!(count(s, &title), 1, "{give_up:?}");
    }
    // The API shows the same: one post per title.
    let listed = server.call("GET", "/posts?limit=100", Some(ADMIN_TOKEN), None);
    let mut titles: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .filter(|t| t.starts_with("retried "))
        .collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "retried AfterSending",
            "retried AfterTheWrite",
            "retried MidBody"
        ]
    );
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn concurrent_keyed_creates_of_one_caller_all_succeed() {
    concurrent_keyed_creates_all_succeed(&Sandbox::new());
}

#[test]
fn concurrent_keyed_creates_of_one_caller_all_succeed_on_postgres() {
    if let Some(s) = Sandbox::on_postgres() {
        concurrent_keyed_creates_all_succeed(&s);
    }
}

/// Many clients of one caller, each create under a key of its own, all at once:
/// keys of different requests never conflict, so every create is 201 (no 503
/// from writers that keep colliding), once, and a retry of each replays it.
fn concurrent_keyed_creates_all_succeed(s: &Sandbox) {
    s.prepare();
    let server = s.serve(&[]);
    let clients = 16;
    let each = 12;
    let created: Vec<(String, String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let server = &server;
                scope.spawn(move || {
                    (0..each)
                        .map(|n| {
                            let key = format!("burst-{client}-{n}");
                            let body =
                                json!({"title": format!("burst {client} {n}"), "content": "x"})
                                    .to_string();
                            let (status, answer) = retry(server, &key, &body);
                            assert_eq!(status, 201, "{key}: {answer}");
                            (key, body, answer)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(created.len(), clients * each);
    for (key, body, answer) in &created {
        assert_eq!(retry(&server, key, body), (201, answer.clone()), "{key}");
    }
    let mut conn = s.any_conn();
    let rows: i64 = posts::table
        .filter(posts::title.like("burst %"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(rows, i64::try_from(clients * each).unwrap());
}
