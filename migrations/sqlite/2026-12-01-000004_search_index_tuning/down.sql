-- FTS5's default.
INSERT INTO `posts_fts` (`posts_fts`, `rank`) VALUES ('automerge', 4);
