/*
 * stop: why a run ended (docs/runs.md, Stop reasons), what to tell the person and
 * which actions to offer.
 */
#ifndef CHATPLANE_STOP_H
#define CHATPLANE_STOP_H

#include <jansson.h>
#include <stdbool.h>

#include "core/mode.h"

struct budget_usage;

typedef enum stop_reason {
    STOP_COMPLETED,
    STOP_USER_STOPPED,
    STOP_MAX_STEPS,
    STOP_MAX_SECONDS,
    STOP_MAX_TOKENS,
    STOP_MAX_TOOL_CALLS,
    STOP_MAX_COST,
    STOP_MAX_RETRIES,
    STOP_LOOP_DETECTED,
    STOP_REPEATED_FAILURES,
    STOP_NO_PROGRESS,
    STOP_LLM_ERROR,
    STOP_INTERRUPTED,
    STOP_APPROVAL_TIMEOUT,
    STOP_OWNER_BUDGET, /* the owner's budget for the period is used up */
    STOP__COUNT
} stop_reason;

/* How a stop is coloured (the run object's stop_tone, docs/api.md). */
typedef enum stop_tone {
    STOP_TONE_GOOD,    /* an answer */
    STOP_TONE_NEUTRAL, /* stopped on request, or by the server: continue carries on */
    STOP_TONE_WARN,    /* a budget ran out */
    STOP_TONE_BAD,     /* a guardrail, or a model that failed or refused */
    STOP__TONE_COUNT
} stop_tone;

/* How `chatplane ask` exits after the stop (docs/cli.md). */
typedef enum stop_exit {
    STOP_EXIT_COMPLETED, /* 0 */
    STOP_EXIT_STOPPED,   /* 3: a budget or guardrail stop */
    STOP_EXIT_USER,      /* 4: user_stopped */
    STOP_EXIT_FAILED,    /* 1: llm_error, interrupted */
} stop_exit;

/* Returns the name the API uses ("completed", "max_steps", …). */
const char *stop_reason_name(stop_reason r);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int stop_reason_parse(const char *name, stop_reason *out);
/* The tone of r; STOP_TONE_BAD for a value outside the enum. */
stop_tone stop_reason_tone(stop_reason r);
/* "good", "neutral", "warn" or "bad". */
const char *stop_tone_name(stop_tone t);
/* The exit class of r; STOP_EXIT_FAILED for a value outside the enum. */
stop_exit stop_reason_exit(stop_reason r);
/* True for the max_* reasons that a budget dimension causes (not retries). */
bool stop_reason_is_budget(stop_reason r);

/* Returns the recovery suggestion for r in a run of mode mode_name: one or
 * two sentences telling the person what to do. For the budget reasons it
 * suggests switching to mode_next_larger(mode_name), and leaves that out when
 * there is none (deep, or a mode that is not a preset). Static storage: one
 * fixed string per reason and possible larger mode; never freed. */
const char *stop_recovery(stop_reason r, const char *mode_name);

/*
 * Returns a new JSON array of actions for r:
 *   [{"kind":"continue","label":"Continue"},
 *    {"kind":"switch_mode","mode":"deep","label":"Switch to deep mode"}, …]
 * switch_mode names mode_next_larger(mode_name) and is left out when there
 * is no larger mode.
 */
json_t *stop_actions(stop_reason r, const char *mode_name);

/*
 * Returns a new string describing how a budget ran out, with numbers:
 * "used 10 of 10 steps", "used 121.3 of 120 seconds", "used 50210 of 50000
 * tokens", "used 15 of 15 tool calls", "spent $0.0213 of $0.0200",
 * "used 3 of 3 retries". The unit is singular for a limit of 1 ("used 1 of
 * 1 retry"); an unlimited dimension reads "used 3 retries". r must be a
 * max_* reason (max_retries included); other reasons return NULL. Caller
 * frees.
 */
char *stop_budget_detail(stop_reason r, const mode_limits *limits,
                         const struct budget_usage *usage);

#endif
