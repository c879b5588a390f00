//! The studio in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), against the real `studio --write` and `web serve` binaries on
//! one database file. Signs in through the one-time URL, pages through posts,
//! filters by author, follows a foreign key, edits a title and reads it back
//! through the API, meets the conflict message of a stale edit, and sees a form
//! posted from another origin refused. Screenshots go to
//! `target/studio-screenshots/`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use end_to_end::{ADMIN_TOKEN, Sandbox, free_port, wait_for};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const ENTER: &str = "\u{E007}";

/// The path `scripts/chromium.sh` prints for `what` (installing Debian's
/// package when the machine lacks it).
fn installed(what: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chromium.sh");
    let out = Command::new(&path).arg(what).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One WebDriver session.
struct Browser {
    base: String,
    session: String,
    agent: ureq::Agent,
    shots: PathBuf,
    _driver: Killed,
}

impl Browser {
    /// A browser with a profile of its own under `scratch`; `plain` turns
    /// JavaScript off and asks for the dark colour scheme.
    fn start(scratch: &Path, profile: &str, plain: bool) -> Browser {
        let chromium = installed("browser");
        let driver_path = installed("driver");
        let port = free_port();
        let driver = Killed(
            Command::new(driver_path)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://127.0.0.1:{port}");
        let agent = end_to_end::agent();
        wait_for("chromedriver", Duration::from_secs(20), || {
            agent
                .get(&format!("{base}/status"))
                .call()
                .map_err(|e| e.to_string())
        });
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".into(),
            format!("--user-data-dir={}", scratch.join(profile).display()),
        ];
        let mut prefs = json!({});
        if plain {
            args.push("--force-dark-mode".into());
            args.push("--blink-settings=preferredColorScheme=0".into());
            prefs = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args, "prefs": prefs }
        }}});
        let mut reply = agent
            .post(&format!("{base}/session"))
            .send_json(&capabilities)
            .unwrap();
        let created: Value = reply.body_mut().read_json().unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/studio-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            base,
            session,
            agent,
            shots,
            _driver: driver,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let reply = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        };
        let mut reply = reply.unwrap();
        let status = reply.status();
        let value: Value = reply.body_mut().read_json().unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_owned()
    }

    /// Waits for a navigation to reach a URL containing `part`.
    fn wait_url(&self, part: &str) -> String {
        wait_for(
            &format!("a URL with {part}"),
            Duration::from_secs(10),
            || {
                let url = self.url();
                if url.contains(part) {
                    Ok(url)
                } else {
                    Err(url)
                }
            },
        )
    }

    fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{css}: {found}"))
                    .to_owned()
            })
            .collect()
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/click"), None);
    }

    fn attribute(&self, css: &str, name: &str) -> String {
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn type_into(&self, css: &str, text: &str, replace: bool) {
        let element = self.find(css);
        if replace {
            self.call("POST", &format!("/element/{element}/clear"), None);
        }
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn screenshot(&self, name: &str) {
        let data = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
    }
}

/// Serves `html` to every request on a port of its own: a page of another origin.
fn other_origin(html: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    base
}

fn title_through_api(server: &end_to_end::Server, id: i64) -> String {
    let reply = server.call("GET", &format!("/posts/{id}"), Some(ADMIN_TOKEN), None);
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["title"].as_str().unwrap().to_owned()
}

#[test]
fn the_studio_works_in_a_real_browser() {
    let s = Sandbox::new();
    s.prepare();
    s.run("seed", &["--demo", "4", "120"]);
    let api = s.serve(&[]);

    let port = free_port();
    let mut studio = s.command("studio", &["--write"]);
    studio
        .env("STUDIO_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut studio = Killed(studio.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(studio.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let login = line.trim().to_owned();
    let origin = format!("http://127.0.0.1:{port}");
    assert!(
        login.starts_with(&format!("{origin}/login?token=")),
        "the first line is the login URL: {login:?}"
    );

    let browser = Browser::start(s.dir.path(), "profile", false);

    // Sign in through the one-time URL: the cookie is set and the tables show.
    browser.go(&login);
    assert_eq!(browser.url(), format!("{origin}/"));
    assert!(browser.source().contains("Tables"));
    browser.screenshot("1-tables");

    // Page through posts: 50 a page, next and back by keyset.
    browser.go(&format!("{origin}/t/posts"));
    assert_eq!(browser.find_all("table.rows tbody tr").len(), 50);
    let first_id = browser.text("table.rows tbody tr td a");
    browser.screenshot("2-posts");
    browser.click("a[rel=next]");
    browser.wait_url("after=");
    assert_ne!(browser.text("table.rows tbody tr td a"), first_id);
    browser.click("a[rel=prev]");
    browser.wait_url("before=");
    assert_eq!(browser.text("table.rows tbody tr td a"), first_id);

    // Filter by author through the filter form.
    let author = browser.text("table.rows tbody tr a.fk");
    browser.click("select#fc option[value=author_id]");
    browser.click("select[name=fo] option[value=eq]");
    browser.type_into("input[name=fv]", &author, false);
    browser.click("button[name=add]");
    browser.wait_url("author_id");
    let authors: Vec<String> = browser
        .find_all("table.rows tbody tr a.fk")
        .iter()
        .map(|e| {
            browser
                .call("GET", &format!("/element/{e}/text"), None)
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        !authors.is_empty() && authors.iter().all(|a| a == &author),
        "{authors:?}"
    );
    browser.screenshot("3-filtered");

    // Follow the foreign key to the author, whose page lists their posts.
    browser.click("table.rows tbody tr a.fk");
    browser.wait_url("/t/users/row?key=");
    assert!(browser.source().contains("posts of this user"));
    browser.screenshot("4-author");

    // Escape leaves a form without saving.
    browser.go(&format!("{origin}/t/posts/new"));
    browser.type_into("#v-title", "Never saved\u{E00C}", false);
    let list = format!("{origin}/t/posts");
    wait_for("Escape to leave the form", Duration::from_secs(10), || {
        let url = browser.url();
        if url == list { Ok(()) } else { Err(url) }
    });
    assert!(!browser.source().contains("Never saved"));

    // Edit a title (Enter saves) and read it back through the API.
    let id: i64 = first_id.parse().unwrap();
    browser.go(&format!("{origin}/t/posts/row?key={id}"));
    browser.type_into("#v-title", &format!("Edited in the browser{ENTER}"), true);
    wait_for("the saved row page", Duration::from_secs(10), || {
        if browser.source().contains("Edited in the browser") && !browser.url().contains("update") {
            Ok(())
        } else {
            Err(format!("{}: {}", browser.url(), browser.source()))
        }
    });
    assert_eq!(title_through_api(&api, id), "Edited in the browser");
    browser.screenshot("5-edited");

    // A stale edit: the API changes the post after the page was loaded.
    browser.go(&format!("{origin}/t/posts/row?key={id}"));
    let patched = api.call(
        "PATCH",
        &format!("/posts/{id}"),
        Some(ADMIN_TOKEN),
        Some(&json!({ "title": "Changed through the API" })),
    );
    assert_eq!(patched.status, 200, "{patched:?}");
    browser.type_into("#v-title", "My stale edit", true);
    browser.click("form.edit button[type=submit]");
    browser.wait_url("/t/posts/update");
    let conflict = browser.source();
    assert!(
        conflict.contains("changed since the page was loaded"),
        "the conflict message"
    );
    assert!(conflict.contains("Changed through the API") && conflict.contains("My stale edit"));
    browser.screenshot("6-conflict");
    assert_eq!(title_through_api(&api, id), "Changed through the API");

    // A page on another origin posts a form to the studio: refused.
    let attack = other_origin(format!(
        r#"<!doctype html><form method="post" action="{origin}/t/posts/delete"><input name="key" value="{id}"><button id="go">go</button></form>"#
    ));
    browser.go(&format!("{attack}/"));
    browser.click("#go");
    browser.wait_url(&format!("{origin}/t/posts/delete"));
    let refused = browser.source();
    assert!(
        refused.contains("Refused") || refused.contains("Sign in"),
        "the studio refused it: {refused}"
    );
    browser.screenshot("7-other-origin");
    assert_eq!(
        title_through_api(&api, id),
        "Changed through the API",
        "the post is still there"
    );

    // With JavaScript off and a dark colour scheme, in the same session: search,
    // save through the form, and the dark style.
    let cookie = browser.call("GET", "/cookie/studio_session", None)["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = Browser::start(s.dir.path(), "plain-profile", true);
    plain.go(&format!("{origin}/assets/studio.css"));
    plain.call(
        "POST",
        "/cookie",
        Some(
            json!({ "cookie": { "name": "studio_session", "value": cookie, "path": "/",
                                 "httpOnly": true, "sameSite": "Strict" } }),
        ),
    );
    plain.go(&format!("{origin}/t/posts"));
    plain.type_into("#q", "Changed through the API", false);
    plain.click("form.search button");
    plain.wait_url("q=");
    assert_eq!(plain.find_all("table.rows tbody tr").len(), 1);
    let body = plain.find("body");
    let background = plain.call(
        "GET",
        &format!("/element/{body}/css/background-color"),
        None,
    );
    assert_eq!(background, json!("rgba(21, 24, 28, 1)"), "the dark style");
    plain.screenshot("8-no-javascript-dark");
    // Scripts are off indeed: Escape, the script's key, leaves the form open.
    plain.go(&format!("{origin}/t/posts/new"));
    plain.type_into("#v-title", "\u{E00C}", false);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(plain.url(), format!("{origin}/t/posts/new"));
    plain.go(&format!("{origin}/t/posts/row?key={id}"));
    plain.type_into("#v-title", "Saved without JavaScript", true);
    plain.click("form.edit button[type=submit]");
    wait_for(
        "the save without JavaScript",
        Duration::from_secs(10),
        || match title_through_api(&api, id) {
            title if title == "Saved without JavaScript" => Ok(()),
            title => Err(title),
        },
    );
    drop(plain);

    // Back in the studio, the posts table as the README shows it.
    browser.go(&format!("{origin}/t/posts"));
    assert!(
        browser.attribute("a[rel=next]", "href").contains("after="),
        "keyset links"
    );
    browser.screenshot("studio");
}

#[test]
fn the_studio_refuses_to_listen_beyond_this_machine() {
    let s = Sandbox::new();
    s.prepare();
    let mut cmd = s.command("studio", &[]);
    cmd.env("STUDIO_BIND", "0.0.0.0:0");
    let said = Sandbox::fail(cmd);
    assert!(said.contains("not a loopback address"), "{said}");
}
