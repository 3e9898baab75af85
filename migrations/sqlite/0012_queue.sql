-- chatplane schema, version 12, SQLite dialect: a queued run per session.
--
-- A run sent while another one works with "if_active": "enqueue" or
-- "interrupt" waits here, on its session's row, until the active run stops
-- (docs/runs.md, Queue and interrupt). It has no runs row and no message
-- row yet: both are written when it starts, so the model never sees its
-- message before then. queued_mode is NULL when it keeps the session's
-- mode. Being columns of the session, there is at most one per session.

ALTER TABLE chat_sessions ADD COLUMN queued_run_id TEXT;
ALTER TABLE chat_sessions ADD COLUMN queued_message TEXT;
ALTER TABLE chat_sessions ADD COLUMN queued_mode TEXT;
ALTER TABLE chat_sessions ADD COLUMN queued_at INTEGER;
-- GET /api/runs/{id} finds a queued run by its id.
CREATE INDEX chat_sessions_queued ON chat_sessions (queued_run_id) WHERE queued_run_id IS NOT NULL;
