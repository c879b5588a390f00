DROP INDEX IF EXISTS `tokens_user_id_created_at_idx`;
ALTER TABLE `tokens` DROP COLUMN `label`;
ALTER TABLE `tokens` DROP COLUMN `last_used_at`;
ALTER TABLE `tokens` DROP COLUMN `expires_at`;
