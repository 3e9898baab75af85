-- chatplane schema, version 11, PostgreSQL dialect: indexes for finding
-- sessions by the text of their title or messages (docs/storage.md, Search).
--
-- chatplane_fold lowers the ASCII letters A-Z and nothing else, the way
-- SQLite's lower() does, so that both backends fold case alike whatever
-- the database's locale: lower() under the "C" collation touches A-Z only
-- (under the database's own collation it may fold É to é, and so would
-- ILIKE), and it is fast where translate() is not. The store
-- searches chatplane_fold(column) LIKE '%<folded, escaped text>%', which
-- a pg_trgm GIN index over the same expression answers. A new index is
-- built from the rows already stored, so nothing needs a backfill.
--
-- pg_trgm is a contrib extension (in Debian's postgresql package; a
-- trusted extension, so a role that may create objects in the database
-- may install it). Where it is missing or may not be installed, the
-- migration still succeeds without the two indexes: search answers the
-- same, by reading every title and message. docs/storage.md says how to
-- add them later.

CREATE FUNCTION chatplane_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(t COLLATE "C") $$;

DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'chatplane: pg_trgm is not available (%); search works without its index',
            SQLERRM;
        RETURN;
    END;
    CREATE INDEX chat_sessions_title_search ON chat_sessions
        USING gin (chatplane_fold(title) gin_trgm_ops);
    CREATE INDEX chat_messages_content_search ON chat_messages
        USING gin (chatplane_fold(content) gin_trgm_ops);
END
$$;
