-- chatplane schema, version 13, PostgreSQL dialect: no change.
--
-- Version 13 indexes SQLite's titles for search a moment after they are
-- written instead of in the write itself
-- (migrations/sqlite/0013_search_titles_later.sql). PostgreSQL's trigram
-- index on titles is kept up to date by the database as rows change, so
-- there is nothing to do here; the file exists because a version number
-- names the same schema on both dialects.
SELECT 1;
