DROP INDEX IF EXISTS `users_created_at_id_idx`;
DROP INDEX IF EXISTS `posts_published_at_idx`;
DROP INDEX IF EXISTS `posts_author_id_idx`;
