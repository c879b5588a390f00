//! The commands behind `make migrate`, `make rollback`, `make seed`: run as a user
//! runs them, on a temporary file.

use std::fs;
use std::os::unix::fs::symlink;

use diesel::connection::SimpleConnection;
use end_to_end::{Sandbox, dump, migrations};

const USERS: &str = "id, email, name, role, created_at";
const POSTS: &str = "id, title, content, author_id, published_at";
const TOKENS: &str = "id, user_id, token_hash, created_at";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The migration names a `web migrate` run reports as applied, in order.
fn applied(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.split_once(": applied ").map(|(_, name)| name.to_owned()))
        .collect()
}

#[test]
fn migrate_on_an_empty_path_creates_the_folder_and_prints_what_it_applied() {
    let s = Sandbox::new();
    let nested = s.dir.path().join("deep/er/app.db");
    let out = s
        .command("web", &["migrate"])
        .env("DATABASE_URL", &nested)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(applied(&out), migrations(), "{out:?}");
    assert!(nested.exists());
    let again = s
        .command("web", &["migrate"])
        .env("DATABASE_URL", &nested)
        .output()
        .unwrap();
    assert!(stdout(&again).contains("nothing to apply"), "{again:?}");
}

#[test]
fn rollback_reverts_the_last_migration_and_migrate_reapplies_it() {
    let s = Sandbox::new();
    let all = migrations();
    let newest = all.last().unwrap();
    s.run("web", &["migrate"]);
    let out = s.run("web", &["rollback"]);
    assert!(
        stdout(&out).contains(&format!("reverted {newest}")),
        "{}",
        stdout(&out)
    );
    let status = stdout(&s.run("web", &["status"]));
    let expected: Vec<String> = all
        .iter()
        .map(|m| {
            let state = if m == newest { "pending" } else { "applied" };
            format!("{state}  {m}")
        })
        .collect();
    assert_eq!(status.lines().collect::<Vec<_>>(), expected, "{status}");
    let out = s.run("web", &["migrate"]);
    assert_eq!(applied(&out), [newest.as_str()], "{out:?}");
}

#[test]
fn migrate_and_rollback_refuse_while_a_server_runs_even_through_a_symlink() {
    let s = Sandbox::new();
    s.prepare();
    let all = migrations();
    let newest = all.last().unwrap();
    // Two other paths to the same file: a link to it, and the file in a linked folder.
    let elsewhere = s.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let linked_file = elsewhere.join("link.db");
    symlink(s.db_path(), &linked_file).unwrap();
    let linked_folder = s.dir.path().join("linked-folder");
    symlink(s.dir.path(), &linked_folder).unwrap();
    let paths = [
        s.db_path(),
        linked_file.clone(),
        linked_folder.join("app.db"),
    ];

    let server = s.serve(&[]);
    for path in &paths {
        for command in ["migrate", "rollback", "redo", "reset"] {
            let mut cmd = s.command("web", &[command]);
            cmd.env("DATABASE_URL", path);
            let err = Sandbox::fail(cmd);
            assert!(
                err.contains("in use by a running server; stop it first"),
                "{command} on {}: {err}",
                path.display()
            );
        }
    }
    let status = stdout(&s.run("web", &["status"]));
    assert!(
        status.contains(&format!("applied  {newest}")),
        "nothing was reverted: {status}"
    );
    drop(server);

    // Stopped, the same commands work through the link.
    let out = s
        .command("web", &["rollback"])
        .env("DATABASE_URL", &linked_file)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains(&format!("reverted {newest}")),
        "{out:?}"
    );
    let out = s
        .command("web", &["migrate"])
        .env("DATABASE_URL", &linked_file)
        .output()
        .unwrap();
    assert_eq!(applied(&out), [newest.as_str()], "{out:?}");
    assert!(
        fs::symlink_metadata(&linked_file)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn seed_twice_gives_the_same_rows() {
    let s = Sandbox::new();
    s.run("web", &["migrate"]);
    s.run("seed", &["--demo", "20", "300"]);
    let mut conn = s.conn();
    let first = (
        dump(&mut conn, "users", USERS),
        dump(&mut conn, "posts", POSTS),
        dump(&mut conn, "tokens", TOKENS),
    );
    let out = s.run("seed", &["--demo", "20", "300"]);
    assert!(stdout(&out).contains("already present"), "{}", stdout(&out));
    let second = (
        dump(&mut conn, "users", USERS),
        dump(&mut conn, "posts", POSTS),
        dump(&mut conn, "tokens", TOKENS),
    );
    assert_eq!(first, second);
    assert_eq!(first.0.len(), 21);
    assert_eq!(first.1.len(), 300);
    assert_eq!(first.2.len(), 1, "ADMIN_TOKEN registered once");
    assert!(
        first
            .0
            .iter()
            .any(|u| u.starts_with(r#"["admin-001","admin@example.com","Admin","admin","#)),
        "{:?}",
        first.0
    );
}

#[test]
fn seed_refuses_an_unmigrated_file_with_a_clear_message() {
    let s = Sandbox::new();
    let err = Sandbox::fail(s.command("seed", &[]));
    assert!(err.contains("make migrate"), "{err}");
}

#[test]
fn the_environment_wins_over_dot_env() {
    let s = Sandbox::new();
    let from_env = s.dir.path().join("from-env.db");
    let from_file = s.dir.path().join("from-file.db");
    fs::write(
        s.dir.path().join(".env"),
        format!("DATABASE_URL={}\n", from_file.display()),
    )
    .unwrap();
    s.command("web", &["migrate"])
        .env("DATABASE_URL", &from_env)
        .status()
        .unwrap();
    assert!(from_env.exists());
    assert!(!from_file.exists());
    // Unset in the environment, the .env value is used.
    let out = s
        .command("web", &["migrate"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(from_file.exists());
}

#[test]
fn migrate_adopts_a_drizzle_kit_file_and_snapshots_it_first() {
    let s = Sandbox::new();
    let mut conn = s.conn();
    conn.batch_execute(include_str!("../crates/db/tests/fixtures/drizzle-kit.sql"))
        .unwrap();
    let before = (
        dump(&mut conn, "users", USERS),
        dump(&mut conn, "posts", POSTS),
    );
    drop(conn);
    let out = s.run("web", &["migrate"]);
    let text = stdout(&out);
    assert!(text.contains("snapshot before migrating"), "{text}");
    let mut conn = s.conn();
    assert_eq!(
        (
            dump(&mut conn, "users", USERS),
            dump(&mut conn, "posts", POSTS)
        ),
        before
    );
    assert_eq!(db_backups(&s), 1);
    // Seeding the adopted file changes nothing that was there.
    s.run("seed", &[]);
    assert_eq!(dump(&mut conn, "users", USERS), before.0);
}

fn db_backups(s: &Sandbox) -> usize {
    fs::read_dir(s.backup_dir())
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".db"))
            })
            .count()
        })
        .unwrap_or(0)
}

/// `make migration name=...` takes the name through the environment and checks it
/// before the shell sees it: a name built to run a command runs none, and a good
/// one creates the same version for both backends.
#[test]
fn make_migration_runs_nothing_from_its_name_and_creates_both_sets() {
    let dir = tempfile::tempdir().unwrap();
    let makefile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("Makefile");
    let make = |name: &str| {
        std::process::Command::new("make")
            .args(["-s", "-f"])
            .arg(&makefile)
            .arg("migration")
            .arg(format!("name={name}"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for name in [
        "x\"; touch pwned-quote; \"",
        "$(touch pwned-subst)",
        "`touch pwned-backtick`",
        "$(shell touch pwned-make)",
        "x; touch pwned-semicolon",
    ] {
        let out = make(name);
        assert!(!out.status.success(), "{name}: {out:?}");
    }
    let entries: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        entries.is_empty(),
        "something ran or was created: {entries:?}"
    );
    let out = make("add_tags");
    assert!(out.status.success(), "{out:?}");
    let created = |backend: &str| -> Vec<String> {
        fs::read_dir(dir.path().join("migrations").join(backend))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let sqlite = created("sqlite");
    assert_eq!(sqlite.len(), 1, "{sqlite:?}");
    assert!(sqlite[0].ends_with("_add_tags"), "{sqlite:?}");
    assert_eq!(created("postgres"), sqlite);
}
