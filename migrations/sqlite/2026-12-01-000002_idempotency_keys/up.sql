-- Idempotency-Key: the answer to a create request, kept for a day per caller and
-- key so that a retry is answered again instead of creating a second row. The
-- fingerprint (SHA-256 of method, path and body) tells a retry from another
-- request under the same key. Only the answer a retry may see is stored: for a
-- token, never its secret. Unix seconds.
CREATE TABLE `idempotency_keys` (
	`caller_id` text NOT NULL,
	`key` text NOT NULL,
	`fingerprint` text NOT NULL,
	`status` integer NOT NULL,
	`response` text NOT NULL,
	`created_at` bigint NOT NULL,
	PRIMARY KEY (`caller_id`, `key`),
	FOREIGN KEY (`caller_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
-- Expired keys, oldest first, for pruning.
CREATE INDEX `idempotency_keys_created_at_idx` ON `idempotency_keys` (`created_at`);
