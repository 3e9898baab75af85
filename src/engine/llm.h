/*
 * llm: a model provider behind one interface. Two providers implement it:
 * the streaming HTTP client of the OpenAI-compatible and Anthropic APIs
 * (llm_openai.c, libcurl multi on the event loop) and the built-in demo
 * brain (llm_demo.c, timers on the loop). A chain (llm_chain below) puts
 * several behind names, with the health that decides which one a step uses.
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

#include "core/budget.h"

struct event_base;

typedef struct llm_request {
    const json_t *messages; /* array of chat messages in OpenAI form (borrowed) */
    const json_t *tools;    /* array of {"type":"function","function":{…}}, or NULL: no tools */
    const char *tools_text; /* tools as compact JSON text, or NULL: written from tools */
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
    const char *provider; /* "openai", "anthropic" or "demo" */
    const char *model;    /* the model name shown in /api/info */
};

llm_call *llm_call_start(llm *p, const llm_request *req, const llm_callbacks *cb, void *ud);
/* Aborts a call in flight; no callback runs afterwards. */
void llm_call_abort(llm *p, llm_call *c);
void llm_free(llm *p);

/* The provider kinds of llm.kind. */
typedef enum llm_kind { LLM_KIND_OPENAI, LLM_KIND_ANTHROPIC } llm_kind;

/* anthropic-version when llm.anthropic_version does not say. */
#define LLM_ANTHROPIC_VERSION "2023-06-01"

/* A streaming HTTP provider (docs/config.md, Providers); everything
 * borrowed for the call of llm_http_new only. */
typedef struct llm_http_options {
    llm_kind kind;
    const char *base_url; /* without /chat/completions or /messages */
    const char *api_key;  /* may be NULL; never logged */
    const char *model;
    const json_t *headers;         /* {"Name": "value"} sent with every call, or NULL */
    const char *anthropic_version; /* NULL: LLM_ANTHROPIC_VERSION */
} llm_http_options;

/* The client of an OpenAI-compatible (POST <base_url>/chat/completions,
 * Authorization: Bearer) or Anthropic (POST <base_url>/messages, x-api-key,
 * anthropic-version) endpoint, streaming. */
llm *llm_http_new(struct event_base *base, const llm_http_options *opt);

/* The OpenAI-compatible client with no extra headers. base_url has no
 * trailing /chat/completions; api_key may be NULL. */
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

/*
 * llm_chain: the providers a step may use, in order (the primary, then
 * llm.fallbacks), each under a name, with the health every run of the
 * server shares (docs/runs.md, Providers): a provider whose steps failed
 * LLM_CHAIN_FAILS_TO_OPEN times in a row rests (its circuit is open) for
 * the chain's rest time and is skipped meanwhile; the first step after the
 * rest tries it again, and one more failure sends it back to rest. A
 * chain of one provider never rests it: there is nothing to switch to.
 * Loop thread only.
 */
#define LLM_CHAIN_FAILS_TO_OPEN   3
#define LLM_CHAIN_REST_MS_DEFAULT 60000
/* Longest provider name. */
#define LLM_CHAIN_NAME_MAX 64

typedef struct llm_chain llm_chain;

/* An empty chain whose providers rest rest_ms after failing. */
llm_chain *llm_chain_new(int64_t rest_ms);
/* Frees the chain and the providers it owns. */
void llm_chain_free(llm_chain *c);
/* Appends a provider: the chain takes model (and frees it) when owned.
 * price NULL: the configured llm.price_per_mtok applies to it. */
void llm_chain_add(llm_chain *c, const char *name, llm *model, bool owned,
                   const budget_price *price);
size_t llm_chain_size(const llm_chain *c);
llm *llm_chain_model(const llm_chain *c, size_t i);
const char *llm_chain_name(const llm_chain *c, size_t i);
/* "name/model", as messages carry it. */
const char *llm_chain_label(const llm_chain *c, size_t i);
/* The provider's own price, or NULL. */
const budget_price *llm_chain_price(const llm_chain *c, size_t i);
/* The first provider at index from or later that is not resting at now_ms
 * (monotonic), or -1 when there is none. */
int llm_chain_next(const llm_chain *c, size_t from, int64_t now_ms);
/* True when provider i rests at now_ms. */
bool llm_chain_resting(const llm_chain *c, size_t i, int64_t now_ms);
/* Counts one model request of provider i on /metrics (ok or not). */
void llm_chain_count_request(llm_chain *c, size_t i, bool ok);
/* A step of provider i succeeded: its failures start again from zero. */
void llm_chain_step_ok(llm_chain *c, size_t i, int64_t now_ms);
/* A step of provider i failed (the step moved on or the run stopped);
 * returns true when this opened its circuit. */
bool llm_chain_step_failed(llm_chain *c, size_t i, int64_t now_ms);
/* Registers the providers' figures on /metrics; until then nothing is
 * counted. Call before any thread starts. */
void llm_chain_metrics_register(void);
/* A call of provider i ended by itself (ok or not), for its health window
 * (docs/health.md): now_ms is wall time, first_token_ms -1 when no text
 * came, error the failure's message or NULL. */
struct health_window;
void llm_chain_record(llm_chain *c, size_t i, int64_t now_ms, bool ok, int64_t first_token_ms,
                      const char *error);
/* Provider i's health window of the last five minutes. */
const struct health_window *llm_chain_health(const llm_chain *c, size_t i);

#endif
