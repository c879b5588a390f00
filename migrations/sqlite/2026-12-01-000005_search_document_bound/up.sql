-- PostgreSQL only (see migrations/postgres): SQLite's search index calls no
-- function of the schema. The versions of both sets stay the same.
SELECT 1;
