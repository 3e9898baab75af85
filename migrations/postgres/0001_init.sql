-- chatplane schema, version 1, PostgreSQL dialect (docs/storage.md).
--
-- The same tables exist in migrations/sqlite/0001_init.sql with that
-- dialect's types, and the store's SQL (src/store/store.c) is written once
-- for both. What keeps it shared:
--   * Times are timestamptz here and INTEGER Unix milliseconds there. The
--     store writes every time as chatplane_ts(?) and reads it as
--     chatplane_ms(column); the two functions below convert exactly (whole
--     milliseconds, no floating point), and SQLite registers both as the
--     identity.
--   * Booleans are boolean here and INTEGER 0/1 there; the store binds "1"
--     and "0", which both accept, and reads "1" or "t" as true.
--   * JSON columns are json, not jsonb: json keeps the text the store wrote
--     byte for byte, keys in their order, so runs, messages and tool
--     executions read back exactly as on SQLite and the API shows fields in
--     the order of docs/api.md. stream_events.payload must be byte-identical
--     for replay in any case.
--   * Integers are bigint; a NULL limit in chat_budgets means unlimited.
-- Children of a session refer to it with ON DELETE CASCADE, so deleting a
-- session deletes everything that belongs to it. The three built-in modes
-- are seeded into chat_budgets by the store right after this migration,
-- from the same presets the core uses (mode_presets), in its transaction.

CREATE FUNCTION chatplane_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT timestamptz 'epoch' + ms * interval '1 millisecond' $$;

CREATE FUNCTION chatplane_ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM t) * 1000)::bigint $$;

CREATE TABLE chat_sessions (
    id            text PRIMARY KEY,
    owner         text,
    title         text NOT NULL,
    mode          text NOT NULL,
    status        text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'running')),
    active_run_id text,
    last_seq      bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX chat_sessions_owner_created ON chat_sessions (owner, created_at, id);
CREATE INDEX chat_sessions_created ON chat_sessions (created_at, id);

CREATE TABLE runs (
    id                  text PRIMARY KEY,
    session_id          text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    mode                text NOT NULL,
    status              text NOT NULL CHECK (status IN ('running', 'stopped')),
    stop_reason         text,
    stop_detail         text,
    recovery_suggestion text,
    actions             json NOT NULL DEFAULT '[]',
    wrapped_up          boolean NOT NULL DEFAULT false,
    limits              json,
    usage               json,
    owner_instance      text,
    heartbeat_at        timestamptz,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    continues           text
);
CREATE INDEX runs_session_started ON runs (session_id, started_at);
CREATE INDEX runs_status ON runs (status, started_at);

-- position keeps the order in which messages were stored when several share
-- a millisecond (an assistant turn and its tool results often do).
CREATE TABLE chat_messages (
    id           text PRIMARY KEY,
    session_id   text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id       text,
    role         text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content      text NOT NULL,
    tool_calls   json,
    tool_call_id text,
    partial      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    position     bigint NOT NULL
);
CREATE INDEX chat_messages_session_created ON chat_messages (session_id, created_at);

CREATE TABLE tool_executions (
    id          text PRIMARY KEY,
    session_id  text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id      text NOT NULL,
    step        integer NOT NULL,
    server      text NOT NULL,
    tool        text NOT NULL,
    arguments   json NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('running', 'ok', 'error', 'timeout', 'cancelled')),
    result      text,
    error       text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    duration_ms bigint
);
CREATE INDEX tool_executions_session_started ON tool_executions (session_id, started_at);
CREATE INDEX tool_executions_run ON tool_executions (run_id);

CREATE TABLE chat_budgets (
    mode        text PRIMARY KEY,
    description text NOT NULL,
    steps       bigint,
    seconds     bigint,
    tokens      bigint,
    tool_calls  bigint,
    retries     bigint,
    cost_usd    double precision,
    loop_warn   integer NOT NULL,
    loop_stop   integer NOT NULL,
    fail_warn   integer NOT NULL,
    fail_stop   integer NOT NULL,
    stale_steps integer NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- The primary key is the replay index: a session's events by seq.
CREATE TABLE stream_events (
    session_id text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    run_id     text,
    type       text NOT NULL,
    payload    json NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE api_tokens (
    name         text PRIMARY KEY,
    token_sha256 text NOT NULL UNIQUE,
    admin        boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
