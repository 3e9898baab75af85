-- chatplane schema, version 8, SQLite dialect: superseded messages.
--
-- A regenerated answer marks the messages after the last user message
-- superseded (docs/runs.md, Regenerate): they stay in the log and the API
-- and are left out of every later model context.

ALTER TABLE chat_messages ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
