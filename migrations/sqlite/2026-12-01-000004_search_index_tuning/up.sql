-- Each write adds a small segment to the search index, and FTS5 merges segments
-- inside the writing transaction. With its default (`automerge` 4) on an index
-- built row by row, writes kept paying for large merges: p99 of POST /posts went
-- from 9 ms without the index to 77 ms with it. Merging once a level holds 8
-- segments, from an index merged into one segment, keeps the p99 near 14 ms.
-- `automerge` is stored in the index's config table, so it holds for every
-- program that writes this file.
INSERT INTO `posts_fts` (`posts_fts`, `rank`) VALUES ('automerge', 8);
INSERT INTO `posts_fts` (`posts_fts`) VALUES ('optimize');
