-- Keyset listing: posts walk by id (the rowid) newest first, optionally for one
-- author; the author index also serves the foreign-key check when a user is deleted.
CREATE INDEX IF NOT EXISTS `posts_author_id_idx` ON `posts` (`author_id`);
-- Drafts and scheduled posts (published=false) are found by published_at.
CREATE INDEX IF NOT EXISTS `posts_published_at_idx` ON `posts` (`published_at`);
-- Users list newest first: (created_at, id) is the keyset.
CREATE INDEX IF NOT EXISTS `users_created_at_id_idx` ON `users` (`created_at`, `id`);
