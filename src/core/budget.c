#include "core/budget.h"

#include <math.h>
#include <string.h>

/* Completion tokens a step is assumed to need on top of its prompt
 * (docs/runs.md, Wrap-up, rule c). */
#define BUDGET_ANSWER_TOKENS 1024
/* The wrap-up margin of the seconds budget: max(10 %, 5 s) (rule b). */
#define BUDGET_WRAP_MIN_MS 5000

static const char *const budget__names[BUDGET__COUNT] = {
    [BUDGET_STEPS] = "steps",           [BUDGET_SECONDS] = "seconds", [BUDGET_TOKENS] = "tokens",
    [BUDGET_TOOL_CALLS] = "tool_calls", [BUDGET_RETRIES] = "retries", [BUDGET_COST] = "cost_usd",
};

static const stop_reason budget__reasons[BUDGET__COUNT] = {
    [BUDGET_STEPS] = STOP_MAX_STEPS,     [BUDGET_SECONDS] = STOP_MAX_SECONDS,
    [BUDGET_TOKENS] = STOP_MAX_TOKENS,   [BUDGET_TOOL_CALLS] = STOP_MAX_TOOL_CALLS,
    [BUDGET_RETRIES] = STOP_MAX_RETRIES, [BUDGET_COST] = STOP_MAX_COST,
};

const char *budget_dim_name(budget_dim d)
{
    if ((unsigned)d >= BUDGET__COUNT) return "unknown";
    return budget__names[d];
}

stop_reason budget_dim_reason(budget_dim d)
{
    if ((unsigned)d >= BUDGET__COUNT) return STOP_COMPLETED;
    return budget__reasons[d];
}

void budget_init(budget *b, const mode_limits *limits, const budget_price *price, int64_t now_ms)
{
    memset(b, 0, sizeof *b);
    b->limits = *limits;
    if (price) b->price = *price;
    b->started_ms = now_ms;
}

void budget_set_limits(budget *b, const mode_limits *limits)
{
    b->limits = *limits;
    /* A dimension that the new limits put back under 80 % may warn again
     * when it crosses later; one that is now past 80 % for the first time is
     * left for budget_new_warnings to report. */
    b->warned &= budget_warnings(b);
}

static int64_t budget__elapsed_ms(const budget *b, int64_t now_ms)
{
    return now_ms > b->started_ms ? now_ms - b->started_ms : 0;
}

void budget_tick(budget *b, int64_t now_ms)
{
    b->usage.seconds = (double)budget__elapsed_ms(b, now_ms) / 1000.0;
}

static bool budget__cost_limited(const budget *b)
{
    return b->price.set && b->limits.cost_usd >= 0;
}

/* The price in USD of this many prompt and completion tokens. */
static double budget__price_of(const budget *b, int64_t prompt, int64_t completion)
{
    return ((double)prompt * b->price.input_per_mtok +
            (double)completion * b->price.output_per_mtok) /
           1e6;
}

static budget_decision budget__decide(budget_verdict v, budget_dim d)
{
    return (budget_decision){.verdict = v, .dim = d};
}

/*
 * The order of the checks is the order of the header: first every dimension
 * that is already used up stops the run; then the wrap-up rules (a) to (e).
 * Time is compared in whole milliseconds so that no rounding of
 * usage.seconds moves a threshold.
 */
budget_decision budget_check_step(budget *b, int64_t now_ms, int64_t est_prompt_tokens)
{
    const mode_limits *l = &b->limits;
    const budget_usage *u = &b->usage;
    budget_tick(b, now_ms);
    int64_t elapsed = budget__elapsed_ms(b, now_ms);
    if (est_prompt_tokens < 0) est_prompt_tokens = 0;

    if (l->steps >= 0 && u->steps >= l->steps) return budget__decide(BUDGET_STOP, BUDGET_STEPS);
    if (l->seconds >= 0 && elapsed >= l->seconds * 1000)
        return budget__decide(BUDGET_STOP, BUDGET_SECONDS);
    if (l->tokens >= 0 && u->tokens >= l->tokens) return budget__decide(BUDGET_STOP, BUDGET_TOKENS);
    if (budget__cost_limited(b) && u->cost_usd >= l->cost_usd)
        return budget__decide(BUDGET_STOP, BUDGET_COST);

    if (l->steps >= 0 && u->steps + 1 >= l->steps)
        return budget__decide(BUDGET_WRAP_UP, BUDGET_STEPS);
    if (l->seconds >= 0) {
        int64_t limit_ms = l->seconds * 1000;
        int64_t margin_ms = limit_ms / 10 > BUDGET_WRAP_MIN_MS ? limit_ms / 10 : BUDGET_WRAP_MIN_MS;
        if (limit_ms - elapsed < margin_ms) return budget__decide(BUDGET_WRAP_UP, BUDGET_SECONDS);
    }
    if (l->tokens >= 0 && l->tokens - u->tokens < est_prompt_tokens + BUDGET_ANSWER_TOKENS)
        return budget__decide(BUDGET_WRAP_UP, BUDGET_TOKENS);
    if (l->tool_calls >= 0 && u->tool_calls >= l->tool_calls)
        return budget__decide(BUDGET_WRAP_UP, BUDGET_TOOL_CALLS);
    if (budget__cost_limited(b) &&
        l->cost_usd - u->cost_usd < budget__price_of(b, est_prompt_tokens, BUDGET_ANSWER_TOKENS))
        return budget__decide(BUDGET_WRAP_UP, BUDGET_COST);
    return budget__decide(BUDGET_GO, BUDGET_STEPS);
}

budget_decision budget_check_tool(budget *b, int64_t now_ms)
{
    budget_tick(b, now_ms);
    if (b->limits.seconds >= 0 && budget__elapsed_ms(b, now_ms) >= b->limits.seconds * 1000)
        return budget__decide(BUDGET_STOP, BUDGET_SECONDS);
    if (b->limits.tool_calls >= 0 && b->usage.tool_calls >= b->limits.tool_calls)
        return budget__decide(BUDGET_SKIP, BUDGET_TOOL_CALLS);
    return budget__decide(BUDGET_GO, BUDGET_TOOL_CALLS);
}

void budget_on_step(budget *b)
{
    b->usage.steps++;
}

void budget_on_tokens(budget *b, int64_t prompt_tokens, int64_t completion_tokens)
{
    if (prompt_tokens < 0) prompt_tokens = 0;
    if (completion_tokens < 0) completion_tokens = 0;
    b->usage.prompt_tokens += prompt_tokens;
    b->usage.completion_tokens += completion_tokens;
    b->usage.tokens += prompt_tokens + completion_tokens;
    if (b->price.set) b->usage.cost_usd += budget__price_of(b, prompt_tokens, completion_tokens);
}

void budget_on_tool_call(budget *b)
{
    b->usage.tool_calls++;
}

bool budget_take_retry(budget *b)
{
    if (b->limits.retries >= 0 && b->usage.retries >= b->limits.retries) return false;
    b->usage.retries++;
    return true;
}

int64_t budget_max_completion_tokens(const budget *b, int64_t est_prompt_tokens)
{
    if (b->limits.tokens < 0) return -1;
    if (est_prompt_tokens < 0) est_prompt_tokens = 0;
    int64_t left = b->limits.tokens - b->usage.tokens - est_prompt_tokens;
    return left > 1 ? left : 1;
}

int64_t budget_deadline_ms(const budget *b)
{
    if (b->limits.seconds < 0) return INT64_MAX;
    return b->started_ms + b->limits.seconds * 1000;
}

/* True when used is at or past 80 % of a positive limit. Multiplying out
 * (used * 5 >= limit * 4) keeps the integer dimensions exact. */
static bool budget__past80_int(int64_t used, int64_t limit)
{
    return limit > 0 && used * 5 >= limit * 4;
}

unsigned budget_warnings(const budget *b)
{
    const mode_limits *l = &b->limits;
    const budget_usage *u = &b->usage;
    unsigned mask = 0;
    if (budget__past80_int(u->steps, l->steps)) mask |= 1u << BUDGET_STEPS;
    if (l->seconds > 0 && u->seconds * 5.0 >= (double)l->seconds * 4.0)
        mask |= 1u << BUDGET_SECONDS;
    if (budget__past80_int(u->tokens, l->tokens)) mask |= 1u << BUDGET_TOKENS;
    if (budget__past80_int(u->tool_calls, l->tool_calls)) mask |= 1u << BUDGET_TOOL_CALLS;
    if (budget__past80_int(u->retries, l->retries)) mask |= 1u << BUDGET_RETRIES;
    if (b->price.set && l->cost_usd > 0 && u->cost_usd * 5.0 >= l->cost_usd * 4.0)
        mask |= 1u << BUDGET_COST;
    return mask;
}

unsigned budget_new_warnings(budget *b)
{
    unsigned fresh = budget_warnings(b) & ~b->warned;
    b->warned |= fresh;
    return fresh;
}

json_t *budget_dims_to_json(unsigned mask)
{
    json_t *a = json_array();
    for (int d = 0; d < BUDGET__COUNT; d++)
        if (mask & (1u << d)) json_array_append_new(a, json_string(budget__names[d]));
    return a;
}

void budget_on_wait(budget *b, int64_t waited_ms)
{
    if (waited_ms <= 0) return;
    b->started_ms += waited_ms;
    b->usage.waiting_seconds += (double)waited_ms / 1000.0;
}

json_t *budget_usage_to_json(const budget_usage *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "steps", json_integer(u->steps));
    /* Elapsed time is measured in milliseconds; more digits are noise. */
    json_object_set_new(o, "seconds", json_real(round(u->seconds * 1000.0) / 1000.0));
    json_object_set_new(o, "tokens", json_integer(u->tokens));
    json_object_set_new(o, "tool_calls", json_integer(u->tool_calls));
    json_object_set_new(o, "retries", json_integer(u->retries));
    json_object_set_new(o, "cost_usd", json_real(u->cost_usd));
    json_object_set_new(o, "waiting_seconds",
                        json_real(round(u->waiting_seconds * 1000.0) / 1000.0));
    return o;
}

json_t *budget_to_json(const budget *b)
{
    json_t *o = json_object();
    json_object_set_new(o, "limits", mode_limits_to_json(&b->limits));
    json_object_set_new(o, "usage", budget_usage_to_json(&b->usage));
    json_object_set_new(o, "warnings", budget_dims_to_json(budget_warnings(b)));
    return o;
}
