-- chatplane schema, version 4, SQLite dialect: tool approvals.
--
-- approvals holds one row per tool call the approval policy decided to ask
-- about or a remembered decision answered (docs/storage.md, approvals).
-- chat_budgets.approval is each mode's policy; every existing mode keeps
-- the default, risky. A denied call is a tool execution with status
-- denied; SQLite cannot change a CHECK constraint in place, so
-- tool_executions is copied into a table with the wider check.

ALTER TABLE chat_budgets ADD COLUMN approval TEXT NOT NULL DEFAULT 'risky'
    CHECK (approval IN ('never', 'risky', 'always'));

CREATE TABLE tool_executions_v3 (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id      TEXT NOT NULL,
    step        INTEGER NOT NULL,
    server      TEXT NOT NULL,
    tool        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'ok', 'error', 'timeout', 'cancelled', 'denied')),
    result      TEXT,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    duration_ms INTEGER
);
INSERT INTO tool_executions_v3 SELECT id, session_id, run_id, step, server, tool, arguments,
    status, result, error, started_at, finished_at, duration_ms FROM tool_executions;
DROP TABLE tool_executions;
ALTER TABLE tool_executions_v3 RENAME TO tool_executions;
CREATE INDEX tool_executions_session_started ON tool_executions (session_id, started_at);
CREATE INDEX tool_executions_run ON tool_executions (run_id);

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id          TEXT NOT NULL,
    execution_id    TEXT NOT NULL,
    step            INTEGER NOT NULL,
    server          TEXT NOT NULL,
    tool            TEXT NOT NULL,
    arguments       TEXT NOT NULL,
    reason          TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
    decided_by      TEXT,
    decision_reason TEXT,
    remember        TEXT NOT NULL DEFAULT 'once' CHECK (remember IN ('once', 'run', 'session')),
    requested_at    INTEGER NOT NULL,
    decided_at      INTEGER,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX approvals_session_requested ON approvals (session_id, requested_at);
CREATE INDEX approvals_run_status ON approvals (run_id, status);
