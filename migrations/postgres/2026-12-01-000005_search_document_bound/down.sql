-- The document as the search migration made it (see up.sql).
CREATE OR REPLACE FUNCTION posts_search_document(title text, content text) RETURNS tsvector
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple', posts_search_fold($1)), 'A')
         || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple', posts_search_fold($2)), 'B') $$;
