-- chatplane schema, version 4, PostgreSQL dialect: tool approvals.
--
-- approvals holds one row per tool call the approval policy decided to ask
-- about or a remembered decision answered (docs/storage.md, approvals).
-- chat_budgets.approval is each mode's policy; every existing mode keeps
-- the default, risky. A denied call is a tool execution with status
-- denied, so the status check of tool_executions takes that value too.

ALTER TABLE chat_budgets ADD COLUMN approval text NOT NULL DEFAULT 'risky'
    CHECK (approval IN ('never', 'risky', 'always'));

ALTER TABLE tool_executions DROP CONSTRAINT tool_executions_status_check;
ALTER TABLE tool_executions ADD CONSTRAINT tool_executions_status_check
    CHECK (status IN ('running', 'ok', 'error', 'timeout', 'cancelled', 'denied'));

CREATE TABLE approvals (
    id              text PRIMARY KEY,
    session_id      text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id          text NOT NULL,
    execution_id    text NOT NULL,
    step            integer NOT NULL,
    server          text NOT NULL,
    tool            text NOT NULL,
    arguments       json NOT NULL,
    reason          text NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
    decided_by      text,
    decision_reason text,
    remember        text NOT NULL DEFAULT 'once' CHECK (remember IN ('once', 'run', 'session')),
    requested_at    timestamptz NOT NULL,
    decided_at      timestamptz,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX approvals_session_requested ON approvals (session_id, requested_at);
CREATE INDEX approvals_run_status ON approvals (run_id, status);
