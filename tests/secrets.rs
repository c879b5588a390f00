//! No known secrets: a fresh clone's `.env` gets a random admin token, readable by
//! its owner only and shown once; the seed refuses short and placeholder tokens and
//! revokes the previous `ADMIN_TOKEN` when it changes.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use end_to_end::{ADMIN_TOKEN, Sandbox};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// A fresh clone as far as `.env` goes: the script and `.env.example`, no `.env`.
fn fresh_clone() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("scripts")).unwrap();
    fs::copy(
        root().join("scripts/dotenv.sh"),
        dir.path().join("scripts/dotenv.sh"),
    )
    .unwrap();
    fs::copy(root().join(".env.example"), dir.path().join(".env.example")).unwrap();
    dir
}

fn dotenv(dir: &Path) -> String {
    // Through bash rather than exec: the copy was just written, and a test that
    // forks meanwhile may still hold it open for writing (ETXTBSY).
    let out = Command::new("bash")
        .arg(dir.join("scripts/dotenv.sh"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn admin_token_of(env_file: &str) -> String {
    env_file
        .lines()
        .find_map(|l| l.strip_prefix("ADMIN_TOKEN="))
        .unwrap()
        .to_owned()
}

#[test]
fn the_example_holds_no_usable_token() {
    let example = fs::read_to_string(root().join(".env.example")).unwrap();
    assert_eq!(admin_token_of(&example), "", "{example}");
}

#[test]
fn a_fresh_clone_gets_a_random_private_token_shown_once_and_kept() {
    let clone = fresh_clone();
    let said = dotenv(clone.path());
    let env_path = clone.path().join(".env");
    let first = fs::read_to_string(&env_path).unwrap();
    let token = admin_token_of(&first);
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
    assert!(said.contains(&token), "the token is shown: {said}");
    assert!(said.contains("curl"), "with a command to try: {said}");
    let mode = fs::metadata(&env_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    // Every other line is the example's.
    let example = fs::read_to_string(clone.path().join(".env.example")).unwrap();
    let others = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("ADMIN_TOKEN="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&first), others(&example));
    // Later runs leave it alone and say nothing.
    assert_eq!(dotenv(clone.path()), "");
    assert_eq!(fs::read_to_string(&env_path).unwrap(), first);
    // Another clone gets another token.
    let other = fresh_clone();
    dotenv(other.path());
    let second = admin_token_of(&fs::read_to_string(other.path().join(".env")).unwrap());
    assert_ne!(second, token);
}

#[test]
fn the_seed_refuses_short_and_placeholder_tokens() {
    let s = Sandbox::new();
    s.run("web", &["migrate"]);
    for (token, says) in [
        ("short-token-0123456789", "at least 32 characters"),
        ("change-me-local-admin-token", "placeholder"),
        (
            "replace-with-a-random-secret-of-32-or-more-characters",
            "placeholder",
        ),
    ] {
        let mut cmd = s.command("seed", &[]);
        cmd.env("ADMIN_TOKEN", token);
        let stderr = Sandbox::fail(cmd);
        assert!(stderr.contains(says), "{token}: {stderr}");
        assert!(
            !stderr.contains(token),
            "the refusal echoes no secret: {stderr}"
        );
    }
    let mut conn = s.conn();
    assert!(end_to_end::dump(&mut conn, "tokens", "id").is_empty());
}

#[test]
fn a_changed_admin_token_revokes_the_previous_one() {
    let s = Sandbox::new();
    s.prepare();
    let next = "the-next-admin-token-0123456789abcdefghij";
    let mut cmd = s.command("seed", &[]);
    cmd.env("ADMIN_TOKEN", next);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("revoked"), "{said}");
    let server = s.serve(&[]);
    assert_eq!(
        server.call("GET", "/me", Some(ADMIN_TOKEN), None).status,
        401
    );
    assert_eq!(server.call("GET", "/me", Some(next), None).status, 200);
    // Seeding the same value again revokes nothing more.
    let mut again = s.command("seed", &[]);
    again.env("ADMIN_TOKEN", next);
    let out = again.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("revoked"));
    assert_eq!(server.call("GET", "/me", Some(next), None).status, 200);
}
