//! A different service reusing `db`: its own table and migrations, the same
//! pragmas, queued writers and bounded waits.
//!
//! ```text
//! cargo run -p db --example notes -- /tmp/notes.db
//! ```

use std::thread;

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
    // A path on the command line, else DATABASE_URL and the rest from the environment.
    let config = match std::env::args().nth(1) {
        Some(path) => db::Config::for_path(path),
        None => db::Config::from_env()?,
    };
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
                        .execute(conn)?;
                    Ok::<_, db::Error>(())
                })
            })
        })
        .collect();
    for writer in writers {
        writer.join().map_err(|_| db::Error::Busy)??;
    }

    let count: i64 = db.read(|conn| Ok::<_, db::Error>(notes::table.count().get_result(conn)?))?;
    println!("{count} notes in {}", config.database_path.display());
    Ok(())
}
