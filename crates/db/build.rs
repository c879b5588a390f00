//! Rebuilds when a migration folder is added or removed (`embed_migrations!`
//! tracks the files it embeds, not the folder that lists them), and embeds each
//! migration's `metadata.toml`, whose keys beyond Diesel's own (what it means to
//! lose, whether it is a table rebuild) the runner reads: Diesel keeps only
//! `run_in_transaction`.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut out = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = root.join(backend);
        // A folder is scanned whole: a new migration or metadata.toml reruns this.
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut entries: Vec<(String, String)> = Vec::new();
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let metadata = entry.path().join("metadata.toml");
            if metadata.is_file() {
                // As `migrate::version_of`, which a build script cannot call.
                let version = name.split('_').next().unwrap_or(&name).replace('-', "");
                entries.push((version, metadata.display().to_string()));
            }
        }
        entries.sort();
        let _ = writeln!(
            out,
            "pub(crate) const {}_METADATA: &[(&str, &str)] = &[",
            backend.to_uppercase()
        );
        for (version, path) in entries {
            let _ = writeln!(out, "    ({version:?}, include_str!({path:?})),");
        }
        let _ = writeln!(out, "];");
    }
    let target = Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("metadata.rs");
    if let Err(e) = fs::write(&target, out) {
        panic!("writing {}: {e}", target.display());
    }
}
