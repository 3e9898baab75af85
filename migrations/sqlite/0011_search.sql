-- chatplane schema, version 11, SQLite dialect: an index for finding
-- sessions by the text of their title or messages (docs/storage.md, Search).
--
-- chat_search is a full-text table with the trigram tokenizer: it answers
-- "which documents contain this substring" for substrings of three
-- characters or more. It holds each text as lower() gives it (A-Z
-- lowered, nothing else, as SQLite is built without ICU) and compares
-- case-sensitively, so a phrase of the searched text, lowered alike,
-- matches exactly the documents whose lowered text contains it: the index
-- folds case as the search does and needs no second check. It is
-- contentless (the text stays only in chat_sessions and chat_messages).
-- chat_search_docs says what each of its rows is: a session's title
-- (message_id NULL) or a message. Its rowid is the full-text row's, an
-- integer key of its own, so nothing depends on the rowids of
-- chat_messages, which VACUUM may renumber.
--
-- Titles are indexed as they are written. A message is indexed a moment
-- later, off the event log: it gets its chat_search_docs row at once,
-- with indexed = 0, and the server copies such messages into chat_search
-- from a connection of its own, one short transaction each
-- (store_session_index_pending). One answer of a few hundred words is
-- about a thousand trigrams, and indexing it in the event log's
-- transaction that stores it made every stream wait for the index
-- (docs/benchmarks.md). For the same reason the index's segments are not
-- merged inside those writes (automerge 0) but in small steps after them.
-- Search reads the messages not indexed yet directly, so nothing is
-- missed in between.
--
-- Triggers keep both in step with every write; a cascaded delete of a
-- session's messages fires the message trigger as well. A contentless
-- table forgets a row only when given the text it indexed, which the
-- triggers pass as lower(old.title) and lower(old.content), and only for
-- rows it holds (indexed = 1).

CREATE VIRTUAL TABLE chat_search USING fts5(body, tokenize = 'trigram case_sensitive 1', content = '');
INSERT INTO chat_search (chat_search, rank) VALUES ('automerge', 0);

CREATE TABLE chat_search_docs (
    rowid      INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    message_id TEXT,
    indexed    INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX chat_search_docs_session ON chat_search_docs (session_id, message_id);
CREATE UNIQUE INDEX chat_search_docs_message ON chat_search_docs (message_id);
CREATE INDEX chat_search_docs_pending ON chat_search_docs (session_id) WHERE indexed = 0;

CREATE TRIGGER chat_search_session_insert AFTER INSERT ON chat_sessions BEGIN
    INSERT INTO chat_search_docs (session_id, message_id) VALUES (new.id, NULL);
    INSERT INTO chat_search (rowid, body) VALUES (last_insert_rowid(), lower(new.title));
END;

CREATE TRIGGER chat_search_session_title AFTER UPDATE OF title ON chat_sessions BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, lower(old.title) FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL;
    INSERT INTO chat_search (rowid, body)
        SELECT rowid, lower(new.title) FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL;
END;

CREATE TRIGGER chat_search_session_delete AFTER DELETE ON chat_sessions BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, lower(old.title) FROM chat_search_docs
        WHERE session_id = old.id AND message_id IS NULL;
    DELETE FROM chat_search_docs WHERE session_id = old.id AND message_id IS NULL;
END;

CREATE TRIGGER chat_search_message_insert AFTER INSERT ON chat_messages BEGIN
    INSERT INTO chat_search_docs (session_id, message_id, indexed) VALUES (new.session_id, new.id, 0);
END;

CREATE TRIGGER chat_search_message_content AFTER UPDATE OF content ON chat_messages BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, lower(old.content) FROM chat_search_docs
        WHERE message_id = old.id AND indexed = 1;
    INSERT INTO chat_search (rowid, body)
        SELECT rowid, lower(new.content) FROM chat_search_docs
        WHERE message_id = old.id AND indexed = 1;
END;

CREATE TRIGGER chat_search_message_delete AFTER DELETE ON chat_messages BEGIN
    INSERT INTO chat_search (chat_search, rowid, body)
        SELECT 'delete', rowid, lower(old.content) FROM chat_search_docs
        WHERE message_id = old.id AND indexed = 1;
    DELETE FROM chat_search_docs WHERE message_id = old.id;
END;

-- The rows stored before this version: every title, then every message.
INSERT INTO chat_search_docs (session_id, message_id) SELECT id, NULL FROM chat_sessions;
INSERT INTO chat_search_docs (session_id, message_id) SELECT session_id, id FROM chat_messages;
INSERT INTO chat_search (rowid, body)
    SELECT d.rowid, lower(s.title) FROM chat_search_docs d JOIN chat_sessions s ON s.id = d.session_id
    WHERE d.message_id IS NULL;
INSERT INTO chat_search (rowid, body)
    SELECT d.rowid, lower(m.content) FROM chat_search_docs d JOIN chat_messages m ON m.id = d.message_id;
