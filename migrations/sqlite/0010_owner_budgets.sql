-- chatplane schema, version 10, SQLite dialect: budgets per owner and period.
--
-- owner_budgets holds the budgets a token's owner carries (docs/owner-budgets.md):
-- at most one per dimension and period. limit_amount is in tokens, or in
-- micro-dollars for cost_usd, so sums never round.
-- owner_usage holds one row per owner, dimension, period and period start:
-- a new period is a new row, so nothing has to reset usage at midnight.
-- reserved is what model calls in flight may still use; it is settled
-- into used when each call ends. owner_holds names each call's part of
-- reserved with its run, so that the holds of a run that is no longer
-- running (its process died during a call) can be given back.

CREATE TABLE owner_budgets (
    owner        TEXT NOT NULL,
    dimension    TEXT NOT NULL CHECK (dimension IN ('tokens', 'cost_usd')),
    period       TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    limit_amount INTEGER NOT NULL CHECK (limit_amount > 0),
    PRIMARY KEY (owner, dimension, period)
);

CREATE TABLE owner_usage (
    owner        TEXT NOT NULL,
    dimension    TEXT NOT NULL CHECK (dimension IN ('tokens', 'cost_usd')),
    period       TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved     INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (owner, dimension, period, period_start)
);

CREATE TABLE owner_holds (
    id           TEXT NOT NULL,
    dimension    TEXT NOT NULL,
    period       TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (id, dimension, period)
);
CREATE INDEX owner_holds_run ON owner_holds (run_id);
