DROP INDEX IF EXISTS posts_search_idx;
DROP FUNCTION IF EXISTS posts_search_document(text, text);
DROP FUNCTION IF EXISTS posts_search_fold(text);
