//! The README's "Reusing the db crate" section, taken at its word: its dependency
//! block and its `main.rs` become a crate outside this workspace, built and run on
//! databases the real binaries made.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use diesel::prelude::*;
use domain::schema::posts;
use end_to_end::Sandbox;
use serde_json::Value;

const SECTION: &str = "## Reusing the db crate";

/// Written by the test; the README supplies everything after it. The empty
/// `[workspace]` makes the crate a workspace of its own, as in a repository of its
/// own, although its folder sits under this repository's `target/`.
const PACKAGE: &str = "[package]
name = \"other-service\"
version = \"0.1.0\"
edition = \"2024\"
publish = false

[workspace]

";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target folder this test was built into (`target/debug/deps/reuse-*`).
fn target_root() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// The README section under `SECTION`, up to the next `## ` heading.
fn readme_section() -> String {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| *l != SECTION);
    assert!(
        lines.next().is_some(),
        "README.md has no `{SECTION}` section"
    );
    lines
        .take_while(|l| !l.starts_with("## "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The first fenced block of `lang` in `section`, verbatim.
fn block(section: &str, lang: &str) -> String {
    let fence = format!("```{lang}");
    let mut lines = section.lines().skip_while(|l| *l != fence);
    assert!(
        lines.next().is_some(),
        "README.md, section `{SECTION}`: no ```{lang} block"
    );
    let body: Vec<&str> = lines.take_while(|l| *l != "```").collect();
    assert!(
        !body.is_empty(),
        "README.md, section `{SECTION}`: the ```{lang} block is empty or not closed"
    );
    body.iter().map(|l| format!("{l}\n")).collect()
}

/// Writes only when the content differs, so an unchanged `main.rs` keeps its
/// modification time and cargo does not rebuild it.
fn write_if_changed(path: &Path, content: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(content) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

/// The folder names the dependency paths climb into (`../NAME/...`): each becomes a
/// link to this repository beside the service, as a clone next to it would be.
fn sibling_names(dependencies: &str) -> Vec<String> {
    let mut names: Vec<String> = dependencies
        .split("path = \"")
        .skip(1)
        .map(|rest| {
            let path = rest.split('"').next().unwrap();
            let mut parts = path.split('/');
            let (Some(".."), Some(name)) = (parts.next(), parts.next()) else {
                panic!("README.md: dependency path {path:?} is not `../<repository>/...`");
            };
            name.to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(
        !names.is_empty(),
        "README.md: the dependency block names no crate by path"
    );
    names
}

/// `--config` flags repeating the workspace's `[profile.dev]` and
/// `[profile.dev.package."*"]`, so the service builds the way the API does.
fn profile_flags(root: &Path) -> Vec<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut table: Option<&str> = None;
    let mut flags = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = [r#"profile.dev"#, r#"profile.dev.package."*""#]
                .into_iter()
                .find(|t| *t == name);
        } else if let (Some(table), Some((key, value))) = (table, line.split_once('='))
            && !line.starts_with('#')
        {
            flags.push("--config".to_owned());
            flags.push(format!("{table}.{}={}", key.trim(), value.trim()));
        }
    }
    assert!(!flags.is_empty(), "no [profile.dev] settings in Cargo.toml");
    flags
}

/// `LIBSQLITE3_FLAGS` of `.cargo/config.toml`, the options SQLite is compiled with.
fn sqlite_flags(root: &Path) -> String {
    let config = fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
    let line = config
        .lines()
        .find_map(|l| l.strip_prefix("LIBSQLITE3_FLAGS"))
        .expect("LIBSQLITE3_FLAGS in .cargo/config.toml");
    line.trim_start_matches([' ', '='])
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// The registry packages the service depends on, as `cargo metadata` resolves them
/// with the lock file beside it.
fn registry_packages(cargo: &OsStr, manifest: &Path) -> Vec<String> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata on the README service:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["source"].is_null())
        .map(|p| p["name"].as_str().unwrap().replace('-', "_"))
        .collect()
}

/// True for a unit of one of `packages` in a target folder: `name-<16 hex>` in
/// `build/` and `.fingerprint/`, `libname-<16 hex>.rlib` and the like in `deps/`.
fn is_unit_of(file_name: &str, packages: &[String]) -> bool {
    let stem = file_name.split('.').next().unwrap_or_default();
    let Some((name, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    let name = name.replace('-', "_");
    hash.len() == 16
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && packages
            .iter()
            .any(|p| *p == name || Some(p.as_str()) == name.strip_prefix("lib"))
}

/// Copies the workspace's compiled units of the service's registry dependencies
/// into the service's target folder, where it has none of them yet. The same
/// versions (the copied lock file), features and profile give the same unit names,
/// so cargo takes them as built and compiles only `db`, `domain` and the service.
fn seed_from_workspace(workspace: &Path, service: &Path, packages: &[String]) {
    for sub in ["deps", "build", ".fingerprint"] {
        let Ok(entries) = fs::read_dir(workspace.join(sub)) else {
            continue;
        };
        let into = service.join(sub);
        let missing: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap();
                is_unit_of(&name.to_string_lossy(), packages) && !into.join(name).exists()
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        fs::create_dir_all(&into).unwrap();
        // `cp -a` keeps modification times, which cargo's freshness checks compare.
        let status = Command::new("cp")
            .arg("-a")
            .args(&missing)
            .arg(&into)
            .status()
            .unwrap();
        assert!(status.success(), "copying {sub} into {}", into.display());
    }
}

/// Lays the README's crate out under `target/reuse/` (kept between runs, with a
/// target folder of its own: a `cargo test` may hold the lock on the workspace's)
/// and builds it; returns the executable.
fn build_readme_service() -> PathBuf {
    let root = repo_root();
    let section = readme_section();
    let dependencies = block(&section, "toml");
    let main_rs = block(&section, "rust");

    let dir = target_root().join("reuse");
    let service = dir.join("service");
    for name in sibling_names(&dependencies) {
        let link = dir.join(&name);
        if fs::read_link(&link).ok().as_deref() != Some(root.as_path()) {
            let _ = fs::remove_file(&link);
            fs::create_dir_all(&dir).unwrap();
            symlink(&root, &link).unwrap();
        }
    }
    write_if_changed(
        &service.join("Cargo.toml"),
        &format!("{PACKAGE}{dependencies}"),
    );
    write_if_changed(&service.join("src/main.rs"), &main_rs);
    // The versions the API is built and tested with.
    fs::copy(root.join("Cargo.lock"), service.join("Cargo.lock")).unwrap();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let packages = registry_packages(&cargo, &service.join("Cargo.toml"));
    seed_from_workspace(
        &target_root().join("debug"),
        &dir.join("target/debug"),
        &packages,
    );
    let out = Command::new(&cargo)
        .arg("build")
        .arg("--manifest-path")
        .arg(service.join("Cargo.toml"))
        .args(profile_flags(&root))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("LIBSQLITE3_FLAGS", sqlite_flags(&root))
        .current_dir(&service)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the service in README.md, section `{SECTION}`, does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("README service built in {:.1?}", started.elapsed());
    dir.join("target/debug/other-service")
}

/// Runs the service on the sandbox's database; its output, one line per entry.
fn run_service(exe: &Path, s: &Sandbox) -> Vec<String> {
    let out = Command::new(exe)
        .current_dir(s.dir.path())
        .env("DATABASE_URL", s.db_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README service failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Names of the migrations under `migrations/sqlite`, as `web migrate` prints them.
fn migration_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repo_root().join("migrations/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_readme_service_reads_the_apis_posts_and_migrates_a_new_file() {
    let exe = build_readme_service();
    let migrations = migration_names();

    // A database the API's binaries made: migrated, with nine published posts and
    // one draft (every tenth demo post is a draft).
    let api = Sandbox::new();
    api.run("web", &["migrate"]);
    api.run("seed", &["--demo", "2", "10"]);
    let rows: Vec<(String, bool)> = posts::table
        .select((posts::title, posts::published_at.is_not_null()))
        .load(&mut api.conn())
        .unwrap();
    let (published, drafts): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, p)| *p);
    assert_eq!((published.len(), drafts.len()), (9, 1));

    let lines = run_service(&exe, &api);
    assert!(
        !lines
            .iter()
            .any(|l| migrations.iter().any(|m| l.contains(m.as_str()))),
        "applied a migration to a database `web migrate` had brought up to date: {lines:#?}"
    );
    for (title, _) in &published {
        assert!(
            lines.iter().any(|l| l.contains(title.as_str())),
            "published post {title:?} not listed: {lines:#?}"
        );
    }
    for (title, _) in &drafts {
        assert!(
            !lines.iter().any(|l| l.contains(title.as_str())),
            "draft {title:?} listed to an anonymous reader: {lines:#?}"
        );
    }
    assert_eq!(
        lines.len(),
        published.len(),
        "one line per published post: {lines:#?}"
    );

    // A new file: the service applies every migration and finds no posts, and the
    // API then finds its schema complete.
    let empty = Sandbox::new();
    let lines = run_service(&exe, &empty);
    assert_eq!(
        lines.len(),
        migrations.len(),
        "one line per applied migration, no posts: {lines:#?}"
    );
    for (line, name) in lines.iter().zip(&migrations) {
        assert!(
            line.contains(name.as_str()),
            "{name} not applied: {lines:#?}"
        );
    }
    let again = empty.run("web", &["migrate"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to apply"),
        "{again:?}"
    );
}
