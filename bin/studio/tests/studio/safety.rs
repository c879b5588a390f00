//! One test per safety rule.

use std::time::Duration;

use crate::common::{LOGIN, Studio, database, seed};

#[test]
fn every_page_without_the_session_cookie_is_401() {
    let (studio, rows) = Studio::start(true);
    for path in [
        "/",
        "/t/posts",
        "/t/users",
        &format!("/t/users/row?key={}", rows.ada),
        "/t/posts/export.csv",
        "/migrations",
        "/backups",
        "/facts",
    ] {
        let reply = studio.get(path, None);
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
        assert!(!reply.body.contains("ada@example.com"), "{path}");
        let wrong = studio.get(path, Some("not-a-session"));
        assert_eq!(wrong.status, 401, "{path} with a made-up session");
    }
    let post = studio.post(
        "/t/posts/delete",
        "not-a-session",
        &[("key", &rows.draft.to_string())],
    );
    assert_eq!(post.status, 401);
}

#[test]
fn the_login_link_works_once_and_sets_a_strict_http_only_cookie() {
    let (studio, _) = Studio::start(false);
    let wrong = studio.get(&format!("/login?token={}", "f".repeat(64)), None);
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());

    let first = studio.get(&format!("/login?token={LOGIN}"), None);
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"));
    let cookie = first.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("studio_session=")
        .unwrap();
    assert_ne!(session, LOGIN, "the session id is not the login token");
    assert_eq!(studio.get("/", Some(session)).status, 200);

    let again = studio.get(&format!("/login?token={LOGIN}"), None);
    assert_eq!(again.status, 401, "a used login token is refused");
    assert!(again.header("set-cookie").is_none());
}

#[test]
fn a_request_for_another_host_is_refused() {
    let (studio, _) = Studio::start(true);
    let session = studio.login();
    let cookie = format!("studio_session={session}");
    let port = studio.host.rsplit_once(':').unwrap().1.to_owned();
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let reply = studio.send(
            "GET",
            "/t/users",
            &[("Host", &host), ("Cookie", &cookie)],
            "",
        );
        assert_eq!(reply.status, 421, "Host {host}: {reply:?}");
        assert!(!reply.body.contains("ada@example.com"));
        let login = studio.send(
            "GET",
            &format!("/login?token={LOGIN}"),
            &[("Host", &host)],
            "",
        );
        assert_eq!(login.status, 421, "login through Host {host}");
    }
    assert_eq!(studio.get("/t/users", Some(&session)).status, 200);
}

#[test]
fn a_write_without_the_session_csrf_token_is_refused() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let key = rows.draft.to_string();
    for csrf in [None, Some("".to_owned()), Some("0".repeat(64))] {
        let mut form = vec![("key", key.as_str())];
        if let Some(csrf) = &csrf {
            form.push(("csrf", csrf));
        }
        let reply = studio.post("/t/posts/delete", &session, &form);
        assert_eq!(reply.status, 403, "csrf {csrf:?}: {reply:?}");
    }
    let still = studio.get(&format!("/t/posts/row?key={key}"), Some(&session));
    assert_eq!(still.status, 200, "the post is still there");
}

#[test]
fn a_write_from_another_origin_is_refused() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let key = rows.draft.to_string();
    let form = [("key", key.as_str()), ("csrf", csrf.as_str())];
    let port = studio.host.rsplit_once(':').unwrap().1.to_owned();
    for origin in [
        Some("http://evil.example".to_owned()),
        Some(format!("http://localhost:{port}")),
        Some("null".to_owned()),
        None,
    ] {
        let reply = studio.post_from("/t/posts/delete", &session, origin.as_deref(), &form);
        assert_eq!(reply.status, 403, "Origin {origin:?}: {reply:?}");
    }
    let still = studio.get(&format!("/t/posts/row?key={key}"), Some(&session));
    assert_eq!(still.status, 200, "the post is still there");
    // The same form from the studio's own origin goes through.
    assert_eq!(studio.post("/t/posts/delete", &session, &form).status, 303);
}

#[test]
fn every_response_has_a_strict_csp_and_no_cors_headers() {
    let (studio, _) = Studio::start(false);
    let session = studio.login();
    let cookie = format!("studio_session={session}");
    let asks = [
        ("GET", "/", cookie.as_str()),
        ("GET", "/t/posts", cookie.as_str()),
        ("GET", "/assets/studio.css", ""),
        ("GET", "/t/users", ""),
        ("OPTIONS", "/t/users", cookie.as_str()),
    ];
    for (method, path, cookie) in asks {
        let mut headers = vec![
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie));
        }
        let reply = studio.send(method, path, &headers, "");
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.starts_with("default-src 'self'"),
            "{method} {path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        let cors: Vec<_> = reply
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{method} {path}: {cors:?}");
    }
}

#[test]
fn pages_load_nothing_from_anywhere_else() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let mut seen_assets = 0;
    for path in [
        "/".to_owned(),
        "/t/posts".to_owned(),
        format!("/t/users/row?key={}", rows.ada),
        "/t/posts/new".to_owned(),
        "/migrations".to_owned(),
        "/backups".to_owned(),
        "/facts".to_owned(),
    ] {
        let page = studio.get(&path, Some(&session)).body;
        for attribute in ["src=\"", "href=\"", "action=\""] {
            for (at, _) in page.match_indices(attribute) {
                let value = &page[at + attribute.len()..];
                let value = &value[..value.find('"').unwrap()];
                assert!(
                    value.starts_with('/') && !value.starts_with("//")
                        || value.starts_with('#')
                        || value.starts_with('?'),
                    "{path}: {attribute}{value}"
                );
                if value.starts_with("/assets/") {
                    seen_assets += 1;
                }
            }
        }
        assert!(
            !page.contains("<style") && !page.contains("<script>"),
            "{path}: inline style or script"
        );
    }
    assert!(seen_assets > 0);
    // The assets are served by the binary itself, without a session.
    let css = studio.get("/assets/studio.css", None);
    assert_eq!(css.status, 200);
    assert!(css.body.contains("prefers-color-scheme: dark"));
    let js = studio.get("/assets/studio.js", None);
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[test]
fn token_hashes_are_never_shown() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let hashes: Vec<String> = studio
        .db
        .read(|conn| {
            use diesel::prelude::*;
            domain::schema::tokens::table
                .select(domain::schema::tokens::token_hash)
                .load::<String>(conn)
                .map_err(db::Error::from)
        })
        .unwrap();
    assert!(!hashes.is_empty());
    let token_id: String = studio
        .db
        .read(|conn| {
            use diesel::prelude::*;
            domain::schema::tokens::table
                .select(domain::schema::tokens::id)
                .first::<String>(conn)
                .map_err(db::Error::from)
        })
        .unwrap();
    let mut shown = String::new();
    for path in [
        "/t/tokens".to_owned(),
        "/t/tokens?sort=user_id".to_owned(),
        format!("/t/tokens/row?key={token_id}"),
        format!("/t/users/row?key={}", rows.ada),
        "/t/tokens/export.csv".to_owned(),
        "/t/tokens/export.json".to_owned(),
    ] {
        let reply = studio.get(&path, Some(&session));
        assert_eq!(reply.status, 200, "{path}");
        shown.push_str(&reply.body);
    }
    assert!(shown.contains(&token_id), "the token rows are shown");
    for hash in &hashes {
        assert!(!shown.contains(hash.as_str()), "a token hash was shown");
    }
    assert!(!shown.contains("token_hash"));
    assert!(!shown.contains(&rows.token_secret));
    for path in ["/t/tokens?f=token_hash:eq:x", "/t/tokens?sort=token_hash"] {
        assert_eq!(studio.get(path, Some(&session)).status, 400, "{path}");
    }
}

#[test]
fn read_only_is_the_default() {
    let (studio, rows) = Studio::start(false);
    let session = studio.login();
    let key = rows.draft.to_string();
    let page = studio
        .get(&format!("/t/posts/row?key={key}"), Some(&session))
        .body;
    assert!(!page.contains("<form"), "no edit form in read-only mode");
    assert!(page.contains("read-only"));
    // Even a well-formed write from the studio's own origin is refused.
    let form = [("key", key.as_str()), ("csrf", "x")];
    for path in [
        "/t/posts/delete",
        "/t/posts/update",
        "/t/users/insert",
        "/backups/take",
    ] {
        assert_eq!(studio.post(path, &session, &form).status, 403, "{path}");
    }
    assert_eq!(studio.get("/t/posts/new", Some(&session)).status, 403);
    assert_eq!(
        studio
            .get(&format!("/t/posts/row?key={key}"), Some(&session))
            .status,
        200
    );
}

#[test]
fn writes_queue_on_the_single_writer() {
    let (mut db, place) = database();
    if db.is_postgres() {
        return; // PostgreSQL has several writers; the queue is SQLite's.
    }
    let rows = seed(&db);
    let mut config = db.config().clone();
    config.pool_timeout = Duration::from_millis(300);
    db = db::Db::open(&config).unwrap();
    let studio = Studio::serve(db.clone(), place, true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let key = rows.draft.to_string();
    let form = [("key", key.as_str()), ("csrf", csrf.as_str())];
    // Holding the one writer connection (as a long API write would), the studio's
    // delete cannot start: it waits its pool timeout and answers busy.
    let writer = db.writer_conn().unwrap();
    let busy = studio.post("/t/posts/delete", &session, &form);
    assert_eq!(busy.status, 503, "{busy:?}");
    drop(writer);
    assert_eq!(studio.post("/t/posts/delete", &session, &form).status, 303);
}

#[test]
fn the_studio_binds_loopback_addresses_only() {
    assert!(studio::loopback_host("127.0.0.1:4983").is_ok());
    assert!(studio::loopback_host("localhost:4983").is_ok());
    for bind in ["0.0.0.0:4983", "[::]:4983", "4983"] {
        assert!(studio::loopback_host(bind).is_err(), "{bind}");
    }
}
