//! The pool: pragmas on every connection, queued writers, bounded waits.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use db::{Db, Error, Synchronous, pragma};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use domain::{Actor, NewPostInput, NewUserInput, Post, Role, Timestamp, User};

#[test]
fn every_pooled_connection_reports_the_configured_pragmas() {
    let t = common::open_with(|mut c| {
        c.readers = 5;
        c.busy_timeout_ms = 4321;
        c.synchronous = Synchronous::Full;
        c.journal_size_limit = 1 << 20;
        c
    });
    // Hold the pool's maximum at once, so each is a distinct connection.
    let mut readers: Vec<_> = (0..5).map(|_| t.db.reader_conn().unwrap()).collect();
    let mut writer = t.db.writer_conn().unwrap();
    for (conn, query_only) in readers
        .iter_mut()
        .map(|c| (c, "1"))
        .chain(std::iter::once((&mut writer, "0")))
    {
        assert_eq!(pragma(conn, "journal_mode").unwrap(), "wal");
        assert_eq!(pragma(conn, "busy_timeout").unwrap(), "4321");
        assert_eq!(pragma(conn, "synchronous").unwrap(), "2");
        assert_eq!(pragma(conn, "foreign_keys").unwrap(), "1");
        assert_eq!(pragma(conn, "journal_size_limit").unwrap(), "1048576");
        assert_eq!(pragma(conn, "query_only").unwrap(), query_only);
    }
    // query_only is enforced, not only reported.
    let err = readers[0]
        .batch_execute("CREATE TABLE nope (x)")
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}

#[test]
fn bundled_sqlite_is_built_with_the_options_of_cargo_config() {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    let t = common::open_with(|c| c);
    let options: Vec<String> =
        t.db.read(|conn| {
            diesel::sql_query("PRAGMA compile_options")
                .load::<Row>(conn)
                .map_err(Error::from)
        })
        .unwrap()
        .into_iter()
        .map(|row| row.compile_options)
        .collect();
    // .cargo/config.toml sets these through LIBSQLITE3_FLAGS; a build without it
    // would serve with a process-wide lock on every page fetch and allocation.
    for wanted in ["THREADSAFE=2", "DEFAULT_MEMSTATUS=0"] {
        assert!(
            options.iter().any(|o| o == wanted),
            "{wanted} missing: {options:?}"
        );
    }
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
    // The options libsqlite3-sys enables and the schema relies on are still there.
    assert!(
        options.iter().any(|o| o == "DEFAULT_FOREIGN_KEYS"),
        "{options:?}"
    );
}

#[test]
fn a_pragma_that_does_not_take_is_a_startup_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(&dir);
    // SQLite caps mmap_size at its compile-time maximum, silently.
    config.mmap_size = 1 << 50;
    match Db::open(&config) {
        Err(Error::Pragma { name, .. }) => assert_eq!(name, "mmap_size"),
        other => panic!("expected a pragma error, got {other:?}"),
    }
}

#[test]
fn sixteen_writers_all_succeed_through_write() {
    let t = common::migrated();
    let threads: Vec<_> = (0..16)
        .map(|n| {
            let db = t.db.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    db.write(|conn| {
                        // Read then write in one transaction: safe under BEGIN IMMEDIATE.
                        let before = User::count(conn)?;
                        NewUserInput {
                            email: format!("w{n}-{i}@example.com"),
                            name: format!("Writer {n}"),
                            role: None,
                        }
                        .validate(Timestamp::now())?
                        .insert(conn)?;
                        assert!(User::count(conn)? == before + 1);
                        Ok::<_, domain::Error>(())
                    })
                    .unwrap_or_else(|e| panic!("writer {n} insert {i}: {e:?}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let count = t.db.read(User::count).unwrap();
    assert_eq!(count, 1600);
}

/// Guards the design: without BEGIN IMMEDIATE, a transaction that reads and then
/// writes fails at once when another writer committed in between, and
/// busy_timeout does not save it.
#[test]
fn a_deferred_read_then_write_fails_under_the_same_contention() {
    let t = common::migrated();
    let url = t.dir.path().join("app.db");
    let url = url.to_str().unwrap().to_owned();
    let open = || {
        let mut c = SqliteConnection::establish(&url).unwrap();
        c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON")
            .unwrap();
        db::Connection::Sqlite(c)
    };
    let (workers, rounds) = (8, 20);
    let barrier = Arc::new(Barrier::new(workers));
    // Failures are checked after the join: a thread that panicked would leave the
    // others waiting on the barrier.
    let threads: Vec<_> = (0..workers)
        .map(|n| {
            let barrier = barrier.clone();
            let mut conn = open();
            thread::spawn(move || {
                let mut failures = Vec::new();
                for i in 0..rounds {
                    barrier.wait();
                    let started = Instant::now();
                    let mut waited = false;
                    let outcome = conn.transaction(|c| {
                        let read = User::count(c);
                        // Every transaction holds its read snapshot before any writes.
                        barrier.wait();
                        waited = true;
                        read?;
                        NewUserInput {
                            email: format!("d{n}-{i}@example.com"),
                            name: "D".into(),
                            role: None,
                        }
                        .validate(Timestamp::now())?
                        .insert(c)?;
                        Ok::<_, domain::Error>(())
                    });
                    if !waited {
                        barrier.wait();
                    }
                    if let Err(e) = outcome {
                        failures.push((e, started.elapsed()));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    for (e, took) in &failures {
        // "database is locked", typed as the retryable Busy, and at once: the
        // 5 s busy_timeout does not help.
        assert!(matches!(e, domain::Error::Database(Error::Busy)), "{e:?}");
        assert!(*took < Duration::from_secs(1), "failed after {took:?}");
    }
    // Each round one writer commits; every other one's snapshot is then stale.
    assert_eq!(failures.len(), (workers - 1) * rounds);
}

#[test]
fn checkout_waits_a_bounded_time_then_reports_busy() {
    let t = common::open_with(|mut c| {
        c.pool_timeout = Duration::from_millis(200);
        c
    });
    let held = t.db.writer_conn().unwrap();
    let started = Instant::now();
    let outcome = t.db.write(|_| Ok::<_, Error>(()));
    assert!(matches!(outcome, Err(Error::Busy)), "{outcome:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    drop(held);
    t.db.write(|_| Ok::<_, Error>(())).unwrap();
}

#[test]
fn a_failed_write_rolls_back() {
    let t = common::migrated();
    let outcome = t.db.write(|conn| {
        NewUserInput {
            email: "gone@example.com".into(),
            name: "Gone".into(),
            role: None,
        }
        .validate(Timestamp::now())?
        .insert(conn)?;
        Err::<(), _>(domain::Error::Forbidden)
    });
    assert!(outcome.is_err());
    let count = t.db.read(User::count).unwrap();
    assert_eq!(count, 0);
}

/// `max_page_count` makes SQLite answer `SQLITE_FULL` exactly as a full disk
/// does ("database or disk is full"), without needing one.
#[test]
fn a_full_database_is_disk_full_and_the_writer_recovers() {
    #[derive(QueryableByName)]
    struct Pages {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        page_count: i64,
    }
    let t = common::migrated();
    let author =
        t.db.write(|conn| {
            NewUserInput {
                email: "author@example.com".into(),
                name: "Author".into(),
                role: None,
            }
            .validate(Timestamp::now())?
            .insert(conn)
        })
        .unwrap();
    let actor = Actor::Member {
        id: author.id.clone(),
        role: Role::User,
    };
    let post = |content: usize| NewPostInput {
        title: "big".into(),
        content: "x".repeat(content),
        ..Default::default()
    };
    let limit = {
        let mut writer = t.db.writer_conn().unwrap();
        let pages = diesel::sql_query("PRAGMA page_count")
            .get_result::<Pages>(&mut *writer)
            .unwrap()
            .page_count;
        writer
            .batch_execute(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
        pages
    };

    // A small post and then one that needs new pages, in one transaction.
    let full = t.db.write(|conn| {
        Post::create(conn, &actor, &post(10))?;
        Post::create(conn, &actor, &post(100_000))
    });
    assert!(
        matches!(full, Err(domain::Error::Database(Error::DiskFull))),
        "{full:?}"
    );
    // Nothing of it was kept, and reads go on.
    assert_eq!(t.db.read(Post::count).unwrap(), 0);

    // The same writer, still limited, is not stuck in the failed transaction: a
    // write that needs no new page goes through.
    t.db.write(|conn| {
        diesel::sql_query("UPDATE users SET name = 'Renamed'").execute(conn)?;
        Ok::<_, Error>(())
    })
    .unwrap();
    let mut writer = t.db.writer_conn().unwrap();
    #[derive(QueryableByName)]
    struct Limit {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        max_page_count: i64,
    }
    let still = diesel::sql_query("PRAGMA max_page_count")
        .get_result::<Limit>(&mut *writer)
        .unwrap()
        .max_page_count;
    assert_eq!(still, limit, "the writer connection was replaced");

    // Room again: the same write succeeds.
    writer
        .batch_execute("PRAGMA max_page_count = 1073741823")
        .unwrap();
    drop(writer);
    t.db.write(|conn| Post::create(conn, &actor, &post(100_000)))
        .unwrap();
    assert_eq!(t.db.read(Post::count).unwrap(), 1);
    let verdict =
        t.db.read(|conn| {
            #[derive(QueryableByName)]
            struct Check {
                #[diesel(sql_type = diesel::sql_types::Text)]
                integrity_check: String,
            }
            diesel::sql_query("PRAGMA integrity_check")
                .get_result::<Check>(conn)
                .map_err(Error::from)
        })
        .unwrap()
        .integrity_check;
    assert_eq!(verdict, "ok");
}

/// SQLite ends a transaction by itself on some failures (SQLITE_FULL and
/// SQLITE_IOERR may): the ROLLBACK that follows then fails, and the caller must
/// still get the failure that caused it, on a writer that goes on working.
#[test]
fn a_transaction_sqlite_already_ended_reports_the_cause() {
    let t = common::migrated();
    let outcome = t.db.write(|conn| {
        diesel::sql_query("UPDATE users SET name = name").execute(conn)?;
        // What SQLite does on its own after such a failure.
        diesel::sql_query("ROLLBACK").execute(conn)?;
        Err::<(), _>(Error::DiskFull)
    });
    assert!(matches!(outcome, Err(Error::DiskFull)), "{outcome:?}");
    t.db.write(|conn| {
        diesel::sql_query("UPDATE users SET name = name").execute(conn)?;
        Ok::<_, Error>(())
    })
    .unwrap();
}
