DROP TABLE IF EXISTS `posts`;
DROP INDEX IF EXISTS `users_email_unique`;
DROP TABLE IF EXISTS `users`;
