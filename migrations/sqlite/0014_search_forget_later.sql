-- chatplane schema, version 14, SQLite dialect: a title that changes is
-- taken out of the search index a moment later, as titles and messages are
-- put in (docs/storage.md, Search).
--
-- Until version 13 the trigger of the write that changed a title took the
-- old text out of the full-text index at once. A session made without a
-- title is called "New chat", indexed a moment later, and its first run
-- renames it, so every first run's start transaction did that work: an
-- INSERT ... SELECT into the full-text table (which SQLite runs through a
-- temporary table) and a segment of delete markers written at its commit,
-- about 60 microseconds of the start that the answer's first token waits
-- for (docs/benchmarks.md, fix 60). The title's row now stays, with
-- indexed = 2 and, in forget, the lowered text the index holds for it;
-- the server's indexing takes such rows out with the waiting ones
-- (store_session_index_pending), and search ignores them meanwhile. The
-- contentless table forgets a row only when given the text it indexed,
-- which is why that text is kept.

ALTER TABLE chat_search_docs ADD COLUMN forget TEXT;
CREATE INDEX chat_search_docs_forget ON chat_search_docs (session_id) WHERE indexed = 2;

DROP TRIGGER chat_search_session_title;
DROP TRIGGER chat_search_session_delete;

CREATE TRIGGER chat_search_session_title AFTER UPDATE OF title ON chat_sessions
WHEN old.title IS NOT new.title BEGIN
    UPDATE chat_search_docs SET indexed = 2, forget = lower(old.title)
        WHERE session_id = old.id AND message_id IS NULL AND indexed = 1;
    DELETE FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL AND indexed = 0;
    INSERT INTO chat_search_docs (session_id, message_id, indexed)
        SELECT old.id, NULL, 0 WHERE new.title <> '';
END;

CREATE TRIGGER chat_search_session_delete AFTER DELETE ON chat_sessions BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, CASE indexed WHEN 2 THEN forget ELSE lower(old.title) END
        FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL AND indexed IN (1, 2);
    DELETE FROM chat_search_docs WHERE session_id = old.id AND message_id IS NULL;
END;
