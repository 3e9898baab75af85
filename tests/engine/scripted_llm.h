/*
 * scripted_llm: a model provider for tests, driven by a script the test
 * gives. Each model call takes the next step of the script: it streams the
 * step's text pieces (one per loop iteration, on a zero timer, so nothing
 * arrives inside llm_call_start), then ends as the step says: a turn with
 * text, tool calls and usage, a retryable or fatal error, or never (a
 * stall, until the caller aborts it). A held step waits after its pieces
 * until the test releases it, so a test can act while a call is in flight.
 *
 * It records what it was sent (the messages, whether tools were offered,
 * max_completion_tokens) so tests can assert the context of every call.
 * A call past the end of the script fails the test through a fatal error
 * whose message says so.
 */
#ifndef CHATPLANE_TEST_SCRIPTED_LLM_H
#define CHATPLANE_TEST_SCRIPTED_LLM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/llm.h"

struct event_base;

#define SCRIPTED_PIECES_MAX 8
#define SCRIPTED_CALLS_MAX  4

typedef enum scripted_end {
    SCRIPTED_TURN,      /* a finished turn (the default) */
    SCRIPTED_RETRYABLE, /* a retryable failure after the pieces */
    SCRIPTED_FATAL,     /* a failure that is not retried */
    SCRIPTED_STALL      /* never ends; only an abort stops it */
} scripted_end;

typedef struct scripted_tool_call {
    const char *id, *name, *arguments;
} scripted_tool_call;

/* One model call. Strings are borrowed and must outlive the provider. */
typedef struct scripted_step {
    scripted_end end;
    const char *pieces[SCRIPTED_PIECES_MAX];      /* streamed in order; NULL ends */
    scripted_tool_call calls[SCRIPTED_CALLS_MAX]; /* name NULL ends */
    bool usage; /* report the tokens below; otherwise both are -1 (not reported) */
    int64_t prompt_tokens, completion_tokens;
    const char *error;      /* the error message of a failure */
    int http_status;        /* of a failure: 0 for 503 (retryable) or 400 (fatal) */
    const char *error_code; /* of a failure: the provider's code, or NULL */
    int64_t retry_after_ms; /* of a retryable failure: 0 retries at once */
    bool hold;              /* wait after the pieces until scripted_llm_release */
} scripted_step;

/* What one call was sent. */
typedef struct scripted_request {
    json_t *messages; /* a copy; owned by the provider */
    bool tools;       /* a tool list was offered */
    size_t ntools;
    int64_t max_completion_tokens;
    bool aborted;       /* the caller aborted the call */
    int64_t started_ms; /* clock_mono_ms() when the call started */
} scripted_request;

typedef struct scripted_llm scripted_llm;

/* A provider on base that plays steps[0..n) (copied). Its llm is
 * scripted_llm_base; free it with llm_free on that. */
scripted_llm *scripted_llm_new(struct event_base *base, const scripted_step *steps, size_t n);
llm *scripted_llm_base(scripted_llm *s);

/* Calls started so far, and what call i was sent. */
size_t scripted_llm_calls(const scripted_llm *s);
const scripted_request *scripted_llm_request(const scripted_llm *s, size_t i);

/* True while a call has streamed its pieces and waits (held or stalled). */
bool scripted_llm_waiting(const scripted_llm *s);
/* Ends the held wait of the call in flight, which then ends as its step
 * says. */
void scripted_llm_release(scripted_llm *s);

/* Sets a function called right after each call's on_done returns, inside
 * the same loop callback, so that a test acts before anything else on the
 * loop runs (the caller's reaction to the end of the call is then as far
 * as on_done took it). */
void scripted_llm_after_done(scripted_llm *s, void (*fn)(void *ud), void *ud);

/* The number of calls still in flight (started, neither done nor aborted). */
size_t scripted_llm_in_flight(const scripted_llm *s);

#endif
