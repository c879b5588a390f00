//! `/docs` and its files: same-origin, served by the app itself, outside the API.

use actix_web::test::TestRequest;

use crate::common::{self, app, bearer, send};

/// Every `src="..."` and `href="..."` of a page that loads something: a `data:`
/// URL (the empty icon that spares a request for /favicon.ico) loads nothing.
fn references(html: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| html.split(attribute).skip(1))
        .filter_map(|rest| rest.split_once('"').map(|(url, _)| url.to_owned()))
        .filter(|url| !url.starts_with("data:"))
        .collect()
}

#[actix_web::test]
async fn the_page_loads_only_files_the_app_serves() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    let page = send!(app, TestRequest::get().uri("/docs"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    for directive in policy.split(';') {
        let sources: Vec<_> = directive.split_whitespace().skip(1).collect();
        assert!(
            sources
                .iter()
                .all(|s| ["'self'", "'none'", "data:"].contains(s)),
            "{directive}: only this origin"
        );
    }

    let html = page.text();
    assert!(!html.contains("//"), "no other origin: {html}");
    let files = references(&html);
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        assert!(file.starts_with("/docs/"), "{file}");
        let served = send!(app, TestRequest::get().uri(&file));
        assert_eq!(served.status, 200, "{file}");
        let expected = if file.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(served.header("content-type"), Some(expected), "{file}");
        assert_eq!(served.header("content-encoding"), None, "{file}");
        assert!(served.body.len() > 100, "{file}");
        assert!(std::str::from_utf8(&served.body).is_ok(), "{file} is text");
    }
}

/// Swagger UI's own files are stored compressed and cached for good; a browser
/// (which always takes gzip) gets them as stored.
#[actix_web::test]
async fn vendored_files_go_out_gzipped_and_immutable() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    let html = send!(app, TestRequest::get().uri("/docs")).text();
    let vendored: Vec<_> = references(&html)
        .into_iter()
        .filter(|file| file.contains("/swagger-ui-"))
        .collect();
    assert_eq!(vendored.len(), 2, "{vendored:?}");
    for file in vendored {
        let plain = send!(app, TestRequest::get().uri(&file));
        let gzipped = send!(
            app,
            TestRequest::get()
                .uri(&file)
                .insert_header(("accept-encoding", "gzip, deflate, br, zstd"))
        );
        assert_eq!(gzipped.status, 200);
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"), "{file}");
        assert_eq!(gzipped.header("content-type"), plain.header("content-type"));
        assert_eq!(&gzipped.body[..2], [0x1f, 0x8b], "{file}: gzip magic");
        assert!(gzipped.body.len() < plain.body.len() / 3, "{file}");
        for reply in [&plain, &gzipped] {
            assert_eq!(
                reply.header("cache-control"),
                Some("public, max-age=31536000, immutable"),
                "{file}"
            );
            assert_eq!(reply.header("vary"), Some("accept-encoding"), "{file}");
        }
    }
}

/// Like /health: no token needed, and a bad one is not refused.
#[actix_web::test]
async fn the_page_ignores_the_authorization_header() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    for uri in ["/docs", "/docs/start.js"] {
        let anonymous = send!(app, TestRequest::get().uri(uri));
        let unknown_token = send!(
            app,
            TestRequest::get()
                .uri(uri)
                .insert_header(bearer("no-such-token"))
        );
        assert_eq!(
            (anonymous.status, unknown_token.status),
            (200, 200),
            "{uri}"
        );
        assert_eq!(anonymous.body, unknown_token.body, "{uri}");
    }
}

#[actix_web::test]
async fn other_methods_get_the_api_405() {
    let t = common::database(|c| c);
    let app = app!(t.db);
    let reply = send!(app, TestRequest::post().uri("/docs"));
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET"));
    let unknown = send!(app, TestRequest::get().uri("/docs/nothing.js"));
    assert_eq!(unknown.status, 404);
}
