//! Configuration as a user meets it: `.env.example` and `--help` list the same
//! variables with the same defaults, blank values mean the default, and a bad value
//! is one line naming the variable.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Command;

use end_to_end::{Sandbox, bin};

/// Every `KEY=value` line of `.env.example`, set or commented out, with the value
/// when the line is set.
fn documented() -> BTreeMap<String, Option<String>> {
    let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example")).unwrap();
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        let (commented, line) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, line),
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let is_key = key.starts_with(|c: char| c.is_ascii_uppercase())
            && key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if is_key {
            keys.insert(key.to_owned(), (!commented).then(|| value.to_owned()));
        }
    }
    keys
}

/// What `--help` shows for each variable: its default, if it shows one.
fn help(binary: &str, args: &[&str]) -> BTreeMap<String, Option<String>> {
    let dir = tempfile::tempdir().unwrap();
    // No variables and no `.env`: help shows the built-in defaults.
    let out = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{binary} {args:?} --help: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // One entry per option; a description may be on the lines below its flag.
    let mut entries: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            entries.push(trimmed.to_owned());
        } else if line.starts_with(' ')
            && let Some(entry) = entries.last_mut()
        {
            entry.push(' ');
            entry.push_str(trimmed);
        }
    }
    let mut keys = BTreeMap::new();
    for entry in entries {
        let Some(env) = bracket(&entry, "[env: ") else {
            continue;
        };
        let key = env.split('=').next().unwrap().to_owned();
        keys.insert(key, bracket(&entry, "[default: ").map(str::to_owned));
    }
    keys
}

/// The text after `open` up to the closing bracket.
fn bracket<'a>(entry: &'a str, open: &str) -> Option<&'a str> {
    let start = entry.find(open)? + open.len();
    let len = entry[start..].find(']')?;
    Some(&entry[start..start + len])
}

#[test]
fn env_example_and_help_list_the_same_variables_and_defaults() {
    let documented = documented();
    let serve = help("web", &["serve"]);
    let seed = help("seed", &[]);
    let studio = help("studio", &[]);
    assert!(studio.contains_key("STUDIO_BIND"), "{studio:?}");
    for key in [
        "DATABASE_URL",
        "BIND",
        "WEB_WORKERS",
        "RUST_LOG",
        "DB_READERS",
    ] {
        assert!(
            serve.contains_key(key),
            "web serve --help lacks {key}: {serve:?}"
        );
    }
    assert!(seed.contains_key("ADMIN_TOKEN"), "{seed:?}");

    for (key, value) in &documented {
        let shown = serve
            .get(key)
            .or_else(|| seed.get(key))
            .or_else(|| studio.get(key));
        let Some(default) = shown else {
            panic!("{key} is in .env.example but no --help (web serve, seed, studio) lists it");
        };
        if let (Some(value), Some(default)) = (value, default) {
            assert_eq!(
                value, default,
                "{key}: .env.example sets {value}, --help says the default is {default}"
            );
        }
    }

    let mut shown = BTreeSet::new();
    for (binary, args) in [
        ("web", &[][..]),
        ("web", &["serve"]),
        ("web", &["migrate"]),
        ("web", &["rollback"]),
        ("web", &["status"]),
        ("web", &["backup"]),
        ("web", &["restore"]),
        ("seed", &[]),
        ("studio", &[]),
    ] {
        shown.extend(help(binary, args).into_keys());
    }
    for key in &shown {
        assert!(
            documented.contains_key(key),
            "--help lists {key} but .env.example does not document it"
        );
    }
}

#[test]
fn blank_values_in_dot_env_mean_the_defaults() {
    let s = Sandbox::new();
    // Every documented key blank, DATABASE_URL aside: a blank file name is refused.
    let blank: String = documented()
        .into_keys()
        .filter(|key| key != "DATABASE_URL")
        .map(|key| format!("{key}=\n"))
        .collect();
    fs::write(s.dir.path().join(".env"), blank).unwrap();
    let unset = |mut cmd: Command| {
        cmd.env_remove("BACKUP_DIR")
            .env_remove("ADMIN_TOKEN")
            .env_remove("RUST_LOG");
        cmd
    };
    for args in [&["migrate"][..], &["backup"]] {
        let out = unset(s.command("web", args)).output().unwrap();
        assert!(out.status.success(), "web {args:?}: {out:?}");
    }
    // BACKUP_DIR blank: backups beside the database file.
    assert!(
        fs::read_dir(s.dir.path().join("backups")).unwrap().count() > 0,
        "no backup beside the database"
    );
    let out = unset(s.command("seed", &[])).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // ADMIN_TOKEN blank: no token registered.
    assert_eq!(
        end_to_end::dump(&mut s.conn(), "tokens", "id"),
        Vec::<String>::new()
    );
}

/// Runs `cmd`, which must fail with one line naming `key` and saying `says`.
fn refused(cmd: Command, key: &str, says: &str) {
    let err = Sandbox::fail(cmd);
    let line = err.trim_end();
    assert!(!line.contains('\n'), "more than one line: {err}");
    assert!(
        line.starts_with(&format!("error: configuration: {key}: ")),
        "{err}"
    );
    assert!(line.contains(says), "{err}");
}

#[test]
fn a_bad_value_is_one_line_naming_where_it_came_from() {
    let s = Sandbox::new();
    let dot_env = s.dir.path().join(".env");
    fs::write(&dot_env, "SQLITE_FOREIGN_KEYS=maybe\n").unwrap();
    let says = "\"maybe\": expected on or off";
    refused(s.command("web", &["migrate"]), "SQLITE_FOREIGN_KEYS", says);
    refused(s.command("seed", &[]), "SQLITE_FOREIGN_KEYS", says);
    fs::remove_file(&dot_env).unwrap();

    let mut cmd = s.command("web", &["status"]);
    cmd.env("DB_READERS", "0");
    refused(cmd, "DB_READERS", "\"0\": must be at least 1");
    let mut cmd = s.command("web", &["status", "--db-readers", "none"]);
    cmd.env("DB_READERS", "2");
    refused(cmd, "--db-readers", "\"none\"");
    let mut cmd = s.command("web", &["status"]);
    cmd.env("RUST_LOG", "db=loud");
    refused(cmd, "RUST_LOG", "\"db=loud\"");
    assert!(
        !s.db_path().exists(),
        "a refused command opened the database"
    );
}

#[test]
fn a_flag_wins_over_the_environment() {
    let s = Sandbox::new();
    let flagged = s.dir.path().join("flagged.db");
    let out = s
        .command("web", &["migrate", "--database-url"])
        .arg(&flagged)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(flagged.exists());
    assert!(!s.db_path().exists());
}
