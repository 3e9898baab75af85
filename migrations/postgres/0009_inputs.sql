-- chatplane schema, version 9, PostgreSQL dialect: questions from tool
-- servers.
--
-- inputs holds one row per form a tool server asked a person to fill in
-- while one of a run's tool calls was in flight (docs/storage.md, inputs).
-- schema is the form as the server sent it; content is the answer, kept
-- only for an accepted one; answered_by says who or what ended it.

CREATE TABLE inputs (
    id           text PRIMARY KEY,
    session_id   text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id       text NOT NULL,
    execution_id text NOT NULL,
    server       text NOT NULL,
    message      text NOT NULL,
    schema       json NOT NULL,
    status       text NOT NULL
                 CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'expired')),
    content      json,
    answered_by  text,
    requested_at timestamptz NOT NULL,
    answered_at  timestamptz,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX inputs_session_requested ON inputs (session_id, requested_at);
CREATE INDEX inputs_run_status ON inputs (run_id, status);
