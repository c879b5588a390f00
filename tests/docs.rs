//! `/docs` in a real browser: headless Chromium, with every host but loopback
//! unresolvable, renders each operation of the served `/openapi.json` and nothing
//! else, from files the `web` binary serves itself.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use end_to_end::Sandbox;
use serde_json::Value;

/// Method, path and summary (whitespace collapsed) of one operation.
type Operation = (String, String, String);

#[test]
fn the_reference_renders_every_operation_without_the_network() {
    let chromium = chromium();
    let s = Sandbox::new();
    s.prepare();
    let server = s.serve(&[]);
    let document = server.call("GET", "/openapi.json", None, None).body;
    let documented = documented(&document);
    assert!(documented.len() > 10, "{documented:?}");

    let page = render(&chromium, &format!("{}/docs", server.base), s.dir.path());
    let shown = shown(&page.dom);
    let missing: Vec<_> = documented.difference(&shown).collect();
    let extra: Vec<_> = shown.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "documented, not shown: {missing:#?}\nshown, not documented: {extra:#?}\nbrowser said:\n{}",
        page.console.join("\n")
    );
    // Blocked requests, policy violations and script errors all land here.
    assert!(
        page.console.is_empty(),
        "the page logged:\n{}",
        page.console.join("\n")
    );
}

/// The browser, installed by the project's script when the machine lacks it.
fn chromium() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chromium.sh");
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

struct Page {
    dom: String,
    /// What the page wrote to its console, one message a line.
    console: Vec<String>,
}

/// Loads `url` and returns the DOM once scripts have settled.
fn render(chromium: &Path, url: &str, scratch: &Path) -> Page {
    let dom_file = scratch.join("dom.html");
    let log_file = scratch.join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            // Without these it keeps dialling Google's hosts on a closed network.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Anything the page would fetch from another host fails, as offline.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ))
        .arg(url)
        .stdout(File::create(&dom_file).unwrap())
        .stderr(File::create(&log_file).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 60 s");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium did not render {url} ({status}):\n{log}"
    );
    let console = log
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Page { dom, console }
}

/// Every operation of the document.
fn documented(document: &Value) -> BTreeSet<Operation> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                operations.insert((
                    method.to_uppercase(),
                    path.clone(),
                    words(operation["summary"].as_str().unwrap_or_default()),
                ));
            }
        }
    }
    operations
}

/// Every operation as the page shows it: Swagger UI's summary line of each holds
/// the method, then the path, then the summary.
fn shown(dom: &str) -> BTreeSet<Operation> {
    const METHOD: &str = "class=\"opblock-summary-method\"";
    const PATH: &str = "class=\"opblock-summary-path\"";
    const SUMMARY: &str = "class=\"opblock-summary-description\"";
    dom.split(METHOD)
        .skip(1)
        .map(|block| {
            let method = text(element(block, "</span>"));
            let path = block
                .split_once(PATH)
                .map(|(_, rest)| text(element(rest, "</a>")))
                .unwrap_or_default();
            // Up to the next summary line only: an operation with no summary
            // must not borrow the next one's.
            let summary = block
                .split_once(SUMMARY)
                .map(|(_, rest)| text(element(rest, "</div>")))
                .unwrap_or_default();
            (method, path, words(&summary))
        })
        .collect()
}

/// The inside of an element whose opening tag `rest` starts within, up to `end`.
fn element<'a>(rest: &'a str, end: &str) -> &'a str {
    let inner = rest.split_once('>').map_or("", |(_, inner)| inner);
    inner.split_once(end).map_or(inner, |(inner, _)| inner)
}

/// The visible text of an HTML fragment: tags (such as the `<wbr>` breaking a long
/// path) dropped, entities decoded.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
