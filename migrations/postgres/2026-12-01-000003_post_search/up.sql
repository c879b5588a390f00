-- Full-text search over posts (GET /posts?q=), as migrations/sqlite does it with
-- FTS5: the same words match on both. Accents are folded by a fixed table (the
-- Latin letters with a canonical decomposition, as SQLite's unicode61 folds them),
-- so no extension is needed; the 'simple' configuration lower-cases and does not
-- stem, as unicode61 does not. Title weighs A, content B (ts_rank: 1.0 and 0.4).
CREATE FUNCTION posts_search_fold(text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT pg_catalog.translate($1,
    'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž',
    'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZz') $$;
CREATE FUNCTION posts_search_document(title text, content text) RETURNS tsvector
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple', posts_search_fold($1)), 'A')
         || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple', posts_search_fold($2)), 'B') $$;
CREATE INDEX posts_search_idx ON posts USING gin (posts_search_document(title, content));
