-- Token lifecycle: an optional expiry, when the token was last used (written at
-- most once an hour), and a label for tokens the seed registers from ADMIN_TOKEN.
-- Unix seconds.
ALTER TABLE tokens ADD COLUMN expires_at bigint;
ALTER TABLE tokens ADD COLUMN last_used_at bigint;
ALTER TABLE tokens ADD COLUMN label text;
-- A user's tokens, newest first.
CREATE INDEX tokens_user_id_created_at_idx ON tokens (user_id, created_at, id);
