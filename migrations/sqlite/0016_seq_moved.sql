-- chatplane schema, version 16, SQLite dialect: no change.
--
-- Version 16 adds chatplane_seq_moved on PostgreSQL
-- (migrations/postgres/0016_seq_moved.sql), which fails a transaction of
-- the event log whose remembered last_seq of a session is out of date.
-- SQLite has one writer per database, which reads last_seq inside its
-- transaction, so there is nothing to do here; the file exists because a
-- version number names the same schema on both dialects.
SELECT 1;
