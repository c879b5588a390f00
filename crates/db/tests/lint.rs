//! The migration lint over both sets of this project's migrations (it runs in
//! `make test`), and each of its rules shown catching a migration it must refuse.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::fs;
use std::path::{Path, PathBuf};

use db::MigrationSet;
use db::lint::{Finding, lint};

fn migrations(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(set)
}

#[test]
fn every_sqlite_migration_passes_the_lint_up_down_and_up_again() {
    let findings = lint(&migrations("sqlite"), MigrationSet::Sqlite).unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn every_postgres_migration_passes_the_lint() {
    let findings = lint(&migrations("postgres"), MigrationSet::Postgres).unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
}

/// The project's SQLite set plus one migration (`up`, `down`, `metadata.toml` if
/// given), linted; the findings about the added one.
fn with_migration(up: &str, down: &str, metadata: Option<&str>) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(migrations("sqlite")).unwrap() {
        let entry = entry.unwrap();
        let target = dir.path().join(entry.file_name());
        fs::create_dir(&target).unwrap();
        for file in fs::read_dir(entry.path()).unwrap() {
            let file = file.unwrap();
            fs::copy(file.path(), target.join(file.file_name())).unwrap();
        }
    }
    let added = dir.path().join("2999-01-01-000000_change");
    fs::create_dir(&added).unwrap();
    fs::write(added.join("up.sql"), up).unwrap();
    fs::write(added.join("down.sql"), down).unwrap();
    if let Some(metadata) = metadata {
        fs::write(added.join("metadata.toml"), metadata).unwrap();
    }
    lint(dir.path(), MigrationSet::Sqlite)
        .unwrap()
        .into_iter()
        .filter(|f| f.migration == "2999-01-01-000000_change")
        .collect()
}

fn says(findings: &[Finding], words: &str) {
    assert!(
        findings.iter().any(|f| f.message.contains(words)),
        "expected a finding saying {words:?}: {findings:#?}"
    );
}

const USERS_REBUILT: &str = "CREATE TABLE `users_new` (
	`id` text PRIMARY KEY NOT NULL,
	`email` text NOT NULL,
	`name` text NOT NULL,
	`role` text DEFAULT 'user' NOT NULL,
	`created_at` integer NOT NULL,
	`bio` text
);
INSERT INTO `users_new` (id, email, name, role, created_at) SELECT id, email, name, role, created_at FROM `users`;
DROP TABLE `users`;
ALTER TABLE `users_new` RENAME TO `users`;
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);
CREATE INDEX `users_created_at_id_idx` ON `users` (`created_at`, `id`);";

const USERS_RESTORED: &str = "ALTER TABLE `users` DROP COLUMN `bio`;";

#[test]
fn dropping_a_table_or_a_column_needs_the_marker() {
    let up = "DROP TABLE `idempotency_keys`;";
    let down = "CREATE TABLE `idempotency_keys` (`caller_id` text NOT NULL, `key` text NOT NULL, \
                `fingerprint` text NOT NULL, `status` integer NOT NULL, `response` text NOT NULL, \
                `created_at` bigint NOT NULL, PRIMARY KEY (`caller_id`, `key`), \
                FOREIGN KEY (`caller_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade);\n\
                CREATE INDEX `idempotency_keys_created_at_idx` ON `idempotency_keys` (`created_at`);";
    says(
        &with_migration(up, down, None),
        "drops table idempotency_keys",
    );
    let declared = "run_in_transaction = true\nloses_data = [\"idempotency_keys\"]\n";
    assert_eq!(with_migration(up, down, Some(declared)), []);

    let up = "ALTER TABLE `tokens` DROP COLUMN `label`;";
    let down = "ALTER TABLE `tokens` ADD COLUMN `label` text;";
    says(&with_migration(up, down, None), "drops column tokens.label");
    let declared = "run_in_transaction = true\nloses_data = [\"tokens\"]\n";
    assert_eq!(with_migration(up, down, Some(declared)), []);
}

#[test]
fn rebuilding_the_parent_of_a_cascade_inside_a_transaction_is_refused() {
    let findings = with_migration(USERS_REBUILT, USERS_RESTORED, None);
    says(&findings, "the parent of an ON DELETE CASCADE key");
    says(&findings, "tokens");
    let declared = "run_in_transaction = false\nrebuild = true\n";
    assert_eq!(
        with_migration(USERS_REBUILT, USERS_RESTORED, Some(declared)),
        []
    );
    // The runner does the pragmas and the transaction: up.sql must not.
    says(
        &with_migration(
            &format!("PRAGMA foreign_keys = OFF;\nBEGIN;\n{USERS_REBUILT}\nCOMMIT;"),
            USERS_RESTORED,
            Some(declared),
        ),
        "the runner turns foreign keys off",
    );
    // A metadata.toml that forgets run_in_transaction, or keeps it true.
    says(
        &with_migration(USERS_REBUILT, USERS_RESTORED, Some("rebuild = true\n")),
        "leaves out run_in_transaction",
    );
    says(
        &with_migration(
            USERS_REBUILT,
            USERS_RESTORED,
            Some("run_in_transaction = true\nrebuild = true\n"),
        ),
        "rebuild with run_in_transaction = true",
    );
}

#[test]
fn not_null_without_a_default_on_a_table_that_may_hold_rows_is_refused() {
    let up = "ALTER TABLE `tokens` ADD COLUMN `kind` text NOT NULL;";
    let down = "ALTER TABLE `tokens` DROP COLUMN `kind`;";
    says(
        &with_migration(up, down, None),
        "tokens.kind NOT NULL without a default",
    );
    let up = "ALTER TABLE `tokens` ADD COLUMN `kind` text DEFAULT 'api' NOT NULL;";
    assert_eq!(with_migration(up, down, None), []);
    // A table made in the same migration holds no rows yet.
    let up = "CREATE TABLE `tags` (`id` text PRIMARY KEY NOT NULL);\n\
              ALTER TABLE `tags` ADD COLUMN `label` text NOT NULL;";
    let down = "DROP TABLE `tags`;";
    let findings = with_migration(up, down, None);
    assert!(
        !findings.iter().any(|f| f.message.contains("NOT NULL")),
        "{findings:#?}"
    );
}

#[test]
fn a_down_that_is_empty_or_does_not_undo_up_is_refused() {
    let up = "CREATE INDEX `posts_title_idx` ON `posts` (`title`);";
    says(
        &with_migration(up, "-- nothing\n", None),
        "down.sql is empty",
    );
    // Leaves the index behind.
    says(
        &with_migration(up, "SELECT 1;", None),
        "down.sql does not undo up.sql: index posts_title_idx is left over",
    );
    // Drops a different one.
    says(
        &with_migration(
            up,
            "DROP INDEX `posts_title_idx`; DROP INDEX `posts_author_id_idx`;",
            None,
        ),
        "index posts_author_id_idx is missing",
    );
    assert_eq!(
        with_migration(up, "DROP INDEX `posts_title_idx`;", None),
        []
    );
}

/// The external-content full-text index the search work adds is linted like any
/// other: its virtual table, shadow tables and triggers are compared up, down and
/// up, and its creation is not a finding.
#[test]
fn a_full_text_index_with_triggers_passes_and_one_left_behind_does_not() {
    let up = "CREATE VIRTUAL TABLE `posts_fts` USING fts5(title, content, content='posts', content_rowid='id');
CREATE TRIGGER `posts_fts_ai` AFTER INSERT ON `posts` BEGIN
  INSERT INTO posts_fts(rowid, title, content) VALUES (new.id, new.title, new.content);
END;
CREATE TRIGGER `posts_fts_ad` AFTER DELETE ON `posts` BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, title, content) VALUES ('delete', old.id, old.title, old.content);
END;
INSERT INTO posts_fts(posts_fts) VALUES ('rebuild');";
    let down =
        "DROP TRIGGER `posts_fts_ad`;\nDROP TRIGGER `posts_fts_ai`;\nDROP TABLE `posts_fts`;";
    assert_eq!(with_migration(up, down, None), []);
    let findings = with_migration(up, "DROP TABLE `posts_fts`;", None);
    says(&findings, "trigger posts_fts_ad is left over");
}

#[test]
fn any_change_to_the_seeds_columns_is_refused() {
    // A declared rebuild that keeps the five columns as they are passes...
    let declared = "run_in_transaction = false\nrebuild = true\n";
    assert_eq!(
        with_migration(USERS_REBUILT, USERS_RESTORED, Some(declared)),
        []
    );
    // ...one that lets users.name be NULL does not.
    let loosened = USERS_REBUILT.replace("`name` text NOT NULL", "`name` text");
    let restored = USERS_REBUILT.replace(",\n\t`bio` text", "");
    let findings = with_migration(&loosened, &restored, Some(declared));
    says(&findings, "changes the seed's columns of users or posts");
    says(&findings, "users.name");
    // A renamed column is a change too.
    let findings = with_migration(
        "ALTER TABLE `posts` RENAME COLUMN `content` TO `body`;",
        "ALTER TABLE `posts` RENAME COLUMN `body` TO `content`;",
        None,
    );
    says(&findings, "changes the seed's columns of users or posts");
}
