-- chatplane schema, version 17, PostgreSQL dialect: chatplane_run_unchanged.
--
-- The event log's connection writes a run's end without reading whether
-- the run's row changed: its UPDATE goes ahead with the other statements
-- of the transaction and one round trip answers them all. When the row
-- did not change, the statement calls this function, which fails the
-- transaction with an error the driver tells apart: CP404 when the run
-- does not exist, CP409 when it has stopped already (on a shared
-- database, another instance interrupted it) (docs/storage.md, Round
-- trips on PostgreSQL).
--
-- migrations/sqlite/0017_run_unchanged.sql has nothing to change (SQLite
-- has no round trips to save) and exists so that a version number names
-- the same schema on both dialects.

CREATE OR REPLACE FUNCTION chatplane_run_unchanged(run_id text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    AS $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM runs WHERE id = run_id) THEN
            RAISE EXCEPTION 'run % not found', run_id USING ERRCODE = 'CP404';
        END IF;
        RAISE EXCEPTION 'run % has already stopped', run_id USING ERRCODE = 'CP409';
    END $$;
