-- chatplane schema, version 15, SQLite dialect: what waits for the search
-- index is no longer written beside each message (docs/storage.md, Search).
--
-- Until version 14 every new message, and every title a run's start set,
-- got its row in chat_search_docs at once, with indexed = 0: a row of a
-- table with three indexes, so four pages of the database written in the
-- transaction that stored the message, in both of a run's transactions
-- (its question and its answer), about a quarter of the pages a run wrote
-- (docs/benchmarks.md, fix 67). Now:
--
-- * the messages that wait are those after chat_search_mark.messages_upto
--   in chat_messages' rowid order: a new message's rowid is one more than
--   the largest, and the mark never passes the largest (a delete of the
--   newest brings it back), so storing a message writes nothing for the
--   index;
-- * a title that waits has a row in chat_search_pending, a table without
--   an index, written when a session is made with a title or renamed;
-- * the server's indexing makes a title's or message's chat_search_docs
--   row when it copies the text into the full-text index, so that table
--   holds only what the index holds (indexed = 1) or still holds under an
--   old title (indexed = 2).

CREATE TABLE chat_search_pending (
    rowid      INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL
);
CREATE TABLE chat_search_mark (
    messages_upto INTEGER NOT NULL
);

-- The mark stops before the first message that waits; messages after it
-- that are indexed already are known by their chat_search_docs row.
INSERT INTO chat_search_mark (messages_upto)
    SELECT COALESCE((SELECT MIN(m.rowid) - 1 FROM chat_search_docs d
                     JOIN chat_messages m ON m.id = d.message_id WHERE d.indexed = 0),
                    (SELECT MAX(rowid) FROM chat_messages), 0);
INSERT INTO chat_search_pending (session_id)
    SELECT session_id FROM chat_search_docs
    WHERE indexed = 0 AND message_id IS NULL ORDER BY rowid;
DELETE FROM chat_search_docs WHERE indexed = 0;
DROP INDEX chat_search_docs_pending;

DROP TRIGGER chat_search_session_insert;
DROP TRIGGER chat_search_session_title;
DROP TRIGGER chat_search_message_insert;

CREATE TRIGGER chat_search_session_insert AFTER INSERT ON chat_sessions BEGIN
    INSERT INTO chat_search_pending (session_id) SELECT new.id WHERE new.title <> '';
END;

CREATE TRIGGER chat_search_session_title AFTER UPDATE OF title ON chat_sessions
WHEN old.title IS NOT new.title BEGIN
    UPDATE chat_search_docs SET indexed = 2, forget = lower(old.title)
        WHERE session_id = old.id AND message_id IS NULL AND indexed = 1;
    INSERT INTO chat_search_pending (session_id) SELECT old.id WHERE new.title <> '';
END;

-- A delete of the newest message brings the mark back, beside the
-- trigger of migration 11 that takes a deleted message out of the index.
CREATE TRIGGER chat_search_mark_delete AFTER DELETE ON chat_messages BEGIN
    UPDATE chat_search_mark SET messages_upto = (SELECT COALESCE(MAX(rowid), 0) FROM chat_messages)
        WHERE messages_upto > (SELECT COALESCE(MAX(rowid), 0) FROM chat_messages);
END;
