/*
 * llm_stream: the pure half of the OpenAI-compatible client (docs/runs.md,
 * The model endpoint). It reads the chat.completion.chunk stream one SSE data payload
 * at a time and accumulates the turn; it parses and classifies error
 * responses, reads Retry-After headers and builds the request body. No
 * sockets, no clock: the transport (llm_openai.c) feeds it and passes the
 * time in.
 */
#ifndef CHATPLANE_LLM_STREAM_H
#define CHATPLANE_LLM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/llm.h"

/* Limits of one turn; going past one fails the call, not retryable (but
 * see LLM_STREAM_MAX_CALLS). */
#define LLM_STREAM_MAX_TEXT ((size_t)4 << 20) /* assistant text */
#define LLM_STREAM_MAX_ARGS ((size_t)1 << 20) /* arguments of one tool call */
/* Tool calls kept of one turn; later ones are dropped and counted in
 * llm_result.dropped_calls, the turn does not fail. */
#define LLM_STREAM_MAX_CALLS 128
#define LLM_STREAM_MAX_NAME  1024 /* a tool call's id or name */
/* Longest upstream error text kept in a message (a body that is not JSON
 * contributes its first 200 bytes). */
#define LLM_STREAM_MAX_UPSTREAM_MSG 1000
#define LLM_STREAM_MAX_RAW_BODY     200
/* Retry-After values are capped at this many milliseconds. */
#define LLM_STREAM_MAX_RETRY_AFTER_MS 60000

/* What llm_stream_feed returns, and llm_stream_state tells. */
#define LLM_STREAM_MORE   0    /* go on feeding */
#define LLM_STREAM_DONE   1    /* [DONE] was read; later payloads are ignored */
#define LLM_STREAM_FAILED (-1) /* the stream failed; later payloads are ignored */

typedef struct llm_stream llm_stream;

/* Called with each non-empty piece of assistant text as it arrives. */
typedef void (*llm_stream_text_cb)(void *ud, const char *text, size_t len);

/* Returns a new stream; on_text may be NULL. Caller frees with llm_stream_free. */
llm_stream *llm_stream_new(llm_stream_text_cb on_text, void *ud);
void llm_stream_free(llm_stream *s);

/*
 * Reads one SSE data payload: a chat.completion.chunk object, an error
 * object, or the text "[DONE]". Empty payloads are ignored. Returns the
 * stream's state afterwards (LLM_STREAM_MORE, _DONE or _FAILED).
 */
int llm_stream_feed(llm_stream *s, const char *data, size_t len);
int llm_stream_state(const llm_stream *s);

/*
 * True when the turn is complete: [DONE] was read, or a finish_reason was
 * and the stream has not failed. A body that ends (or stalls) after that
 * still gives the turn, with its usage if it came.
 */
bool llm_stream_turn_complete(const llm_stream *s);

/*
 * Ends the stream at the end of the body and writes the outcome into r:
 * the turn (ok; also when the body ended without [DONE] after a
 * finish_reason), the failure that stopped the stream, or a retryable
 * failure when neither [DONE] nor a finish_reason came. A chunk holding a
 * NUL byte (raw or as \u0000) fails the turn, not retryable. Tool calls that never got an id get
 * one made up ("call_<n>", n their position, unique in the turn); calls whose arguments never came
 * get "{}". A turn with tool calls is a tool turn whatever its finish_reason says. r is
 * overwritten; the caller releases it with llm_result_cleanup. The stream must not be fed
 * afterwards.
 */
void llm_stream_finish(llm_stream *s, llm_result *r);

/*
 * Appends at most max bytes of upstream text to out as one clean line:
 * known secrets masked, control characters turned into single spaces, the
 * ends trimmed, invalid UTF-8 bytes replaced by '?', no character cut in
 * half. Shared with the Anthropic stream (llm_anthropic_stream.h).
 */
struct buf;
void llm_stream_append_clean(struct buf *out, const char *raw, size_t raw_len, size_t max);

/*
 * Overwrites r with a failure whose message is formatted like printf.
 * code may be NULL; retry_after_ms is set to -1.
 */
void llm_stream_fail(llm_result *r, bool retryable, int http_status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Overwrites r with the failure of a non-200 response: the upstream message
 * from {"error":{"message","type","param","code"}} (or {"error":"text"},
 * {"message":…}, {"detail":"text"}), else the first 200 bytes of the body,
 * with control characters and invalid UTF-8 replaced. The message reads
 * "HTTP 401 from <url>: <upstream message>". Classification: 429 is
 * retryable unless its code or type is insufficient_quota; 5xx except 501
 * and 505 are retryable; everything else is not.
 */
void llm_stream_http_error(llm_result *r, int status, const char *url, const char *body, size_t len,
                           int64_t retry_after_ms);

/*
 * The wait the server asked for, in milliseconds, from the values of the
 * retry-after-ms header (milliseconds, possibly fractional) and of the
 * Retry-After header (seconds, possibly fractional, or an HTTP date, read
 * against now_ms, the Unix time in milliseconds). Either may be NULL. The
 * first that parses wins, in that order; fractions round up; a date in the
 * past gives 0; the result is capped at LLM_STREAM_MAX_RETRY_AFTER_MS.
 * Returns -1 when neither parses.
 */
int64_t llm_stream_retry_after_ms(const char *retry_after_ms, const char *retry_after,
                                  int64_t now_ms);

/*
 * Builds the request body, compact, fields in this order: model, messages,
 * tools and tool_choice "auto" (only when req->tools is a non-empty array),
 * stream true, stream_options {"include_usage": true}, and
 * max_completion_tokens when it is >= 0. Returns a new string (caller frees)
 * and its length in *len.
 */
char *llm_stream_request_body(const char *model, const llm_request *req, size_t *len);

/*
 * Reads the answer of GET {base_url}/models, {"data": [{"id": …}, …]}.
 * Returns the id of the only model listed (a new string, caller frees), or
 * NULL with err saying what the list holds instead: "lists no models",
 * "lists 3 models (a, b, c)" (at most five names, each cleaned and cut to
 * LLM_STREAM_MODEL_NAME_SHOWN bytes), "lists one model whose id cannot be used (…)" (longer than
 * LLM_STREAM_MAX_NAME or holding a control character) or "answered with
 * something that is not a model list".
 */
#define LLM_STREAM_MAX_MODEL_NAMES  512
#define LLM_STREAM_MODEL_NAME_SHOWN 40
/* An err of this size holds every message whole (five names of
 * LLM_STREAM_MODEL_NAME_SHOWN bytes and the words around them), so none is
 * cut inside a character. */
#define LLM_STREAM_MODELS_ERR_MAX 256
char *llm_stream_only_model(const char *body, size_t len, char *err, size_t errlen);

#endif
