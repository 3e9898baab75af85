#include "core/stop.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "lib/xmalloc.h"

/*
 * What each reason is called and how it is shown: the tone the page and the
 * terminal colour it with, and how `chatplane ask` exits (docs/cli.md). A
 * finished answer is good; a stop the person asked for, or a server stop
 * that can be continued, is neutral; a spent budget is a warning; a
 * guardrail, a model that kept failing or refused is bad. The exit class
 * follows what the person can do about it: a budget they set (every max_*
 * but max_retries) or a guardrail is a stop; llm_error, max_retries (an
 * endpoint that stayed down, which a larger budget does not fix) and
 * interrupted are failures.
 */
static const struct {
    const char *name;
    stop_tone tone;
    stop_exit exit;
} stop__table[STOP__COUNT] = {
    [STOP_COMPLETED] = {"completed", STOP_TONE_GOOD, STOP_EXIT_COMPLETED},
    [STOP_USER_STOPPED] = {"user_stopped", STOP_TONE_NEUTRAL, STOP_EXIT_USER},
    [STOP_MAX_STEPS] = {"max_steps", STOP_TONE_WARN, STOP_EXIT_STOPPED},
    [STOP_MAX_SECONDS] = {"max_seconds", STOP_TONE_WARN, STOP_EXIT_STOPPED},
    [STOP_MAX_TOKENS] = {"max_tokens", STOP_TONE_WARN, STOP_EXIT_STOPPED},
    [STOP_MAX_TOOL_CALLS] = {"max_tool_calls", STOP_TONE_WARN, STOP_EXIT_STOPPED},
    [STOP_MAX_COST] = {"max_cost", STOP_TONE_WARN, STOP_EXIT_STOPPED},
    [STOP_MAX_RETRIES] = {"max_retries", STOP_TONE_BAD, STOP_EXIT_FAILED},
    [STOP_LOOP_DETECTED] = {"loop_detected", STOP_TONE_BAD, STOP_EXIT_STOPPED},
    [STOP_REPEATED_FAILURES] = {"repeated_failures", STOP_TONE_BAD, STOP_EXIT_STOPPED},
    [STOP_NO_PROGRESS] = {"no_progress", STOP_TONE_BAD, STOP_EXIT_STOPPED},
    [STOP_LLM_ERROR] = {"llm_error", STOP_TONE_BAD, STOP_EXIT_FAILED},
    [STOP_INTERRUPTED] = {"interrupted", STOP_TONE_NEUTRAL, STOP_EXIT_FAILED},
    [STOP_APPROVAL_TIMEOUT] = {"approval_timeout", STOP_TONE_NEUTRAL, STOP_EXIT_STOPPED},
    [STOP_OWNER_BUDGET] = {"owner_budget", STOP_TONE_WARN, STOP_EXIT_STOPPED},
};

static const char *const stop__tone_names[STOP__TONE_COUNT] = {
    [STOP_TONE_GOOD] = "good",
    [STOP_TONE_NEUTRAL] = "neutral",
    [STOP_TONE_WARN] = "warn",
    [STOP_TONE_BAD] = "bad",
};

const char *stop_reason_name(stop_reason r)
{
    if ((unsigned)r >= STOP__COUNT) return "unknown";
    return stop__table[r].name;
}

int stop_reason_parse(const char *name, stop_reason *out)
{
    if (!name) return -1;
    for (int i = 0; i < STOP__COUNT; i++) {
        if (strcmp(stop__table[i].name, name) == 0) {
            *out = (stop_reason)i;
            return 0;
        }
    }
    return -1;
}

stop_tone stop_reason_tone(stop_reason r)
{
    return (unsigned)r < STOP__COUNT ? stop__table[r].tone : STOP_TONE_BAD;
}

const char *stop_tone_name(stop_tone t)
{
    return (unsigned)t < STOP__TONE_COUNT ? stop__tone_names[t] : "bad";
}

stop_exit stop_reason_exit(stop_reason r)
{
    return (unsigned)r < STOP__COUNT ? stop__table[r].exit : STOP_EXIT_FAILED;
}

bool stop_reason_is_budget(stop_reason r)
{
    switch (r) {
    case STOP_MAX_STEPS:
    case STOP_MAX_SECONDS:
    case STOP_MAX_TOKENS:
    case STOP_MAX_TOOL_CALLS:
    case STOP_MAX_COST:
        return true;
    default:
        return false;
    }
}

/*
 * Recovery suggestions of the budget reasons come in one variant per mode
 * they may suggest switching to, so that stop_recovery can hand out static
 * strings. The variant is chosen by the preset the switch leads to.
 */
enum { STOP__NO_SWITCH, STOP__TO_STANDARD, STOP__TO_DEEP, STOP__VARIANTS };

#define STOP__BUDGET_TEXT(what, more)                                                              \
    {                                                                                              \
        [STOP__NO_SWITCH] = what " Continue to give it " more ".",                                 \
        [STOP__TO_STANDARD] =                                                                      \
            what " Continue to give it " more ", or switch to standard mode for a larger budget.", \
        [STOP__TO_DEEP] =                                                                          \
            what " Continue to give it " more ", or switch to deep mode for a larger budget.",     \
    }

static const char *const stop__budget_recovery[STOP__COUNT][STOP__VARIANTS] = {
    [STOP_MAX_STEPS] = STOP__BUDGET_TEXT("The run used every step its mode allows.", "more steps"),
    [STOP_MAX_SECONDS] =
        STOP__BUDGET_TEXT("The run reached the time limit of its mode.", "more time"),
    [STOP_MAX_TOKENS] =
        STOP__BUDGET_TEXT("The run used all the tokens its mode allows.", "more tokens"),
    [STOP_MAX_TOOL_CALLS] =
        STOP__BUDGET_TEXT("The run made every tool call its mode allows.", "more tool calls"),
    [STOP_MAX_COST] =
        STOP__BUDGET_TEXT("The run spent the whole cost budget of its mode.", "more to spend"),
};

static const char *const stop__recovery[STOP__COUNT] = {
    [STOP_COMPLETED] = "The run finished with an answer. Send a new message to go on.",
    [STOP_USER_STOPPED] = "The run was stopped on request. Continue to let it carry on from "
                          "where it stopped, or send a new message.",
    [STOP_MAX_RETRIES] = "The model endpoint kept failing with temporary errors. Check that the "
                         "model server is up and not overloaded, then retry.",
    [STOP_LOOP_DETECTED] = "The run kept repeating the same tool calls without getting anywhere. "
                           "Rephrase the request with more detail, or continue to let it try a "
                           "different approach.",
    [STOP_REPEATED_FAILURES] = "Tool calls failed several times in a row. Check the errors in the "
                               "tool timeline, then rephrase the request or continue to let it "
                               "try again.",
    [STOP_NO_PROGRESS] = "The run stopped making progress. Rephrase the request with more "
                         "specific details, or continue to give it another chance.",
    [STOP_LLM_ERROR] = "The model endpoint refused the request. Check the model URL, API key, "
                       "model name and account quota in the configuration, then send the "
                       "message again.",
    [STOP_INTERRUPTED] = "The server stopped while the run was going. Continue to pick up where "
                         "it left off.",
    [STOP_APPROVAL_TIMEOUT] = "Nobody answered the approval request in time. Continue to ask "
                              "again, or change the approval rules so the call needs no answer.",
    [STOP_OWNER_BUDGET] = "Your budget for this period is used up. Wait until it resets, or ask "
                          "an administrator to raise it with chatplane token budget.",
};

/* Which variant of a budget suggestion fits a run of mode_name. */
static int stop__variant(const char *mode_name)
{
    const char *next = mode_next_larger(mode_name);
    if (!next) return STOP__NO_SWITCH;
    return strcmp(next, "deep") == 0 ? STOP__TO_DEEP : STOP__TO_STANDARD;
}

const char *stop_recovery(stop_reason r, const char *mode_name)
{
    if ((unsigned)r >= STOP__COUNT) return "";
    if (stop_reason_is_budget(r)) return stop__budget_recovery[r][stop__variant(mode_name)];
    return stop__recovery[r];
}

/* Appends {"kind":kind,"mode"?:mode,"label":label} to actions. */
static void stop__add_action(json_t *actions, const char *kind, const char *mode_name,
                             const char *label)
{
    json_t *a = json_object();
    json_object_set_new(a, "kind", json_string(kind));
    if (mode_name) json_object_set_new(a, "mode", json_string(mode_name));
    json_object_set_new(a, "label", json_string(label));
    json_array_append_new(actions, a);
}

/* The actions of docs/runs.md, Stop reasons, in the order listed there. */
json_t *stop_actions(stop_reason r, const char *mode_name)
{
    json_t *actions = json_array();
    switch (r) {
    case STOP_USER_STOPPED:
    case STOP_INTERRUPTED:
    case STOP_APPROVAL_TIMEOUT:
        stop__add_action(actions, "continue", NULL, "Continue");
        break;
    case STOP_MAX_STEPS:
    case STOP_MAX_SECONDS:
    case STOP_MAX_TOKENS:
    case STOP_MAX_TOOL_CALLS:
    case STOP_MAX_COST: {
        stop__add_action(actions, "continue", NULL, "Continue");
        const char *next = mode_next_larger(mode_name);
        if (next) {
            char *label = xasprintf("Switch to %s mode", next);
            stop__add_action(actions, "switch_mode", next, label);
            free(label);
        }
        break;
    }
    case STOP_MAX_RETRIES:
        stop__add_action(actions, "retry", NULL, "Retry");
        break;
    case STOP_LOOP_DETECTED:
    case STOP_REPEATED_FAILURES:
    case STOP_NO_PROGRESS:
        stop__add_action(actions, "rephrase", NULL, "Rephrase");
        stop__add_action(actions, "continue", NULL, "Continue");
        break;
    default:
        break;
    }
    return actions;
}

/* "step" or "steps": the unit agrees with the limit it follows. */
static const char *stop__unit(int64_t limit, const char *one, const char *many)
{
    return limit == 1 ? one : many;
}

/* "used 3 of 10 steps", or "used 3 steps" when the dimension has no limit. */
static char *stop__count_detail(int64_t used, int64_t limit, const char *one, const char *many)
{
    if (limit < 0) return xasprintf("used %lld %s", (long long)used, used == 1 ? one : many);
    return xasprintf("used %lld of %lld %s", (long long)used, (long long)limit,
                     stop__unit(limit, one, many));
}

char *stop_budget_detail(stop_reason r, const mode_limits *limits, const budget_usage *usage)
{
    switch (r) {
    case STOP_MAX_STEPS:
        return stop__count_detail(usage->steps, limits->steps, "step", "steps");
    case STOP_MAX_SECONDS:
        if (limits->seconds < 0) return xasprintf("used %.1f seconds", usage->seconds);
        return xasprintf("used %.1f of %lld %s", usage->seconds, (long long)limits->seconds,
                         stop__unit(limits->seconds, "second", "seconds"));
    case STOP_MAX_TOKENS:
        return stop__count_detail(usage->tokens, limits->tokens, "token", "tokens");
    case STOP_MAX_TOOL_CALLS:
        return stop__count_detail(usage->tool_calls, limits->tool_calls, "tool call", "tool calls");
    case STOP_MAX_RETRIES:
        return stop__count_detail(usage->retries, limits->retries, "retry", "retries");
    case STOP_MAX_COST:
        if (limits->cost_usd < 0) return xasprintf("spent $%.4f", usage->cost_usd);
        return xasprintf("spent $%.4f of $%.4f", usage->cost_usd, limits->cost_usd);
    default:
        return NULL;
    }
}
