/*
 * llm: a model provider behind one interface. Two providers implement it:
 * the OpenAI-compatible streaming client (llm_openai.c, libcurl multi on the
 * event loop) and the built-in demo brain (llm_demo.c, timers on the loop).
 *
 * A call streams text through on_text as it arrives and ends with exactly
 * one on_done, unless it was aborted with llm_call_abort, after which no
 * callback runs. Callbacks run on the loop thread. on_done may run before
 * llm_call_start returns only when the request cannot even be sent (then
 * llm_call_start returns NULL after calling it — the caller must be ready).
 */
#ifndef CHATPLANE_LLM_H
#define CHATPLANE_LLM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct llm_request {
    const json_t *messages; /* array of chat messages in OpenAI form (borrowed) */
    const json_t *tools;    /* array of {"type":"function","function":{…}}, or NULL: no tools */
    int64_t max_completion_tokens; /* -1: do not send the field */
} llm_request;

typedef struct llm_tool_call {
    char *id;        /* the model's id, or one made up when it sent none */
    char *name;      /* function name as the model sent it */
    char *arguments; /* raw JSON text as concatenated from the fragments */
} llm_tool_call;

typedef struct llm_result {
    bool ok;
    /* ok: the turn */
    char *text; /* assistant text, all pieces joined ("" for none) */
    size_t text_len;
    llm_tool_call *calls;
    size_t ncalls;
    char *finish_reason;       /* as sent, or NULL */
    int64_t prompt_tokens;     /* as reported, or -1 when not reported */
    int64_t completion_tokens; /* as reported, or -1 */
    size_t dropped_calls;      /* tool calls past LLM_STREAM_MAX_CALLS, not in calls */
    /* !ok: the failure */
    bool retryable;
    int http_status;        /* 0 when there was no HTTP status (connection, time-out) */
    char *error_code;       /* upstream error code ("rate_limit_exceeded"), or NULL */
    char *error_message;    /* what happened, naming the status and the upstream message */
    int64_t retry_after_ms; /* from retry-after-ms or Retry-After, -1 when absent */
} llm_result;

void llm_result_cleanup(llm_result *r);

typedef struct llm_callbacks {
    /* A piece of assistant text as it arrived (not merged). */
    void (*on_text)(void *ud, const char *text, size_t len);
    /* The end of the call. The result is valid during the callback only. */
    void (*on_done)(void *ud, const llm_result *result);
} llm_callbacks;

typedef struct llm llm;
typedef struct llm_call llm_call;

typedef struct llm_ops {
    llm_call *(*start)(llm *p, const llm_request *req, const llm_callbacks *cb, void *ud);
    void (*abort)(llm_call *c);
    void (*free)(llm *p);
} llm_ops;

/* Every provider starts with this. */
struct llm {
    const llm_ops *ops;
    const char *provider; /* "openai" or "demo" */
    const char *model;    /* the model name shown in /api/info */
};

llm_call *llm_call_start(llm *p, const llm_request *req, const llm_callbacks *cb, void *ud);
/* Aborts a call in flight; no callback runs afterwards. */
void llm_call_abort(llm *p, llm_call *c);
void llm_free(llm *p);

/* The OpenAI-compatible client. base_url has no trailing /chat/completions;
 * api_key may be NULL. */
llm *llm_openai_new(struct event_base *base, const char *base_url, const char *api_key,
                    const char *model);
/* How long a streaming call may go without a byte before it fails as a
 * retryable stall (default 30 s); tests shorten it. */
void llm_openai_set_stall_timeout_ms(llm *p, int64_t ms);

/*
 * Asks GET {base_url}/models (blocking, at most timeout_ms; for start-up,
 * before the loop runs) which models the endpoint serves. Returns the id of
 * the only one listed (a new string, caller frees), or NULL with err naming
 * the URL (password hidden) and what went wrong: the request failed, the
 * status, no model, or several (named).
 */
char *llm_openai_only_model(const char *base_url, const char *api_key, int64_t timeout_ms,
                            char *err, size_t errlen);

/* The demo brain, streaming a token every delay_ms. */
llm *llm_demo_new(struct event_base *base, int64_t delay_ms);

#endif
