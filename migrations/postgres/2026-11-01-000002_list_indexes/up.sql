-- The list indexes of migrations/sqlite. posts.id needs none: the primary key
-- serves the newest-first walk.
CREATE INDEX posts_author_id_idx ON posts (author_id);
CREATE INDEX posts_published_at_idx ON posts (published_at);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
