//! Backups are verified before they get a final name; restores refuse anything
//! doubtful and leave the current database untouched when they do, install exactly
//! the bytes they verified, and leave nothing half-done after a crash.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use db::{Config, Db, Error, ServerLock};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use domain::{Actor, NewPostInput, NewUserInput, Post, Role, Timestamp, User};

fn none(_: &str, _: u64, _: u64) {}

fn add_posts(db: &Db, n: usize) {
    db.write(|c| {
        let user = NewUserInput {
            email: format!("a{}@example.com", User::count(c)?),
            name: "A".into(),
            role: None,
        }
        .validate(Timestamp::now())?
        .insert(c)?;
        let actor = Actor::Member {
            id: user.id,
            role: Role::User,
        };
        for i in 0..n {
            Post::create(
                c,
                &actor,
                &NewPostInput {
                    title: format!("post {i}"),
                    content: "x".repeat(200),
                    ..Default::default()
                },
            )?;
        }
        Ok::<_, domain::Error>(())
    })
    .unwrap();
}

/// Backups are named by the millisecond they start: waits until the clock has
/// passed `at`, so the next one gets a name of its own.
fn next_millisecond_after(at: DateTime<Utc>) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Utc::now().timestamp_millis() <= at.timestamp_millis() {
        assert!(
            Instant::now() < deadline,
            "the clock did not pass {at} within a second"
        );
        std::thread::yield_now();
    }
}

/// Where `table`'s b-tree root page starts in the file at `path`. Damage there is
/// what `integrity_check` always finds, wherever migrations put other pages (bytes
/// flipped at a fixed offset may land in free space or inside a row's text).
fn root_page_offset(path: &Path, table: &str) -> usize {
    #[derive(QueryableByName)]
    struct Root {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rootpage: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        page_size: i64,
    }
    // immutable=1: read the file as it is, leaving no -wal or -shm beside it.
    let mut conn =
        SqliteConnection::establish(&format!("file:{}?immutable=1", path.display())).unwrap();
    let root: Root = diesel::sql_query(
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) AS page_size \
         FROM sqlite_master WHERE name = ?",
    )
    .bind::<diesel::sql_types::Text, _>(table)
    .get_result(&mut conn)
    .unwrap();
    usize::try_from((root.rootpage - 1) * root.page_size).unwrap()
}

fn counts(db: &Db) -> (i64, i64) {
    db.read(|c| Ok::<_, domain::Error>((User::count(c)?, Post::count(c)?)))
        .unwrap()
}

fn finals(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&config.backup_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn backup_is_verified_described_and_retained() {
    let t = common::migrated();
    add_posts(&t.db, 50);
    let mut config = t.db.config().clone();
    config.backup_keep = 2;
    let first = db::backup_file(&config, &none).unwrap();
    let m = &first.manifest;
    assert!(m.tables.contains(&("posts".into(), 50)), "{:?}", m.tables);
    assert!(m.tables.contains(&("users".into(), 1)));
    assert_eq!(m.size, fs::metadata(&first.path).unwrap().len());
    assert_eq!(m.schema_version, Some(common::newest_version()));
    // The manifest on disk is the one returned.
    let on_disk: db::Manifest =
        serde_json::from_slice(&fs::read(format!("{}.json", first.path.display())).unwrap())
            .unwrap();
    assert_eq!(&on_disk, m);
    db::verify_backup(&first.path, &db::MIGRATIONS, &none).unwrap();

    let mut last = first.manifest.created_at;
    for _ in 0..3 {
        next_millisecond_after(last);
        last = db::backup_file(&config, &none).unwrap().manifest.created_at;
    }
    let backups = db::list_backups(&config).unwrap();
    assert_eq!(backups.len(), 2);
    assert!(!backups.contains(&first.path), "the oldest went first");
    assert_eq!(
        finals(&config).len(),
        4,
        "two backups, two manifests: {:?}",
        finals(&config)
    );
}

#[test]
fn restore_round_trip_keeps_the_previous_file_and_drops_the_old_wal() {
    let t = common::migrated();
    add_posts(&t.db, 10);
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    add_posts(&t.db, 5);
    assert_eq!(counts(&t.db), (2, 15));
    let wal = format!("{}-wal", config.database);
    drop(t.db);
    // Something is left in a -wal by a writer that did not checkpoint.
    {
        let mut c = SqliteConnection::establish(&config.database.to_string()).unwrap();
        c.batch_execute("PRAGMA wal_autocheckpoint = 0; UPDATE posts SET title = 'changed'")
            .unwrap();
        std::mem::forget(c); // no checkpoint on close: the -wal stays
    }
    assert!(Path::new(&wal).exists());

    let restored = db::restore(&config, &db::MIGRATIONS, &backup.path, &none).unwrap();
    assert!(!Path::new(&wal).exists(), "stale -wal removed");
    let pre = restored.pre_restore.unwrap();
    assert!(pre.exists());

    let db = Db::open(&config).unwrap();
    assert_eq!(counts(&db), (1, 10));
    // The pre-restore copy, with its -wal, still holds everything.
    let mut keep = Config::for_path(&pre);
    keep.backup_dir = t.dir.path().join("unused");
    assert_eq!(counts(&Db::open(&keep).unwrap()), (2, 15));
}

#[test]
fn restore_refuses_a_corrupt_file_and_leaves_the_database_untouched() {
    let t = common::migrated();
    add_posts(&t.db, 100);
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    add_posts(&t.db, 1);

    // Flip bytes at the head of the posts table's root page, in a copy that keeps
    // the original's manifest.
    let corrupt = t.dir.path().join("corrupt.db");
    fs::copy(&backup.path, &corrupt).unwrap();
    let root = root_page_offset(&corrupt, "posts");
    let mut bytes = fs::read(&corrupt).unwrap();
    for b in &mut bytes[root..root + 64] {
        *b ^= 0xA5;
    }
    fs::write(&corrupt, &bytes).unwrap();
    fs::copy(
        format!("{}.json", backup.path.display()),
        format!("{}.json", corrupt.display()),
    )
    .unwrap();
    let err = db::restore(&config, &db::MIGRATIONS, &corrupt, &none).unwrap_err();
    assert!(
        err.to_string().contains("does not match its manifest"),
        "{err}"
    );

    // Even with a manifest made to match, SQLite's own check refuses it.
    let mut manifest: db::Manifest =
        serde_json::from_slice(&fs::read(format!("{}.json", corrupt.display())).unwrap()).unwrap();
    use sha2::Digest;
    manifest.sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    fs::write(
        format!("{}.json", corrupt.display()),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let err = db::restore(&config, &db::MIGRATIONS, &corrupt, &none).unwrap_err();
    assert!(
        matches!(err, Error::Restore(_) | Error::Open { .. }),
        "{err:?}"
    );
    // No backup manifest at all: refused.
    fs::remove_file(format!("{}.json", corrupt.display())).unwrap();
    assert!(db::restore(&config, &db::MIGRATIONS, &corrupt, &none).is_err());

    assert_eq!(counts(&t.db), (2, 101), "current database untouched");
}

#[test]
fn restore_refuses_a_newer_schema() {
    let t = common::migrated();
    add_posts(&t.db, 3);
    t.db.writer_conn()
        .unwrap()
        .batch_execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')")
        .unwrap();
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    t.db.writer_conn()
        .unwrap()
        .batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '29991231000000'")
        .unwrap();
    match db::restore(&config, &db::MIGRATIONS, &backup.path, &none) {
        Err(Error::SchemaTooNew(v)) => assert_eq!(v, ["29991231000000"]),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(counts(&t.db), (1, 3));
}

#[test]
fn restore_refuses_while_a_server_holds_the_database() {
    let t = common::migrated();
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    let lock = ServerLock::acquire(&config).unwrap();
    let err = db::restore(&config, &db::MIGRATIONS, &backup.path, &none).unwrap_err();
    assert!(matches!(err, Error::Locked(_)), "{err:?}");
    assert!(err.to_string().contains("running server"), "{err}");
    drop(lock);
    db::restore(&config, &db::MIGRATIONS, &backup.path, &none).unwrap();
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(fs::read(path).unwrap()))
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn titles_changed(db: &Db) -> i64 {
    db.read(|c| {
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;
        diesel::select(sql::<BigInt>(
            "(SELECT count(*) FROM posts WHERE title = 'changed')",
        ))
        .get_result(c)
        .map_err(Error::from)
    })
    .unwrap()
}

fn integrity(db: &Db) -> String {
    db.read(|c| {
        use diesel::dsl::sql;
        use diesel::sql_types::Text;
        diesel::select(sql::<Text>(
            "(SELECT integrity_check FROM pragma_integrity_check)",
        ))
        .get_result(c)
        .map_err(Error::from)
    })
    .unwrap()
}

/// Leaves `path` as a writer that never checkpointed leaves it: its newest commits
/// (every post retitled `changed`) only in `<path>-wal`, and no process holding
/// either file.
fn leave_commits_in_the_wal(path: &Path) {
    let wal = companion(path, "-wal");
    let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    c.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
         UPDATE posts SET title = 'changed'",
    )
    .unwrap();
    // The pair as it is now; closing the connection would fold the WAL in.
    let (main_bytes, wal_bytes) = (fs::read(path).unwrap(), fs::read(&wal).unwrap());
    drop(c);
    fs::write(path, main_bytes).unwrap();
    fs::write(&wal, wal_bytes).unwrap();
    let _ = fs::remove_file(companion(path, "-shm"));
}

#[test]
fn restore_refuses_a_backup_given_by_a_symbolic_link() {
    let t = common::migrated();
    add_posts(&t.db, 3);
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    add_posts(&t.db, 2);

    let link = t.dir.path().join("link.db");
    symlink(&backup.path, &link).unwrap();
    fs::copy(companion(&backup.path, ".json"), companion(&link, ".json")).unwrap();
    let err = db::restore(&config, &db::MIGRATIONS, &link, &none).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");

    // The file itself, but its manifest through a link: refused as well.
    let copy = t.dir.path().join("copy.db");
    fs::copy(&backup.path, &copy).unwrap();
    symlink(companion(&backup.path, ".json"), companion(&copy, ".json")).unwrap();
    let err = db::restore(&config, &db::MIGRATIONS, &copy, &none).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");

    assert_eq!(counts(&t.db), (2, 5), "current database untouched");
}

#[test]
fn restore_installs_the_bytes_it_verified_and_nothing_beside_the_backup() {
    let t = common::migrated();
    add_posts(&t.db, 10);
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    add_posts(&t.db, 5);
    drop(t.db);

    // A backup in WAL mode with commits in a -wal beside it: the manifest describes
    // the file alone, so the -wal must be neither applied nor folded into it.
    let wal_mode = t.dir.path().join("wal-mode.db");
    fs::copy(&backup.path, &wal_mode).unwrap();
    leave_commits_in_the_wal(&wal_mode);
    let mut manifest = backup.manifest.clone();
    manifest.sha256 = sha256(&wal_mode);
    manifest.size = fs::metadata(&wal_mode).unwrap().len();
    fs::write(
        companion(&wal_mode, ".json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let wal_before = fs::read(companion(&wal_mode, "-wal")).unwrap();

    db::verify_backup(&wal_mode, &db::MIGRATIONS, &none).unwrap();
    let restored = db::restore(&config, &db::MIGRATIONS, &wal_mode, &none).unwrap();
    assert_eq!(restored.manifest, manifest);
    assert_eq!(
        sha256(config.database.sqlite_path().unwrap()),
        manifest.sha256,
        "the installed file is the verified one"
    );
    assert_eq!(
        sha256(&wal_mode),
        manifest.sha256,
        "the backup was not changed"
    );
    assert_eq!(fs::read(companion(&wal_mode, "-wal")).unwrap(), wal_before);
    assert!(!companion(&wal_mode, "-shm").exists());
    for leftover in ["-wal", "-shm", ".restore.partial", ".restore.pending"] {
        assert!(
            !companion(config.database.sqlite_path().unwrap(), leftover).exists(),
            "{leftover} beside the restored database"
        );
    }
    let db = Db::open(&config).unwrap();
    assert_eq!(counts(&db), (1, 10));
    assert_eq!(
        titles_changed(&db),
        0,
        "the backup's own -wal was not applied"
    );
}

#[test]
fn restore_through_a_symbolic_link_to_the_database_replaces_the_file_it_names() {
    let t = common::migrated();
    add_posts(&t.db, 4);
    let backup = db::backup_file(t.db.config(), &none).unwrap();
    add_posts(&t.db, 4);
    let real = t.db.config().database.sqlite_path().unwrap().to_owned();
    drop(t.db);

    let elsewhere = t.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let link = elsewhere.join("link.db");
    symlink(&real, &link).unwrap();
    let mut config = Config::for_path(&link);
    config.backup_dir = t.dir.path().join("backups");
    db::restore(&config, &db::MIGRATIONS, &backup.path, &none).unwrap();

    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(sha256(&real), backup.manifest.sha256);
    assert_eq!(counts(&Db::open(&Config::for_path(&real)).unwrap()), (1, 4));
}

#[test]
fn one_lock_for_every_path_to_the_same_file() {
    let t = common::migrated();
    let config = t.db.config().clone();
    let lock = ServerLock::acquire(&config).unwrap();

    let linked_file = t.dir.path().join("link.db");
    symlink(config.database.sqlite_path().unwrap(), &linked_file).unwrap();
    let linked_folder = t.dir.path().join("folder-link");
    symlink(t.dir.path(), &linked_folder).unwrap();
    for other in [linked_file, linked_folder.join("app.db")] {
        let err = ServerLock::acquire(&Config::for_path(&other)).unwrap_err();
        assert!(
            matches!(err, Error::Locked(_)),
            "{}: {err:?}",
            other.display()
        );
    }
    let backup = db::backup_file(&config, &none).unwrap();
    let through_link = Config::for_path(t.dir.path().join("link.db"));
    let err = db::restore(&through_link, &db::MIGRATIONS, &backup.path, &none).unwrap_err();
    assert!(err.to_string().contains("running server"), "{err}");
    drop(lock);
    ServerLock::acquire(&through_link).unwrap();
}

#[test]
fn restore_keeps_pre_restore_copies_and_leftovers_within_retention() {
    let t = common::migrated();
    add_posts(&t.db, 2);
    let mut config = t.db.config().clone();
    config.backup_keep = 2;
    let backup = db::backup_file(&config, &none).unwrap();
    drop(t.db);

    // Leftovers of an interrupted backup: an old one goes, a fresh one (perhaps a
    // backup running now) stays.
    let stale = config
        .backup_dir
        .join(".app-20200101T000000.000Z.db.partial");
    let fresh = config
        .backup_dir
        .join(".app-20990101T000000.000Z.db.partial");
    for file in [&stale, &fresh] {
        fs::write(file, b"half a backup").unwrap();
    }
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();

    let mut copies = Vec::new();
    let mut removed = Vec::new();
    for _ in 0..3 {
        let restored = db::restore(&config, &db::MIGRATIONS, &backup.path, &none).unwrap();
        // Pre-restore copies are named by the millisecond too.
        next_millisecond_after(Utc::now());
        copies.push(restored.pre_restore.unwrap());
        removed.extend(restored.removed);
    }
    let kept: Vec<String> = finals(&config)
        .into_iter()
        .filter(|n| n.starts_with("pre-restore-"))
        .collect();
    let newest: Vec<String> = copies[1..]
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(kept, newest, "the newest two pre-restore copies are kept");
    assert_eq!(removed, [copies[0].clone()]);
    assert!(!stale.exists(), "a stale .partial is pruned");
    assert!(fresh.exists(), "a recent .partial is left alone");
    assert!(db::list_backups(&config).unwrap().contains(&backup.path));
}

#[test]
fn a_restore_stopped_after_its_rename_is_finished_before_the_file_is_read() {
    let t = common::migrated();
    add_posts(&t.db, 10);
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    drop(t.db);
    // The database is that same backup, restored earlier, with commits since then
    // still in its -wal: the WAL's pages are exactly the restored file's pages, so
    // replayed onto it they would show.
    let db_path = config.database.sqlite_path().unwrap();
    fs::copy(&backup.path, db_path).unwrap();
    leave_commits_in_the_wal(db_path);

    // What a crash between the rename and the removal of the old -wal leaves.
    fs::write(companion(db_path, ".restore.pending"), b"").unwrap();
    let staged = companion(db_path, ".restore.partial");
    fs::copy(&backup.path, &staged).unwrap();
    fs::rename(&staged, db_path).unwrap();

    let db = Db::open(&config).unwrap();
    assert_eq!(titles_changed(&db), 0, "the old WAL was not replayed");
    assert_eq!(counts(&db), (1, 10));
    assert_eq!(integrity(&db), "ok");
    assert!(!companion(db_path, ".restore.pending").exists());
}

#[test]
fn a_restore_stopped_before_its_rename_leaves_the_database_with_its_wal() {
    let t = common::migrated();
    add_posts(&t.db, 10);
    let config = t.db.config().clone();
    let backup = db::backup_file(&config, &none).unwrap();
    add_posts(&t.db, 5);
    drop(t.db);
    let db_path = config.database.sqlite_path().unwrap();
    leave_commits_in_the_wal(db_path);

    // What a crash just before the rename leaves.
    let staged = companion(db_path, ".restore.partial");
    fs::copy(&backup.path, &staged).unwrap();
    fs::write(companion(db_path, ".restore.pending"), b"").unwrap();

    let lock = ServerLock::acquire(&config).unwrap();
    assert!(!staged.exists());
    assert!(!companion(db_path, ".restore.pending").exists());
    assert!(
        companion(db_path, "-wal").exists(),
        "the old file keeps its WAL"
    );
    drop(lock);
    let db = Db::open(&config).unwrap();
    assert_eq!(counts(&db), (2, 15));
    assert_eq!(titles_changed(&db), 15, "the commits in the WAL are there");
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn the_wal_shrinks_back_after_a_long_reader_ends() {
    let t = common::open_with(|mut c| {
        c.journal_size_limit = 256 * 1024;
        // SQLite's default: the writer checkpoints every 1 000 pages (there is no
        // executor here to do it in the background).
        c.wal_autocheckpoint = 1000;
        c
    });
    t.db.migrator(db::MIGRATIONS).run_pending().unwrap();
    let wal = format!("{}-wal", t.db.config().database);
    let wal_size = || fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

    // A long reader pins its snapshot: checkpoints cannot reset the WAL past it.
    let mut reader = t.db.reader_conn().unwrap();
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM posts;")
        .unwrap();
    for _ in 0..20 {
        add_posts(&t.db, 200);
    }
    let grown = wal_size();
    assert!(grown > 4 * 256 * 1024, "the WAL grew to {grown} bytes");
    reader.batch_execute("COMMIT").unwrap();
    drop(reader);

    // Writers go on: the next automatic checkpoint completes, the WAL restarts and
    // journal_size_limit truncates it.
    let mut after = grown;
    for _ in 0..40 {
        add_posts(&t.db, 200);
        after = wal_size();
        if after <= 256 * 1024 {
            break;
        }
    }
    assert!(
        after <= 256 * 1024,
        "the WAL is still {after} bytes (was {grown})"
    );
    // The server's periodic checkpoint empties it entirely.
    assert!(t.db.checkpoint().unwrap(), "checkpoint completed");
    assert_eq!(wal_size(), 0);
}
