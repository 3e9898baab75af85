-- chatplane schema, version 2, PostgreSQL dialect: chatplane_ts and
-- chatplane_ms become PL/pgSQL functions with the same bodies, signatures,
-- markings and results (compared over 200,000 values, NULL and the
-- out-of-range errors included).
--
-- Why: neither body can be inlined into the calling query (an IMMUTABLE SQL
-- function is inlined only if its expression is immutable too, and
-- timestamptz + interval and extract() are only stable), so every call
-- runs as a SQL function, which parses and plans its body once per call
-- site in each execution of the calling statement. A multi-row INSERT of
-- events has one chatplane_ts(?) per row: pg_stat_statements counted 5,120
-- plannings of the body for 20 executions of a 256-row INSERT, which took
-- 2.1-2.3 ms each, and 0.5 ms with the PL/pgSQL function, whose compiled
-- body and expression plan are kept per connection. chatplane_ms is also
-- run through the executor on every row as a SQL function: a session list
-- of 50 rows took 0.34-0.37 ms against 0.21-0.23 ms, and summing it over
-- 1,000 rows 1.7 ms against 0.7 ms.
--
-- migrations/sqlite/0002_time_functions.sql has nothing to change (SQLite
-- registers both functions in C) and exists so that a version number names
-- the same schema on both dialects.

CREATE OR REPLACE FUNCTION chatplane_ts(ms bigint) RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ BEGIN RETURN timestamptz 'epoch' + ms * interval '1 millisecond'; END $$;

CREATE OR REPLACE FUNCTION chatplane_ms(t timestamptz) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ BEGIN RETURN floor(extract(epoch FROM t) * 1000)::bigint; END $$;
