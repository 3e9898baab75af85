-- chatplane schema, version 3: indexes for reading the newest rows of a
-- long session without reading the rest.
--
-- A run's start reads the newest messages back to what the model context
-- needs, page by page in (created_at, position) order, and the session's
-- newest run (ORDER BY started_at DESC, id DESC LIMIT 1). With the indexes
-- of version 1, (session_id, created_at) and (session_id, started_at), both
-- had to finish their order on the table's rows; and a message insert takes
-- MAX(position) of its session, which read every message of the session.
-- Each index now holds the whole order, and (session_id, position) answers
-- MAX(position) from one index entry.

DROP INDEX runs_session_started;
CREATE INDEX runs_session_started ON runs (session_id, started_at, id);
DROP INDEX chat_messages_session_created;
CREATE INDEX chat_messages_session_created ON chat_messages (session_id, created_at, position);
CREATE INDEX chat_messages_session_position ON chat_messages (session_id, position);
