-- chatplane schema, version 15, PostgreSQL dialect: no change.
--
-- Version 15 keeps the titles and messages that wait for SQLite's
-- full-text index in a list of their own
-- (migrations/sqlite/0015_search_pending.sql). PostgreSQL's trigram
-- indexes follow the rows as they change, so there is nothing to do here;
-- the file exists because a version number names the same schema on both
-- dialects.
SELECT 1;
