//! `web backup` / `web restore` as an operator runs them, and the server's own
//! scheduled backups. Real binaries, temporary files, loopback only.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use end_to_end::{ADMIN_TOKEN, Sandbox, bin, dump, wait_for};
use serde_json::json;

const POSTS: &str = "id, title, content, author_id, published_at";

fn newest_backup(s: &Sandbox) -> std::path::PathBuf {
    let mut found: Vec<_> = fs::read_dir(s.backup_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    found.sort();
    found.pop().unwrap()
}

#[test]
fn restore_refuses_a_corrupt_file_a_newer_schema_and_a_running_server() {
    let s = Sandbox::new();
    s.prepare();
    s.run("seed", &["--demo", "5", "200"]);
    s.run("web", &["backup"]);
    let backup = newest_backup(&s);
    let before = dump(&mut s.conn(), "posts", POSTS);

    // Flipped bytes in a copy that carries the original's manifest.
    let corrupt = s.dir.path().join("corrupt.db");
    let mut bytes = fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 32]
        .iter_mut()
        .for_each(|b| *b ^= 0xFF);
    fs::write(&corrupt, &bytes).unwrap();
    fs::copy(
        format!("{}.json", backup.display()),
        format!("{}.json", corrupt.display()),
    )
    .unwrap();
    let err = Sandbox::fail(s.command("web", &["restore", corrupt.to_str().unwrap()]));
    assert!(err.contains("does not match its manifest"), "{err}");

    // A backup of a file that a newer build migrated.
    let newer = Sandbox::new();
    newer.prepare();
    diesel::connection::SimpleConnection::batch_execute(
        &mut newer.conn(),
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')",
    )
    .unwrap();
    newer.run("web", &["backup"]);
    let err =
        Sandbox::fail(s.command("web", &["restore", newest_backup(&newer).to_str().unwrap()]));
    assert!(err.contains("29991231000000"), "{err}");

    // A server holds the database.
    let server = s.serve(&[]);
    let err = Sandbox::fail(s.command("web", &["restore", backup.to_str().unwrap()]));
    assert!(err.contains("running server"), "{err}");
    drop(server);

    assert_eq!(
        dump(&mut s.conn(), "posts", POSTS),
        before,
        "database untouched"
    );

    // And the good backup restores.
    s.run("web", &["restore", backup.to_str().unwrap()]);
    assert_eq!(dump(&mut s.conn(), "posts", POSTS), before);
}

#[test]
fn make_restore_hands_any_file_name_to_the_binary_and_runs_none_of_it() {
    let s = Sandbox::new();
    s.prepare();
    s.run("seed", &["--demo", "3", "20"]);
    s.run("web", &["backup"]);
    let backup = newest_backup(&s);
    let before = dump(&mut s.conn(), "posts", POSTS);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin_dir = bin("web").parent().unwrap().to_owned();

    // Each name is a real backup: the restore must find it under exactly that name.
    let names = [
        "x; touch pwned-semicolon.db",
        "$(touch pwned-subst).db",
        "`touch pwned-backtick`.db",
        "\"; touch pwned-quote; \".db",
        "'; touch pwned-single; '.db",
        "$(shell touch pwned-make).db",
    ];
    for name in names {
        let copy = s.dir.path().join(name);
        fs::copy(&backup, &copy).unwrap();
        fs::copy(
            format!("{}.json", backup.display()),
            format!("{}.json", copy.display()),
        )
        .unwrap();
        // The sandbox is the working folder, so an injected `touch` would land there.
        let out = Command::new("make")
            .args(["-s", "-f"])
            .arg(root.join("Makefile"))
            .arg("restore")
            .arg("CARGO=true")
            .arg(format!("BIN={}", bin_dir.display()))
            .arg(format!("file={name}"))
            .current_dir(s.dir.path())
            .env("DATABASE_URL", s.db_path())
            .env("BACKUP_DIR", s.backup_dir())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("restored from {name} (verified)")),
            "{name}: {out:?}"
        );
    }
    let pwned: Vec<_> = fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(pwned.is_empty(), "injected commands ran: {pwned:?}");
    assert_eq!(dump(&mut s.conn(), "posts", POSTS), before);

    let mut cmd = s.command("web", &["restore"]);
    cmd.env("RESTORE_FILE", "no such.db");
    let err = Sandbox::fail(cmd);
    assert!(err.contains("no such.db"), "{err}");
}

#[test]
fn the_server_takes_scheduled_backups_and_health_reports_their_age() {
    let s = Sandbox::new();
    s.prepare();
    let server = s.serve(&[("BACKUP_INTERVAL", "1")]);
    let created = server.call(
        "POST",
        "/posts",
        Some(ADMIN_TOKEN),
        Some(&json!({"title": "kept", "content": "in the backup"})),
    );
    assert_eq!(created.status, 201);
    let health = wait_for(
        "/health to report a scheduled backup",
        Duration::from_secs(20),
        || {
            let health = server.call("GET", "/health", None, None);
            if health.body["lastBackup"].is_null() {
                Err(health.body)
            } else {
                Ok(health)
            }
        },
    );
    let age = health.body["lastBackup"]["ageSeconds"].as_i64().unwrap();
    assert!((0..20).contains(&age), "{:?}", health.body);
    let file = health.body["lastBackup"]["file"].as_str().unwrap();
    assert!(s.backup_dir().join(file).exists());
    assert!(s.backup_dir().join(format!("{file}.json")).exists());
}
