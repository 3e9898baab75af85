-- chatplane schema, version 13, SQLite dialect: titles go into the search
-- index a moment after they are written, as messages do (docs/storage.md,
-- Search).
--
-- Until version 12 a title was indexed by the trigger of the write that set
-- it. A session's first run sets its title, so every first run's start
-- transaction also wrote the title's trigrams, a segment of the full-text
-- index of its own: the largest part of the start after the run and its
-- message, which the answer's first token waits for (docs/benchmarks.md,
-- fix 52). A title now gets its chat_search_docs row with indexed = 0,
-- like a message, and the server's indexing copies it with the messages
-- (store_session_index_pending); search reads the titles not indexed yet
-- directly. A title that changes is taken out of the index if it was in
-- it (the contentless table forgets a row only when given the text it
-- indexed), and its new text gets a row of its own that waits. An empty
-- title, which nothing can match, gets no row: a session made without one
-- is indexed once, when its first run names it. Writes that leave the
-- title as it was (a change of mode) no longer touch the index.

DROP TRIGGER chat_search_session_insert;
DROP TRIGGER chat_search_session_title;
DROP TRIGGER chat_search_session_delete;

CREATE TRIGGER chat_search_session_insert AFTER INSERT ON chat_sessions BEGIN
    INSERT INTO chat_search_docs (session_id, message_id, indexed)
        SELECT new.id, NULL, 0 WHERE new.title <> '';
END;

CREATE TRIGGER chat_search_session_title AFTER UPDATE OF title ON chat_sessions
WHEN old.title IS NOT new.title BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, lower(old.title) FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL AND indexed = 1;
    DELETE FROM chat_search_docs WHERE session_id = old.id AND message_id IS NULL;
    INSERT INTO chat_search_docs (session_id, message_id, indexed)
        SELECT old.id, NULL, 0 WHERE new.title <> '';
END;

CREATE TRIGGER chat_search_session_delete AFTER DELETE ON chat_sessions BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, lower(old.title) FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL AND indexed = 1;
    DELETE FROM chat_search_docs WHERE session_id = old.id AND message_id IS NULL;
END;
