-- chatplane schema, version 9, SQLite dialect: budgets per owner and period.
--
-- owner_budgets holds the budgets a token's owner carries (docs/owner-budgets.md):
-- at most one per dimension and period. limit_amount is in tokens, or in
-- micro-dollars for cost_usd, so sums never round.
-- owner_usage holds one row per owner, dimension, period and period start:
-- a new period is a new row, so nothing has to reset usage at midnight.
-- reserved is what model calls in flight may still use; it is settled
-- into used when each call ends.

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
