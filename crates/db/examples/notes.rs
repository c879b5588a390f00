//! A different service reusing `db`: its own table, migrations and file, the same
//! pragmas, queued writers and bounded waits.
//!
//! ```text
//! cargo run -p db --example notes [-- /tmp/notes.db]
//! ```

use std::{panic, thread};

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("examples/notes_migrations");

diesel::table! {
    notes (id) {
        id -> BigInt,
        body -> Text,
    }
}

fn main() -> db::Result<()> {
    // First, so the file, its -wal and -shm are readable by their owner only.
    db::restrict_new_files();
    // Never the API's file (DATABASE_URL): each migrator refuses a file holding
    // migrations it does not know, so sharing it would stop both services.
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/notes.db".into());
    let config = db::Config::for_path(path);
    let db = db::Db::open(&config)?;
    for name in db.migrator(MIGRATIONS).run_pending()? {
        println!("applied {name}");
    }

    // Eight threads write at once; BEGIN IMMEDIATE queues them, none fails.
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let db = db.clone();
            thread::spawn(move || {
                db.write(|conn| {
                    diesel::insert_into(notes::table)
                        .values(notes::body.eq(format!("note from writer {n}")))
                        .execute(conn)
                        .map_err(db::Error::from)
                })
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap_or_else(|p| panic::resume_unwind(p))?;
    }

    let count: i64 = db.read(|conn| Ok::<_, db::Error>(notes::table.count().get_result(conn)?))?;
    println!("{count} notes in {}", config.database);
    Ok(())
}
