/*
 * budget: the ledger of one run (docs/runs.md, Budgets).
 *
 * Pure: time is passed in as milliseconds (any monotonic epoch, the same one
 * for every call on a ledger). The engine asks before every model call
 * (budget_check_step) and before every tool call (budget_check_tool), records
 * what happened, and emits a `budget` event with budget_to_json afterwards.
 */
#ifndef CHATPLANE_BUDGET_H
#define CHATPLANE_BUDGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mode.h"
#include "core/stop.h"

typedef enum budget_dim {
    BUDGET_STEPS,
    BUDGET_SECONDS,
    BUDGET_TOKENS,
    BUDGET_TOOL_CALLS,
    BUDGET_RETRIES,
    BUDGET_COST,
    BUDGET__COUNT
} budget_dim;

typedef struct budget_usage {
    int64_t steps;
    double seconds;
    int64_t tokens;
    int64_t tool_calls;
    int64_t retries;
    double cost_usd;
    int64_t prompt_tokens;     /* part of tokens, for metrics and cost */
    int64_t completion_tokens; /* part of tokens */
    double waiting_seconds;    /* time spent waiting for a person, not in seconds */
} budget_usage;

typedef struct budget_price {
    double input_per_mtok;  /* USD per million prompt tokens */
    double output_per_mtok; /* USD per million completion tokens */
    bool set;               /* false: cost is not tracked and never limits */
} budget_price;

typedef struct budget {
    mode_limits limits;
    budget_usage usage;
    budget_price price;
    int64_t started_ms;
    unsigned warned; /* bit per budget_dim already reported past 80 % */
} budget;

/* Names of the dimensions in the API: "steps", "seconds", "tokens",
 * "tool_calls", "retries", "cost_usd". */
const char *budget_dim_name(budget_dim d);
/* The stop reason a dimension causes (max_steps, …, max_retries, max_cost). */
stop_reason budget_dim_reason(budget_dim d);

void budget_init(budget *b, const mode_limits *limits, const budget_price *price, int64_t now_ms);
/* A mode change mid-run: new limits apply at once; warnings are re-evaluated. */
void budget_set_limits(budget *b, const mode_limits *limits);
/* Brings usage.seconds up to now. */
void budget_tick(budget *b, int64_t now_ms);

typedef enum budget_verdict {
    BUDGET_GO,      /* go ahead */
    BUDGET_WRAP_UP, /* go ahead, but as the wrap-up step: no tools offered */
    BUDGET_SKIP,    /* (tool calls only) do not run it: tool-call budget exhausted */
    BUDGET_STOP     /* stop the run now with budget_dim_reason(dim) */
} budget_verdict;

typedef struct budget_decision {
    budget_verdict verdict;
    budget_dim dim; /* the dimension behind WRAP_UP, SKIP or STOP */
} budget_decision;

/*
 * Before a model call. est_prompt_tokens is the estimated size of the prompt
 * about to be sent. STOP when a dimension is already used up (steps, seconds,
 * tokens, cost); otherwise WRAP_UP when (a) the step about to start is number
 * limits.steps, (b) less than max(10 % of limits.seconds, 5 s) remains,
 * (c) the tokens left would not cover est_prompt_tokens + 1024, (d) the
 * tool-call budget is used up, or (e) the cost left would not cover the
 * prompt plus 1024 completion tokens at the configured price; otherwise GO.
 * The first matching dimension in that order is reported.
 */
budget_decision budget_check_step(budget *b, int64_t now_ms, int64_t est_prompt_tokens);

/* Before a tool call: STOP when time is up, SKIP when the tool-call budget
 * is used up, else GO. */
budget_decision budget_check_tool(budget *b, int64_t now_ms);

/* Records that a model turn (step) started. */
void budget_on_step(budget *b);
/* Records tokens the model reported (or the bytes/4 estimate) and their cost. */
void budget_on_tokens(budget *b, int64_t prompt_tokens, int64_t completion_tokens);
/* Records that the run waited waited_ms for a person: the time is added to
 * usage.waiting_seconds and taken out of the seconds budget, so the
 * deadline moves by as much. */
void budget_on_wait(budget *b, int64_t waited_ms);
/* Records that a tool execution started. */
void budget_on_tool_call(budget *b);
/* Asks to retry a failed model call: true (and one retry charged) when a
 * retry is left, false when the run must stop with max_retries. */
bool budget_take_retry(budget *b);

/* The most completion tokens to request: the tokens left after the
 * estimated prompt (at least 1), or -1 when tokens are unlimited. */
int64_t budget_max_completion_tokens(const budget *b, int64_t est_prompt_tokens);
/* The absolute time (same epoch as now_ms) when seconds run out, or
 * INT64_MAX when unlimited. */
int64_t budget_deadline_ms(const budget *b);

/* Bit (1u << dim) for every dimension at or past 80 % of its limit. */
unsigned budget_warnings(const budget *b);
/* Bits of dimensions that crossed 80 % since the last call; marks them. */
unsigned budget_new_warnings(budget *b);

/* Returns a new JSON object {"limits":{…},"usage":{…},"warnings":[…]}, the
 * fields of a `budget` event. */
json_t *budget_to_json(const budget *b);
/* Returns a new JSON object of usage in the API's shape
 * {"steps","seconds","tokens","tool_calls","retries","cost_usd"}. */
json_t *budget_usage_to_json(const budget_usage *u);
/* Returns a new JSON array of the names of the dimensions in mask. */
json_t *budget_dims_to_json(unsigned mask);

#endif
