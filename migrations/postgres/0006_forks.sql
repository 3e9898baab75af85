-- chatplane schema, version 6, PostgreSQL dialect: forks.
--
-- A session made by POST /api/sessions/{id}/fork names the session and the
-- message it was forked before (docs/api.md, Fork); NULL for the others.

ALTER TABLE chat_sessions ADD COLUMN forked_from_session_id text;
ALTER TABLE chat_sessions ADD COLUMN forked_from_message_id text;
