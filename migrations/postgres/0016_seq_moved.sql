-- chatplane schema, version 16, PostgreSQL dialect: chatplane_seq_moved.
--
-- The event log's connection remembers the last_seq it gave each session
-- it appends to, and raises it without reading it first: one round trip
-- fewer for every transaction of the log. Its statement checks that each
-- session's last_seq is still the one remembered, and calls this function
-- for one that is not (another instance appended to the session): the
-- transaction fails as a serialization failure, the connection forgets
-- what it remembered, and the batch is written again, reading last_seq
-- (docs/storage.md, Round trips on PostgreSQL).
--
-- migrations/sqlite/0016_seq_moved.sql has nothing to change (SQLite has
-- one writer per database, which reads last_seq in its transaction) and
-- exists so that a version number names the same schema on both dialects.

CREATE OR REPLACE FUNCTION chatplane_seq_moved(session_id text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    AS $$ BEGIN
        RAISE EXCEPTION 'the events of session % moved on since this connection appended to it',
            session_id USING ERRCODE = 'serialization_failure';
    END $$;
