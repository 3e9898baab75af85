/*
 * owner_budget: the budgets a token's owner carries for a calendar period
 * (docs/owner-budgets.md): their text form ("cost_usd=20/day"), the
 * decision taken before each model call (go with a reservation and a cap on
 * the completion, or stop), and the wording of a stop. Pure: the store
 * keeps the usage and the engine asks; nothing here reads a clock.
 *
 * Amounts are integers: tokens, or micro-dollars (millionths of a US
 * dollar) for cost_usd, so that sums kept in the database never round.
 */
#ifndef CHATPLANE_OWNER_BUDGET_H
#define CHATPLANE_OWNER_BUDGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/budget.h"
#include "core/period.h"

typedef enum owner_budget_dim {
    OWNER_BUDGET_TOKENS,
    OWNER_BUDGET_COST, /* "cost_usd", counted in micro-dollars */
    OWNER_BUDGET__DIM_COUNT
} owner_budget_dim;

/* The most budgets one owner carries: one per dimension and period. */
#define OWNER_BUDGET_MAX (OWNER_BUDGET__DIM_COUNT * PERIOD__COUNT)
/* The largest limit accepted: 10^15 tokens or micro-dollars (a billion
 * dollars), far below where int64_t sums could overflow. */
#define OWNER_BUDGET_LIMIT_MAX 1000000000000000LL
#define OWNER_BUDGET_ERR_MAX   160

/* "tokens" or "cost_usd"; "unknown" outside the enum. */
const char *owner_budget_dim_name(owner_budget_dim d);
int owner_budget_dim_parse(const char *name, owner_budget_dim *out);

typedef struct owner_budget_spec {
    owner_budget_dim dim;
    period_kind period;
    int64_t limit; /* tokens or micro-dollars, > 0 */
} owner_budget_spec;

/*
 * Parses "DIM=N/PERIOD": tokens=2000000/month, cost_usd=20/day,
 * cost_usd=0.5/week. tokens takes a whole number; cost_usd at most six
 * decimals. Returns 0, or -1 with err saying what is wrong.
 */
int owner_budget_parse(const char *text, owner_budget_spec *out, char *err, size_t errlen);
/* Writes the text form owner_budget_parse reads ("cost_usd=20/day"). */
void owner_budget_format_spec(const owner_budget_spec *b, char *out, size_t outlen);
/* An amount as people read it: "2000000 tokens" ("1 token"), "$20.00"
 * (cents when whole, else up to six decimals: "$0.0213"). */
void owner_budget_format_amount(owner_budget_dim d, int64_t amount, char *out, size_t outlen);
/* An amount as the API shows it: tokens as an integer, cost as dollars. */
double owner_budget_api_amount(owner_budget_dim d, int64_t amount);

/* One budget as the store reads it, with the usage of its current period. */
typedef struct owner_budget_state {
    owner_budget_spec spec;
    int64_t period_start_ms;
    int64_t used, reserved;
} owner_budget_state;

/* What the engine decides before a model call. */
typedef struct owner_budget_plan {
    bool stop;                         /* over budget: the call is not made */
    size_t over;                       /* which state stopped it */
    int64_t max_completion_tokens;     /* the cap, <= the one asked for */
    int64_t reserve[OWNER_BUDGET_MAX]; /* the amount to hold, per state */
} owner_budget_plan;

/*
 * Decides a call that sends about est_prompt tokens and may ask for up to
 * max_completion tokens (the run's own cap) against n (<= OWNER_BUDGET_MAX)
 * budgets: each budget's room (limit - used - reserved) must hold the
 * prompt and at least one completion token, at price for cost_usd; the
 * completion is capped so that every budget holds the whole call; the
 * reservation of each budget is the call's most (est_prompt plus the
 * capped completion, in its unit). Without a price (price->set false) a
 * cost budget holds nothing back and stops only once used reaches it.
 */
owner_budget_plan owner_budget_decide(const owner_budget_state *st, size_t n, int64_t est_prompt,
                                      int64_t max_completion, const budget_price *price);

/* What a call used, in dim's unit: tokens, or their price rounded up to a
 * micro-dollar (0 without a price). */
int64_t owner_budget_amount(owner_budget_dim d, int64_t prompt, int64_t completion,
                            const budget_price *price);

/* {"dimension", "period", "limit", "used", "reserved", "resets_at"}: a new
 * object, as GET /api/usage shows a budget. Tokens are integers, cost_usd
 * dollars; resets_at is RFC 3339 with milliseconds. */
json_t *owner_budget_to_json(const owner_budget_state *st);

/*
 * The detail of an owner_budget stop: "alice used $20.00 of $20.00 this
 * day; it resets at 2026-12-04T00:00:00Z", with "(…more held by calls in
 * flight)" after the amounts when reservations count. Caller frees.
 */
char *owner_budget_stop_detail(const char *owner, const owner_budget_state *st);

#endif
