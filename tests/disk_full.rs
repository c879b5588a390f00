//! A full disk, for real: the server runs on a 4 MiB tmpfs of its own that the
//! test fills. Writes answer 507 and reads go on, `/ready` says why it is not
//! ready, freeing space brings writes back without a restart, and a backup that
//! runs out of space leaves nothing behind. Needs root (or CAP_SYS_ADMIN) to mount.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use end_to_end::{ADMIN_TOKEN, Sandbox, Server, integrity};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A tmpfs of `SIZE` mounted on a temporary folder, unmounted when dropped.
struct SmallDisk {
    mountpoint: TempDir,
}

impl SmallDisk {
    const SIZE: &str = "4m";

    fn mount() -> Self {
        let mountpoint = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={}", Self::SIZE),
                "tmpfs",
            ])
            .arg(mountpoint.path())
            .output()
            .unwrap_or_else(|err| {
                panic!("this test mounts a small filesystem: `mount` did not run: {err}")
            });
        assert!(
            out.status.success(),
            "this test needs a small filesystem of its own and could not mount one \
             (`mount -t tmpfs` {}: {}); run it as root or with CAP_SYS_ADMIN",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Self { mountpoint }
    }

    fn path(&self) -> &Path {
        self.mountpoint.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let path = self.mountpoint.path();
        let unmounted = Command::new("umount")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file there (a server that has not exited yet).
            let _ = Command::new("umount").arg("-l").arg(path).status();
        }
    }
}

/// Writes zeros to `path` until the filesystem refuses with ENOSPC.
fn fill(path: &Path) {
    let mut file = File::create(path).unwrap();
    let page = [0u8; 4096];
    loop {
        match file.write(&page) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::StorageFull => break,
            Err(err) => panic!("filling {}: {err}", path.display()),
        }
    }
}

/// Status, content type and body of one request with a JSON body.
fn send(server: &Server, method: &str, path: &str, body: &Value) -> (u16, String, Value) {
    let url = format!("{}{path}", server.base);
    let request = match method {
        "POST" => server.agent.post(&url),
        "PATCH" => server.agent.patch(&url),
        _ => unreachable!("{method}"),
    };
    let response = request
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send_json(body)
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.into_body().read_to_string().unwrap();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// tmpfs allocates space in pages of this size.
const PAGE: u64 = 4096;

/// A post big enough to need new space in the WAL (about 22 pages).
fn big_post() -> Value {
    json!({"title": "does not fit", "content": "x".repeat(90_000)})
}

/// Everything in the backup folder, hidden files included.
fn backup_folder(s: &Sandbox) -> Vec<PathBuf> {
    match fs::read_dir(s.backup_dir()) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(err) if err.kind() == ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn a_full_disk_answers_507_reads_go_on_and_writes_come_back_when_space_is_freed() {
    let disk = SmallDisk::mount();
    let s = Sandbox::in_dir(tempfile::tempdir_in(disk.path()).unwrap());
    s.prepare();
    s.run("seed", &["--demo", "5", "200"]);
    let server = s.serve(&[]);
    let (status, _, first) = send(
        &server,
        "POST",
        "/posts",
        &json!({"title": "before", "content": "fits"}),
    );
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_i64().unwrap();

    // How big a snapshot is, learnt while there is room; then nothing is kept.
    s.run("web", &["backup"]);
    let snapshot = backup_folder(&s)
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .map(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    backup_folder(&s)
        .iter()
        .for_each(|p| fs::remove_file(p).unwrap());

    let filler = disk.path().join("filler");
    fill(&filler);

    // Writes: 507 problem+json, never a 500.
    for (method, path) in [
        ("POST", "/posts".to_owned()),
        ("PATCH", format!("/posts/{id}")),
    ] {
        let (status, content_type, body) = send(&server, method, &path, &big_post());
        assert_eq!(status, 507, "{method} {path}: {body}");
        assert_eq!(content_type, "application/problem+json", "{method} {path}");
        assert_eq!(body["status"], 507, "{body}");
        assert_eq!(body["title"], "Insufficient Storage", "{body}");
        assert_eq!(
            body["detail"], "the disk is full; the write was not made",
            "{body}"
        );
    }

    // Reads go on, and show that nothing of the failed writes was kept.
    let list = server.call("GET", "/posts?limit=100", Some(ADMIN_TOKEN), None);
    assert_eq!(list.status, 200, "{:?}", list.body);
    let titles: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"before"), "{titles:?}");
    assert!(!titles.contains(&"does not fit"), "{titles:?}");
    let one = server.call("GET", &format!("/posts/{id}"), Some(ADMIN_TOKEN), None);
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.body["content"], "fits");

    // Alive, but not ready, and saying why.
    assert_eq!(server.call("GET", "/health", None, None).status, 200);
    let ready = server.call("GET", "/ready", None, None);
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    let detail = ready.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("writes are failing") && detail.contains("disk is full"),
        "{detail}"
    );

    // Backups given less room than the snapshot needs, about as much, and more:
    // each one either completes, manifest included, or says the disk is full and
    // leaves nothing, however far it got.
    let full_size = fs::metadata(&filler).unwrap().len();
    let pages = snapshot.div_ceil(PAGE);
    let mut outcomes = Vec::new();
    for room in [
        0,
        pages / 2,
        pages - 1,
        pages,
        pages + 1,
        pages + 2,
        pages + 8,
    ]
    .map(|p| p * PAGE)
    {
        File::options()
            .write(true)
            .open(&filler)
            .unwrap()
            .set_len(full_size - room)
            .unwrap();
        let out = s.command("web", &["backup"]).output().unwrap();
        let mut left = backup_folder(&s);
        left.sort();
        if out.status.success() {
            let names: Vec<_> = left
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert!(
                names.len() == 2 && names[1] == format!("{}.json", names[0]),
                "{room} bytes free: a backup and its manifest, not {names:?}"
            );
            // The next attempt starts from the same room.
            left.iter().for_each(|p| fs::remove_file(p).unwrap());
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("the disk is full"), "{room} bytes free: {err}");
            assert!(
                left.is_empty(),
                "{room} bytes free: the failed backup left {left:?}"
            );
        }
        outcomes.push((room, out.status.success()));
    }
    assert_eq!(outcomes.first(), Some(&(0, false)), "{outcomes:?}");
    assert!(
        outcomes.last().is_some_and(|&(_, made)| made),
        "{outcomes:?}"
    );

    // Space freed: ready again before any write comes (a balancer sends none to
    // a server it took out), and the same server takes writes again.
    fs::remove_file(&filler).unwrap();
    let ready = server.call("GET", "/ready", None, None);
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    let (status, _, after) = send(&server, "POST", "/posts", &big_post());
    assert_eq!(status, 201, "{after}");
    let (status, _, patched) = send(
        &server,
        "PATCH",
        &format!("/posts/{id}"),
        &json!({"content": "y".repeat(90_000)}),
    );
    assert_eq!(status, 200, "{patched}");
    s.run("web", &["backup"]);
    assert!(server.terminate().success());

    let mut conn = s.conn();
    assert_eq!(integrity(&mut conn), "ok");
    assert_eq!(content_length(&mut conn, id), 90_000);
}

/// The length of post `id`'s content, read straight from the file.
fn content_length(conn: &mut diesel::SqliteConnection, id: i64) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT length(content) AS n FROM posts WHERE id = ?")
        .bind::<diesel::sql_types::BigInt, _>(id)
        .get_result::<Row>(conn)
        .unwrap()
        .n
}
