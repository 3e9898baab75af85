-- chatplane schema, version 14, PostgreSQL dialect: no change.
--
-- Version 14 takes SQLite's renamed titles out of its full-text index a
-- moment after the rename instead of in the write itself
-- (migrations/sqlite/0014_search_forget_later.sql). PostgreSQL's trigram
-- indexes follow the rows as they change, so there is nothing to do here;
-- the file exists because a version number names the same schema on both
-- dialects.
SELECT 1;
