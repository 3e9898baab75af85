/*
 * context: the messages of one model call (docs/runs.md, Model context), built
 * from a session's history in OpenAI chat form.
 *
 * Layout: the system prompt, a system note with the budget left, the
 * history trimmed oldest first to the token estimate (never dropping the
 * current run's user message, and never splitting an assistant message from
 * its tool results), then the notes (nudges, the wrap-up note) as system
 * messages, so the model reads them last.
 */
#ifndef CHATPLANE_CONTEXT_H
#define CHATPLANE_CONTEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/budget.h"

/* The longest tool result the model sees (32 KiB); stored results are
 * longer. */
#define CONTEXT_TOOL_RESULT_MAX 32768

/* The system note of a wrap-up step. */
extern const char *const CONTEXT_WRAP_UP_NOTE;

typedef struct context_params {
    const char *system_prompt; /* NULL or "" for none */
    const char *budget_note;   /* NULL for none */
    const char *client_note;   /* a frontend's context for the system note, or NULL */
    const json_t *history;     /* array of messages, oldest first (borrowed) */
    size_t keep_from;          /* history index never dropped from (the run's user message) */
    const json_t *notes;       /* array of strings, or NULL */
    int64_t context_tokens;    /* the prompt estimate to stay under */
    int64_t reserved_tokens;   /* estimate of what else is sent (the tool list) */
} context_params;

/* Returns a new array of messages; *est_tokens gets the estimate of the
 * messages plus reserved_tokens. */
json_t *context_build(const context_params *p, int64_t *est_tokens);

/* The token estimate (core/tokens.h) of a JSON value's compact encoding. */
int64_t context_estimate_tokens(const json_t *v);

/* "step 3 of 10, 95 s, 12 tool calls left": the step being called (a
 * retried call keeps its step number), and what is left of seconds and tool
 * calls; unlimited dimensions are left out ("step 3"). Returns a new
 * string. */
char *context_budget_note(const budget *b, int64_t step, int64_t now_ms);

/* Message constructors in OpenAI form; each returns a new object. */
json_t *context_user(const char *content);
/* text may be NULL or "" (content null); tool_calls may be NULL. */
json_t *context_assistant(const char *text, const json_t *tool_calls);
/* Cuts content to CONTEXT_TOOL_RESULT_MAX bytes at a character boundary,
 * saying so at the end. */
json_t *context_tool(const char *tool_call_id, const char *content, size_t len);

/*
 * Makes a history valid for the API in place: every tool call of an
 * assistant message gets a tool result (a missing one is added right after
 * the results that exist, saying the call was not executed), and tool
 * results that answer no call are removed. Returns the number of changes.
 */
size_t context_repair(json_t *history);

#endif
