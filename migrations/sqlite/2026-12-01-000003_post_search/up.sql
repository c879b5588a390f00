-- Full-text search over posts (GET /posts?q=): an external-content FTS5 table, so
-- the text lives once, in posts. Triggers keep it in step with every writer of
-- the file (this service, the Drizzle app, a sqlite3 shell). unicode61 with
-- remove_diacritics 2 folds case and accents: `cafe` finds `Café`.
CREATE VIRTUAL TABLE `posts_fts` USING fts5(
  `title`, `content`,
  content = 'posts', content_rowid = 'id',
  tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER `posts_fts_after_insert` AFTER INSERT ON `posts` BEGIN
  INSERT INTO `posts_fts` (rowid, `title`, `content`) VALUES (new.`id`, new.`title`, new.`content`);
END;
CREATE TRIGGER `posts_fts_after_delete` AFTER DELETE ON `posts` BEGIN
  INSERT INTO `posts_fts` (`posts_fts`, rowid, `title`, `content`)
    VALUES ('delete', old.`id`, old.`title`, old.`content`);
END;
-- Only a change of the indexed text (or of the id) touches the index: publishing
-- a post does not.
CREATE TRIGGER `posts_fts_after_update` AFTER UPDATE OF `id`, `title`, `content` ON `posts` BEGIN
  INSERT INTO `posts_fts` (`posts_fts`, rowid, `title`, `content`)
    VALUES ('delete', old.`id`, old.`title`, old.`content`);
  INSERT INTO `posts_fts` (rowid, `title`, `content`) VALUES (new.`id`, new.`title`, new.`content`);
END;
-- Rows written before this migration (a drizzle-kit file adopted here) are indexed now.
INSERT INTO `posts_fts` (`posts_fts`) VALUES ('rebuild');
