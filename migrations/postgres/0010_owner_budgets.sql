-- chatplane schema, version 10, PostgreSQL dialect: budgets per owner and period.
--
-- owner_budgets holds the budgets a token's owner carries (docs/owner-budgets.md):
-- at most one per dimension and period. limit_amount is in tokens, or in
-- micro-dollars for cost_usd, so sums never round.
-- owner_usage holds one row per owner, dimension, period and period start:
-- a new period is a new row, so nothing has to reset usage at midnight.
-- reserved is what model calls in flight may still use; it is settled
-- into used when each call ends. owner_holds names each call's part of
-- reserved with its run, so that the holds of a run that is no longer
-- running (its process died during a call) can be given back. The row
-- lock an UPDATE takes is what makes two instances reserving for one
-- owner take turns.

CREATE TABLE owner_budgets (
    owner        text NOT NULL,
    dimension    text NOT NULL CHECK (dimension IN ('tokens', 'cost_usd')),
    period       text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    limit_amount bigint NOT NULL CHECK (limit_amount > 0),
    PRIMARY KEY (owner, dimension, period)
);

CREATE TABLE owner_usage (
    owner        text NOT NULL,
    dimension    text NOT NULL CHECK (dimension IN ('tokens', 'cost_usd')),
    period       text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start timestamptz NOT NULL,
    used         bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved     bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (owner, dimension, period, period_start)
);

CREATE TABLE owner_holds (
    id           text NOT NULL,
    dimension    text NOT NULL,
    period       text NOT NULL,
    run_id       text NOT NULL,
    owner        text NOT NULL,
    period_start timestamptz NOT NULL,
    amount       bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (id, dimension, period)
);
CREATE INDEX owner_holds_run ON owner_holds (run_id);
