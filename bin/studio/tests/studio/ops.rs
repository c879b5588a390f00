//! The operations pages: migrations with dates, backups taken and verified in
//! write mode, and the database's facts.

use crate::common::Studio;

#[test]
fn the_migrations_page_lists_each_migration_applied_with_its_date() {
    let (studio, _) = Studio::start(false);
    let session = studio.login();
    let page = studio.get("/migrations", Some(&session)).body;
    assert!(page.contains("2026-11-01-000001_create_users_posts"));
    assert!(page.contains(", 0 pending"), "{page}");
    let year = chrono::Utc::now().format("%Y-").to_string();
    assert!(
        page.matches(&format!("<td>{year}")).count() >= 5,
        "the date each was applied"
    );
}

#[test]
fn the_facts_page_reads_the_settings_back() {
    let (studio, _) = Studio::start(false);
    let session = studio.login();
    let page = studio.get("/facts", Some(&session)).body;
    if studio.db.is_postgres() {
        assert!(page.contains("PostgreSQL"), "the server version");
        assert!(page.contains("database size"));
        assert!(page.contains("setting statement_timeout"));
    } else {
        assert!(page.contains("PRAGMA journal_mode</th><td><code>wal"));
        assert!(page.contains("PRAGMA foreign_keys</th><td><code>1"));
        assert!(page.contains("SQLite version</th><td><code>3."));
        assert!(page.contains("page count") && page.contains("WAL file size"));
    }
}

#[test]
fn a_backup_is_taken_and_verified_in_write_mode() {
    let (studio, _) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let taken = studio.post("/backups/take", &session, &[("csrf", &csrf)]);
    assert_eq!(taken.status, 200);
    if studio.db.is_postgres() {
        assert!(taken.body.contains("pg_dump"), "{}", taken.body);
        return;
    }
    assert!(
        taken.body.contains("Backup taken and verified"),
        "{}",
        taken.body
    );
    let file_at = taken.body.find("name=\"file\" value=\"").unwrap() + 19;
    let file = &taken.body[file_at..file_at + taken.body[file_at..].find('"').unwrap()];
    assert!(taken.body.contains("users 2"), "the manifest's row counts");
    let verified = studio.post(
        "/backups/verify",
        &session,
        &[("csrf", &csrf), ("file", file)],
    );
    assert!(verified.body.contains("Verified"), "{}", verified.body);
    let elsewhere = studio.post(
        "/backups/verify",
        &session,
        &[("csrf", &csrf), ("file", "../app.db")],
    );
    assert!(elsewhere.body.contains("not one of the backups"));
}
