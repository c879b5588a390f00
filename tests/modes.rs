//! Who may read what `make run`, `make backup` and `make restore` leave behind: the
//! database, its `-wal`, `-shm` and lock, backups, manifests, pre-restore copies and
//! `.env` are the owner's alone (0600), and so are their folders (0700).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use end_to_end::{ADMIN_TOKEN, Sandbox, succeed};
use serde_json::json;

/// The paths `.env.example` sets, relative to the working folder as on a fresh
/// clone, so the binaries create the folders themselves.
const PATHS: [(&str, &str); 2] = [
    ("DATABASE_URL", "data/app.db"),
    ("BACKUP_DIR", "data/backups"),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A binary as the make targets run it, in the sandbox with the `.env` paths.
fn run(s: &Sandbox, binary: &str, args: &[&str]) -> Output {
    let mut cmd = s.command(binary, args);
    cmd.envs(PATHS);
    succeed(cmd)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file and folder under `root` (and `root` itself), relative to `base`:
/// `(path, mode, is a folder)`.
fn modes(base: &Path, root: &Path) -> Vec<(String, u32, bool)> {
    let mut found = vec![(relative(base, root), mode(root), true)];
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(modes(base, &path));
        } else {
            found.push((relative(base, &path), mode(&path), false));
        }
    }
    found.sort();
    found
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base).unwrap().display().to_string()
}

/// Asserts that everything under `data/` is private and returns the files found,
/// so callers check what was there.
#[track_caller]
fn assert_private(s: &Sandbox, when: &str) -> Vec<String> {
    let found = modes(s.dir.path(), &s.dir.path().join("data"));
    let shown = |(name, mode, _): &(String, u32, bool)| format!("{name} {mode:o}");
    let open: Vec<String> = found
        .iter()
        .filter(|(_, mode, dir)| *mode != if *dir { 0o700 } else { 0o600 })
        .map(shown)
        .collect();
    assert!(
        open.is_empty(),
        "{when}: readable by others: {open:?}; all: {:?}",
        found.iter().map(shown).collect::<Vec<_>>()
    );
    found
        .into_iter()
        .filter(|(_, _, dir)| !dir)
        .map(|(name, _, _)| name)
        .collect()
}

/// The one file in `files` that starts with `prefix` and ends with `suffix`.
#[track_caller]
fn one(files: &[String], prefix: &str, suffix: &str) -> String {
    let matching: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with(prefix) && f.ends_with(suffix))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one {prefix}*{suffix} expected among {files:?}"
    );
    matching[0].clone()
}

#[test]
fn what_run_backup_and_restore_create_is_readable_by_the_owner_only() {
    // The usual umask, whatever the test runner's: the binaries must narrow it.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o022));
    let s = Sandbox::new();

    // `make run` on a fresh clone writes `.env` from `.env.example`.
    fs::copy(
        repo_root().join(".env.example"),
        s.dir.path().join(".env.example"),
    )
    .unwrap();
    let mut make = Command::new("make");
    make.arg("-f")
        .arg(repo_root().join("Makefile"))
        .arg(".env")
        .current_dir(s.dir.path());
    succeed(make);
    let env_mode = mode(&s.dir.path().join(".env"));
    assert_eq!(env_mode, 0o600, ".env has mode {env_mode:o}");

    // Then migrate, seed and serve, and a write, so the -wal holds something.
    run(&s, "web", &["migrate"]);
    run(&s, "seed", &[]);
    let server = s.serve(&PATHS);
    let created = server.call(
        "POST",
        "/posts",
        Some(ADMIN_TOKEN),
        Some(&json!({"title": "Private", "content": "owner only"})),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let files = assert_private(&s, "while serving");
    for file in [
        "data/app.db",
        "data/app.db-wal",
        "data/app.db-shm",
        "data/app.db.lock",
    ] {
        assert!(
            files.contains(&file.to_owned()),
            "no {file} among {files:?}"
        );
    }

    // `make backup`, online.
    run(&s, "web", &["backup"]);
    let files = assert_private(&s, "after backup");
    let backup = one(&files, "data/backups/app-", ".db");
    assert!(
        files.contains(&format!("{backup}.json")),
        "no manifest among {files:?}"
    );

    // SIGKILL leaves the -wal, which the pre-restore copy keeps. The backup to
    // restore is one that arrived world-readable (copied in, or made before the
    // binaries narrowed the umask): the restored database must not inherit that.
    server.kill9();
    let incoming = s.dir.path().join("incoming.db");
    for suffix in ["", ".json"] {
        let to = PathBuf::from(format!("{}{suffix}", incoming.display()));
        fs::copy(s.dir.path().join(format!("{backup}{suffix}")), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
    }
    run(&s, "web", &["restore", incoming.to_str().unwrap()]);
    let files = assert_private(&s, "after restore");
    let pre_restore = one(&files, "data/backups/pre-restore-app-", ".db");
    assert!(
        files.contains(&format!("{pre_restore}-wal")),
        "no pre-restore -wal among {files:?}"
    );
    assert!(files.contains(&"data/app.db".to_owned()), "{files:?}");

    // The restored file's own -wal and -shm, once a server opens it.
    let server = s.serve(&PATHS);
    let files = assert_private(&s, "serving the restored file");
    for file in ["data/app.db-wal", "data/app.db-shm"] {
        assert!(
            files.contains(&file.to_owned()),
            "no {file} among {files:?}"
        );
    }
    assert!(server.terminate().success());
}
