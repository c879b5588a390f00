DROP TRIGGER IF EXISTS `posts_fts_after_update`;
DROP TRIGGER IF EXISTS `posts_fts_after_delete`;
DROP TRIGGER IF EXISTS `posts_fts_after_insert`;
DROP TABLE IF EXISTS `posts_fts`;
