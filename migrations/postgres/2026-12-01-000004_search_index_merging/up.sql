-- SQLite's search index merges its segments less eagerly from here on. A GIN index
-- has no such setting to change: nothing to do on PostgreSQL, and the version
-- exists so that both sets keep the same names.
SELECT 1;
