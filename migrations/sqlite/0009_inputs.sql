-- chatplane schema, version 9, SQLite dialect: questions from tool servers.
--
-- inputs holds one row per form a tool server asked a person to fill in
-- while one of a run's tool calls was in flight (docs/storage.md, inputs).
-- schema is the form as the server sent it; content is the answer, kept
-- only for an accepted one; answered_by says who or what ended it.

CREATE TABLE inputs (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id       TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    server       TEXT NOT NULL,
    message      TEXT NOT NULL,
    schema       TEXT NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'expired')),
    content      TEXT,
    answered_by  TEXT,
    requested_at INTEGER NOT NULL,
    answered_at  INTEGER,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX inputs_session_requested ON inputs (session_id, requested_at);
CREATE INDEX inputs_run_status ON inputs (run_id, status);
