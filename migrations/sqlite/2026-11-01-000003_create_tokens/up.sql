-- API tokens: only the SHA-256 of the secret is stored; the secret is shown once.
CREATE TABLE `tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
CREATE UNIQUE INDEX `tokens_token_hash_unique` ON `tokens` (`token_hash`);
CREATE INDEX `tokens_user_id_idx` ON `tokens` (`user_id`);
