//! The systemd unit in `deploy/`: the README shows it as it is, it keeps the
//! sandboxing the README promises, and systemd itself accepts it.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use end_to_end::{Sandbox, bin};

const UNIT: &str = "deploy/sqlite-backend.service";
const SECTION: &str = "### Running under systemd";
/// Where the unit expects the binaries; the check below points it at the built ones.
const INSTALLED: &str = "/opt/sqlite-backend/bin/";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn unit() -> String {
    fs::read_to_string(repo_root().join(UNIT)).unwrap()
}

/// The first ```ini block of the README's section on systemd, verbatim.
fn readme_block() -> String {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| *l != SECTION);
    assert!(lines.next().is_some(), "README.md has no `{SECTION}`");
    let mut lines = lines
        .take_while(|l| !l.starts_with("## ") && !l.starts_with("### "))
        .skip_while(|l| *l != "```ini");
    assert!(lines.next().is_some(), "`{SECTION}` has no ```ini block");
    lines
        .take_while(|l| *l != "```")
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_readme_shows_the_unit_as_it_is() {
    assert_eq!(
        readme_block(),
        unit(),
        "README.md, `{SECTION}`: the ```ini block differs from {UNIT}"
    );
}

#[test]
fn the_unit_sandboxes_the_server() {
    let unit = unit();
    let settings: Vec<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for expected in [
        "User=sqlite-backend",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=sqlite-backend",
        "PrivateTmp=yes",
        "EnvironmentFile=/etc/sqlite-backend/env",
        "ExecStart=/opt/sqlite-backend/bin/web serve",
    ] {
        assert!(settings.contains(&expected), "{UNIT} lacks {expected}");
    }
    // Under ProtectSystem=strict only the state folder is writable: the database
    // and the backups the server takes must live there.
    assert!(
        settings.contains(&"WorkingDirectory=/var/lib/sqlite-backend"),
        "{UNIT}: the server runs in its state folder"
    );
    assert!(
        !settings.iter().any(|s| s.starts_with("ReadWritePaths=")),
        "{UNIT}: nothing but the state folder is writable"
    );
}

/// `systemd-analyze verify` checks every directive and that each command exists,
/// so it runs on a copy whose commands are the binaries of this build.
#[test]
fn systemd_accepts_the_unit() {
    let script = repo_root().join("scripts/systemd-analyze.sh");
    let found = Command::new(&script).output().unwrap();
    if !found.status.success() {
        eprintln!(
            "skipped: no systemd-analyze ({})",
            String::from_utf8_lossy(&found.stderr).trim()
        );
        return;
    }
    let analyze = PathBuf::from(String::from_utf8(found.stdout).unwrap().trim());

    let mut copy = unit();
    for name in ["web", "seed"] {
        let built = bin(name).display().to_string();
        copy = copy.replace(&format!("{INSTALLED}{name} "), &format!("{built} "));
        copy = copy.replace(&format!("{INSTALLED}{name}\n"), &format!("{built}\n"));
    }
    assert!(!copy.contains(INSTALLED), "{UNIT}: a command not rewritten");
    let s = Sandbox::new();
    let path = s.dir.path().join("sqlite-backend.service");
    fs::write(&path, copy).unwrap();

    let verify = Command::new(&analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // Unknown keys and bad values are warnings: exit status 0, but a message.
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {UNIT}:\n{said}"
    );

    // systemd's own exposure score, 0 (locked down) to 10; 2.5 leaves room for
    // newer systemd versions weighing the options differently.
    let security = Command::new(&analyze)
        .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        security.status.success(),
        "systemd-analyze security {UNIT}:\n{}",
        String::from_utf8_lossy(&security.stdout)
    );
}
