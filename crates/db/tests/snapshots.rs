//! The read snapshots a thread keeps across its point reads (`Db::read_here`):
//! fresh after every write through the same `Db`, at most `snapshot_hold` old for
//! another process's commits, and never left open by a thread that stopped reading.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use db::{Db, Error};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

fn with_table(hold: Duration) -> common::TestDb {
    let t = common::open_with(|mut c| {
        c.snapshot_hold = hold;
        // A checkpoint that readers hold back answers busy quickly.
        c.busy_timeout_ms = 200;
        c
    });
    t.db.write(|conn| {
        conn.batch_execute("CREATE TABLE t (v INTEGER NOT NULL)")
            .map_err(Error::from)
    })
    .unwrap();
    t
}

fn count(conn: &mut db::Connection) -> Result<i64, Error> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query("SELECT count(*) AS n FROM t")
        .get_result::<Row>(conn)?
        .n)
}

fn count_here(db: &Db) -> i64 {
    db.read_here(count).unwrap()
}

fn insert(db: &Db) {
    db.write(|conn| {
        conn.batch_execute("INSERT INTO t VALUES (1)")
            .map_err(Error::from)
    })
    .unwrap();
}

/// Another process's connection to the same file.
fn other_process(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
    conn
}

#[test]
fn a_point_read_sees_every_write_through_its_db_at_once() {
    // A hold far longer than the test: only the writes themselves refresh it.
    let t = with_table(Duration::from_secs(600));
    assert_eq!(count_here(&t.db), 0);
    for expected in 1..=3 {
        insert(&t.db);
        assert_eq!(count_here(&t.db), expected);
    }
    // The writer used by hand (as migrations are) counts too.
    t.db.writer_conn()
        .unwrap()
        .batch_execute("INSERT INTO t VALUES (2)")
        .unwrap();
    assert_eq!(count_here(&t.db), 4);
    // And through an executor, whose writes run on its own thread.
    let executor = db::Executor::start(t.db.clone()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        executor
            .write(|conn| {
                conn.batch_execute("INSERT INTO t VALUES (3)")
                    .map_err(Error::from)
            })
            .await
            .unwrap();
        assert_eq!(executor.read_here(count).await.unwrap(), 5);
    });
}

#[test]
fn another_process_commit_is_seen_once_the_hold_is_over() {
    let hold = Duration::from_millis(300);
    let t = with_table(hold);
    let path = t.dir.path().join("app.db");
    let begun = Instant::now();
    assert_eq!(count_here(&t.db), 0);
    other_process(&path)
        .batch_execute("INSERT INTO t VALUES (1)")
        .unwrap();
    let seen = count_here(&t.db);
    // Within the hold the read may still use the snapshot it began with.
    if begun.elapsed() < hold {
        assert_eq!(seen, 0, "the snapshot was not kept");
    }
    thread::sleep(hold);
    assert_eq!(count_here(&t.db), 1);

    // Without a hold, each read takes a snapshot of its own.
    let t = with_table(Duration::ZERO);
    let path = t.dir.path().join("app.db");
    assert_eq!(count_here(&t.db), 0);
    other_process(&path)
        .batch_execute("INSERT INTO t VALUES (1)")
        .unwrap();
    assert_eq!(count_here(&t.db), 1);
}

/// A thread that read once and then waits, as an idle server worker does; its
/// snapshot is open as long as nobody ends it.
fn read_then_idle(db: &Db) -> mpsc::Sender<()> {
    let (done, idle) = mpsc::channel::<()>();
    let (read, has_read) = mpsc::channel();
    let db = db.clone();
    thread::spawn(move || {
        read.send(count_here(&db)).unwrap();
        // The snapshot stays with the thread, not with this handle.
        drop(db);
        let _ = idle.recv();
    });
    assert_eq!(has_read.recv().unwrap(), 0);
    done
}

fn wal_size(path: &Path) -> u64 {
    std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len())
}

#[test]
fn a_snapshot_left_idle_does_not_hold_back_checkpoints() {
    let t = with_table(Duration::from_millis(20));
    t.db.checkpoint().unwrap();
    let path = t.dir.path().join("app.db");
    let _idle = read_then_idle(&t.db);
    let mut other = other_process(&path);
    for _ in 0..100 {
        other.batch_execute("INSERT INTO t VALUES (1)").unwrap();
    }
    assert!(wal_size(&path) > 0);
    // Past the hold and a period of the keeper.
    thread::sleep(Duration::from_millis(200));
    assert!(
        t.db.checkpoint().unwrap(),
        "a reader held the checkpoint back"
    );
    assert_eq!(wal_size(&path), 0);
}

#[test]
fn dropping_the_db_ends_its_threads_snapshots() {
    let t = with_table(Duration::from_secs(600));
    let path = t.dir.path().join("app.db");
    let config = t.db.config().clone();
    let _idle = read_then_idle(&t.db);
    drop(t.db);
    let db = Db::open(&config).unwrap();
    insert(&db);
    assert!(
        db.checkpoint().unwrap(),
        "a dropped Db's reader held the checkpoint back"
    );
    assert_eq!(wal_size(&path), 0);
    drop(t.dir);
}

#[test]
fn a_point_read_may_run_a_transaction_of_its_own() {
    let t = with_table(Duration::from_secs(600));
    for expected in 0..3 {
        let n = t
            .db
            .read_here(|conn| conn.transaction(|conn| Ok::<_, Error>((count(conn)?, count(conn)?))))
            .unwrap();
        assert_eq!(n, (expected, expected));
        insert(&t.db);
    }
    // A read whose transaction failed leaves the reader usable.
    let failed = t.db.read_here(|conn| {
        conn.transaction(|conn| {
            count(conn)?;
            Err::<(), _>(Error::Busy)
        })
    });
    assert!(matches!(failed, Err(Error::Busy)), "{failed:?}");
    assert_eq!(count_here(&t.db), 3);
    // A read inside a read runs on a reader of its own and sees the same.
    let nested = t.db.read_here(|conn| {
        let inner = t.db.read_here(count)?;
        Ok::<_, Error>((count(conn)?, inner))
    });
    assert_eq!(nested.unwrap(), (3, 3));
}
