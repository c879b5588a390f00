-- posts_search_document named posts_search_fold without its schema, in a body
-- PostgreSQL reads again at each call, under the caller's search_path. pg_dump sets
-- an empty one, so `pg_restore` of a dump failed to build posts_search_idx (the
-- restored database had no search index), and autovacuum, which runs with an empty
-- one too, could never ANALYZE posts. A SQL-standard body is resolved once, here,
-- and kept as references to the functions themselves: the same function and
-- index, whatever the search_path of whoever evaluates it.
CREATE OR REPLACE FUNCTION posts_search_document(title text, content text) RETURNS tsvector
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple', posts_search_fold(title)), 'A')
      || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple', posts_search_fold(content)), 'B');
