//! Changing the schema as a user does: `make migration` writing SQL from
//! schema.rs, `migrate --dry-run`, `rollback` and `redo` behind a verified backup,
//! `reset`, and two `migrate` runs started at once.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diesel::connection::SimpleConnection;
use end_to_end::{Sandbox, dump, migrations};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The backup a command names after `label`, checked to exist with its manifest.
fn named_backup(out: &Output, label: &str) -> PathBuf {
    let text = stdout(out);
    let path = text
        .lines()
        .find_map(|l| l.split_once(label).map(|(_, p)| PathBuf::from(p.trim())))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    assert!(path.exists(), "{}", path.display());
    assert!(
        PathBuf::from(format!("{}.json", path.display())).exists(),
        "the backup has its manifest: {}",
        path.display()
    );
    path
}

fn users(s: &Sandbox) -> usize {
    dump(&mut s.conn(), "users", "id").len()
}

#[test]
fn a_dry_run_rehearses_on_a_copy_and_leaves_the_database_as_it_was() {
    let s = Sandbox::new();
    let err = Sandbox::fail(s.command("web", &["migrate", "--dry-run"]));
    assert!(err.contains("does not exist yet"), "{err}");
    assert!(!s.db_path().exists(), "the rehearsal created no file");
    s.prepare();
    let all = migrations();
    let newest = all.last().unwrap();
    s.run("web", &["rollback"]);
    let out = s.run("web", &["migrate", "--dry-run"]);
    let text = stdout(&out);
    assert!(text.contains("the database is not touched"), "{text}");
    let step = text
        .lines()
        .find(|l| l.starts_with(newest.as_str()))
        .unwrap_or_else(|| panic!("{newest} in {text}"));
    assert!(step.ends_with(" ms"), "time taken: {step}");
    let users_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("users "))
        .unwrap();
    assert_eq!(
        users_line.split_whitespace().collect::<Vec<_>>(),
        ["users", "1", "->", "1"],
        "{text}"
    );
    assert!(
        text.contains("integrity_check ok, foreign_key_check ok"),
        "{text}"
    );
    assert!(text.contains("rehearsal passed"), "{text}");

    // Nothing applied, nothing left behind.
    let status = stdout(&s.run("web", &["status"]));
    assert!(status.contains(&format!("pending  {newest}")), "{status}");
    let leftovers: Vec<_> = fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("rehearsal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let out = s.run("web", &["migrate"]);
    assert!(stdout(&out).contains(&format!("applied {newest}")));
    assert!(
        stdout(&s.run("web", &["migrate", "--dry-run"])).contains("nothing to rehearse"),
        "up to date"
    );
}

#[test]
fn rollback_backs_up_first_and_keeps_the_first_migration_unless_forced() {
    let s = Sandbox::new();
    s.prepare();
    let all = migrations();
    for name in all.iter().skip(1).rev() {
        let out = s.run("web", &["rollback"]);
        named_backup(&out, "snapshot before reverting: ");
        assert!(
            stdout(&out).contains(&format!("reverted {name}")),
            "{out:?}"
        );
    }
    let err = Sandbox::fail(s.command("web", &["rollback"]));
    assert!(err.contains("is the first migration"), "{err}");
    assert!(err.contains("force=1"), "{err}");
    assert_eq!(users(&s), 1, "the seeded admin is still there");

    let out = s.run("web", &["rollback", "--force"]);
    named_backup(&out, "snapshot before reverting: ");
    assert!(stdout(&out).contains(&format!("reverted {}", all[0])));
    let status = stdout(&s.run("web", &["status"]));
    assert!(status.lines().all(|l| l.starts_with("pending")), "{status}");
}

#[test]
fn redo_reverts_and_reapplies_the_last_migration_after_a_backup() {
    let s = Sandbox::new();
    s.prepare();
    let newest = migrations().last().unwrap().clone();
    let out = s.run("web", &["redo"]);
    named_backup(&out, "snapshot before reverting: ");
    let text = stdout(&out);
    let reverted = text.find(&format!("reverted {newest}")).unwrap();
    let applied = text.find(&format!("applied {newest}")).unwrap();
    assert!(reverted < applied, "{text}");
    assert_eq!(users(&s), 1);
    assert!(!stdout(&s.run("web", &["status"])).contains("pending"));

    // With the newest pending, redo works on the last applied one and leaves the
    // newest to `migrate`.
    s.run("web", &["rollback"]);
    let all = migrations();
    let previous = &all[all.len() - 2];
    let text = stdout(&s.run("web", &["redo"]));
    assert!(text.contains(&format!("reverted {previous}")), "{text}");
    assert!(text.contains(&format!("applied {previous}")), "{text}");
    assert!(!text.contains(&format!("applied {newest}")), "{text}");
    let status = stdout(&s.run("web", &["status"]));
    assert!(status.contains(&format!("pending  {newest}")), "{status}");
}

#[test]
fn reset_refuses_a_database_holding_more_than_the_seed_unless_forced_and_names_its_backup() {
    let s = Sandbox::new();
    s.prepare();
    // Only what the seed makes: reset without force.
    let out = s.run("web", &["reset"]);
    named_backup(&out, "backup before the reset: ");
    assert_eq!(users(&s), 0, "re-created empty; `make reset` seeds it next");
    s.run("seed", &[]);
    assert_eq!(users(&s), 1);

    s.conn()
        .batch_execute(
            "INSERT INTO users (id, email, name, role, created_at) VALUES ('u2', 'b@x', 'B', 'user', 1)",
        )
        .unwrap();
    let err = Sandbox::fail(s.command("web", &["reset"]));
    assert!(err.contains("more rows than the seed makes"), "{err}");
    assert!(err.contains("users=2"), "{err}");
    assert!(err.contains("force=1"), "{err}");
    assert_eq!(users(&s), 2, "nothing was reset");

    let out = s.run("web", &["reset", "--force"]);
    let backup = named_backup(&out, "backup before the reset: ");
    assert_eq!(users(&s), 0);
    // The backup holds what was reset.
    let mut old = diesel::Connection::establish(backup.to_str().unwrap()).unwrap();
    assert_eq!(dump(&mut old, "users", "id").len(), 2);
}

#[test]
fn two_migrates_started_at_once_apply_each_migration_once() {
    let all = migrations();
    for round in 0..5 {
        let s = Sandbox::new();
        let children: Vec<_> = (0..2)
            .map(|_| {
                s.command("web", &["migrate"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut applied: Vec<String> = outs
            .iter()
            .flat_map(|o| {
                stdout(o)
                    .lines()
                    .filter_map(|l| l.split_once(": applied ").map(|(_, n)| n.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        applied.sort();
        assert_eq!(applied, all, "round {round}: {outs:?}");
        for out in &outs {
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("in use"), "round {round}: {err}");
            }
        }
        assert!(!stdout(&s.run("web", &["status"])).contains("pending"));
    }
}

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `make migration name=...` in a copy of the project: with a column added to
/// schema.rs it writes the SQL that adds it and the SQL that takes it out again;
/// with nothing changed it says so and leaves an empty pair.
#[test]
fn make_migration_writes_the_sql_from_the_difference_with_schema_rs() {
    let dir = tempfile::tempdir().unwrap();
    let root = project_root();
    copy_dir(&root.join("migrations"), &dir.path().join("migrations"));
    let src = dir.path().join("crates/domain/src");
    fs::create_dir_all(&src).unwrap();
    for file in ["schema.rs", "schema.patch"] {
        fs::copy(root.join("crates/domain/src").join(file), src.join(file)).unwrap();
    }
    fs::copy(root.join("diesel.toml"), dir.path().join("diesel.toml")).unwrap();
    fs::write(dir.path().join("Cargo.toml"), "").unwrap();
    let make = |name: &str| {
        Command::new("make")
            .args(["-s", "-f"])
            .arg(root.join("Makefile"))
            .arg("migration")
            .arg(format!("name={name}"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let created = |name: &str, backend: &str, file: &str| -> String {
        let folder = fs::read_dir(dir.path().join("migrations").join(backend))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(&format!("_{name}")))
            .unwrap_or_else(|| panic!("{backend} has no {name}"));
        fs::read_to_string(folder.join(file)).unwrap()
    };

    let out = make("unchanged");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("sqlite: no difference"),
        "{}",
        stdout(&out)
    );
    assert!(!created("unchanged", "sqlite", "up.sql").contains("ALTER"));

    let schema = src.join("schema.rs");
    let text = fs::read_to_string(&schema).unwrap().replacen(
        "published_at -> Nullable<BigInt>,",
        "published_at -> Nullable<BigInt>,\n        summary -> Nullable<Text>,",
        1,
    );
    fs::write(&schema, text).unwrap();
    // A second apart, so that the two versions differ.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = make("add_summary");
    assert!(out.status.success(), "{out:?}");
    let up = created("add_summary", "sqlite", "up.sql");
    let down = created("add_summary", "sqlite", "down.sql");
    assert!(
        up.contains("ALTER TABLE `posts` ADD COLUMN `summary` TEXT;"),
        "{up}"
    );
    assert!(
        !up.contains("created_at"),
        "the patch's widening is no difference: {up}"
    );
    assert!(
        down.contains("ALTER TABLE `posts` DROP COLUMN `summary`;"),
        "{down}"
    );
    // The postgres pair has the same version, generated or said to be written by hand.
    let pg = created("add_summary", "postgres", "up.sql");
    assert!(
        pg.contains("ADD COLUMN") || pg.contains("write the SQL by hand"),
        "{pg}"
    );
}
