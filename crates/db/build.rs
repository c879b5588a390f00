//! Rebuilds when a migration folder is added or removed: `embed_migrations!`
//! tracks the files it embeds, not the folder that lists them.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
