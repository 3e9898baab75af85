-- chatplane schema, version 1, SQLite dialect (docs/storage.md).
--
-- The same tables exist in migrations/postgres/0001_init.sql with that
-- dialect's types, and the store's SQL (src/store/store.c) is written once
-- for both. What keeps it shared:
--   * Times are INTEGER Unix milliseconds here and timestamptz there. The
--     store writes every time as chatplane_ts(?) and reads it as
--     chatplane_ms(column); the SQLite driver registers both as the
--     identity, PostgreSQL defines them in its migration.
--   * Booleans are INTEGER 0/1 here and boolean there; the store binds "1"
--     and "0", which both accept, and reads "1" or "t" as true.
--   * JSON columns are TEXT here and json (not jsonb) there, so the text
--     the store wrote comes back byte for byte, keys in their order.
--   * Integers are INTEGER here and bigint there; a NULL limit in
--     chat_budgets means unlimited.
-- Children of a session refer to it with ON DELETE CASCADE, so deleting a
-- session deletes everything that belongs to it. The three built-in modes
-- are seeded into chat_budgets by the store right after this migration,
-- from the same presets the core uses (mode_presets), in its transaction.

CREATE TABLE chat_sessions (
    id            TEXT PRIMARY KEY,
    owner         TEXT,
    title         TEXT NOT NULL,
    mode          TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'running')),
    active_run_id TEXT,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX chat_sessions_owner_created ON chat_sessions (owner, created_at, id);
CREATE INDEX chat_sessions_created ON chat_sessions (created_at, id);

CREATE TABLE runs (
    id                  TEXT PRIMARY KEY,
    session_id          TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    mode                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('running', 'stopped')),
    stop_reason         TEXT,
    stop_detail         TEXT,
    recovery_suggestion TEXT,
    actions             TEXT NOT NULL DEFAULT '[]',
    wrapped_up          INTEGER NOT NULL DEFAULT 0,
    limits              TEXT,
    usage               TEXT,
    owner_instance      TEXT,
    heartbeat_at        INTEGER,
    started_at          INTEGER NOT NULL,
    ended_at            INTEGER,
    continues           TEXT
);
CREATE INDEX runs_session_started ON runs (session_id, started_at);
CREATE INDEX runs_status ON runs (status, started_at);

-- position keeps the order in which messages were stored when several share
-- a millisecond (an assistant turn and its tool results often do).
CREATE TABLE chat_messages (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id       TEXT,
    role         TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content      TEXT NOT NULL,
    tool_calls   TEXT,
    tool_call_id TEXT,
    partial      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    position     INTEGER NOT NULL
);
CREATE INDEX chat_messages_session_created ON chat_messages (session_id, created_at);

CREATE TABLE tool_executions (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id      TEXT NOT NULL,
    step        INTEGER NOT NULL,
    server      TEXT NOT NULL,
    tool        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'ok', 'error', 'timeout', 'cancelled')),
    result      TEXT,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    duration_ms INTEGER
);
CREATE INDEX tool_executions_session_started ON tool_executions (session_id, started_at);
CREATE INDEX tool_executions_run ON tool_executions (run_id);

CREATE TABLE chat_budgets (
    mode        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    steps       INTEGER,
    seconds     INTEGER,
    tokens      INTEGER,
    tool_calls  INTEGER,
    retries     INTEGER,
    cost_usd    REAL,
    loop_warn   INTEGER NOT NULL,
    loop_stop   INTEGER NOT NULL,
    fail_warn   INTEGER NOT NULL,
    fail_stop   INTEGER NOT NULL,
    stale_steps INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The primary key is the replay index: a session's events by seq.
CREATE TABLE stream_events (
    session_id TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    run_id     TEXT,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE api_tokens (
    name         TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    admin        INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
