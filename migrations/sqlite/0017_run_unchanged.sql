-- chatplane schema, version 17, SQLite dialect: no change.
--
-- Version 17 adds chatplane_run_unchanged on PostgreSQL
-- (migrations/postgres/0017_run_unchanged.sql), which fails a transaction
-- whose run's end found the run's row missing or stopped already, so that
-- the end is written without reading its answer first. SQLite has no
-- round trips to save, so there is nothing to do here; the file exists
-- because a version number names the same schema on both dialects.
SELECT 1;
