/*
 * guard: the guardrails of one run (docs/runs.md, Guardrails).
 *
 * Pure: the engine reports every finished tool execution and every finished
 * model turn; the guard answers with verdicts. A WARN verdict carries a nudge
 * (a system message for the next model call) and becomes a `guardrail`
 * event; a STOP verdict ends the run with its stop reason.
 *
 * Rules, with the mode's thresholds (defaults in brackets):
 *  loop (repeat): the n-th call of this run with the same fingerprint
 *    (tool name + canonical arguments) and the same outcome (status + result
 *    text): every n from loop_warn [3] up to loop_stop - 1 warns (a nudge
 *    each time), n >= loop_stop [4] stops loop_detected.
 *  loop (alternating): the last 6 finished calls have fingerprints
 *    A,B,A,B,A,B with A != B, and every A had one outcome and every B one
 *    outcome: stop loop_detected.
 *  repeated_failure: consecutive executions ending error or timeout:
 *    fail_warn [2] warns, fail_stop [3] stops repeated_failures. An ok
 *    execution ends the streak; a cancelled one leaves it as it is.
 *  no_progress (empty): a model turn with no text and no tool calls: the
 *    first warns, a second in a row stops no_progress.
 *  no_progress (monologue): the same trimmed non-empty assistant text a
 *    third time in one run stops no_progress.
 *  no_progress (stale): stale_steps [4] steps in a row whose every tool
 *    outcome (status + result text) was already seen earlier in the run
 *    stops no_progress. A step without tool calls ends the streak.
 */
#ifndef CHATPLANE_GUARD_H
#define CHATPLANE_GUARD_H

#include <jansson.h>
#include <stddef.h>

#include "core/mode.h"
#include "core/stop.h"

typedef enum guard_check {
    GUARD_LOOP,
    GUARD_REPEATED_FAILURE,
    GUARD_NO_PROGRESS,
} guard_check;

typedef enum guard_action {
    GUARD_WARN,
    GUARD_STOP,
} guard_action;

typedef struct guard_verdict {
    guard_check check;
    guard_action action;
    stop_reason reason; /* for GUARD_STOP: loop_detected, repeated_failures, no_progress */
    char *detail;       /* owned: "calc was called 4 times with {\"expression\":\"1/0\"}" */
    char *nudge;        /* owned, WARN only (else NULL): the system message for the model */
    json_t *evidence;   /* owned reference: {"tool","arguments","count",…} */
} guard_verdict;

/* At most this many verdicts come from one report. */
#define GUARD_MAX_VERDICTS 3

typedef struct guard guard;

/* Returns a new guard with these thresholds; free with guard_free. */
guard *guard_new(const mode_guard *thresholds);
void guard_free(guard *g);
/* A mode change mid-run: new thresholds apply from the next report on. */
void guard_set_thresholds(guard *g, const mode_guard *thresholds);

/* Returns the names events carry: "loop", "repeated_failure", "no_progress";
 * "warn", "stop". */
const char *guard_check_name(guard_check c);
const char *guard_action_name(guard_action a);

/*
 * Reports a finished tool execution. status is "ok", "error", "timeout" or
 * "cancelled"; result is its result text (the error text for failures; NULL
 * counts as ""). step is the run's step number the call belongs to.
 * Fills out[0..n) and returns n (0 to GUARD_MAX_VERDICTS). When a STOP is
 * among them it is the last one. The caller cleans up every verdict.
 */
size_t guard_on_tool_result(guard *g, int step, const char *tool, const json_t *arguments,
                            const char *status, const char *result, guard_verdict *out);

/*
 * Reports a finished model turn of step `step`: its assistant text (NULL or
 * "" for none) and how many tool calls it asked for. Call it after the
 * turn's tool results have been reported, so that the stale rule sees the
 * whole step. Returns the verdicts as guard_on_tool_result does.
 */
size_t guard_on_turn(guard *g, int step, const char *text, size_t tool_calls, guard_verdict *out);

/* Frees what a verdict owns. */
void guard_verdict_cleanup(guard_verdict *v);

#endif
