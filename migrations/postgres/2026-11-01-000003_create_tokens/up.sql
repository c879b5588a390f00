-- API tokens: only the SHA-256 of the secret is stored; the secret is shown once.
CREATE TABLE tokens (
	id text COLLATE "C" PRIMARY KEY NOT NULL,
	user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash text NOT NULL,
	created_at bigint NOT NULL
);
CREATE UNIQUE INDEX tokens_token_hash_unique ON tokens (token_hash);
CREATE INDEX tokens_user_id_idx ON tokens (user_id);
