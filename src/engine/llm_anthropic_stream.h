/*
 * llm_anthropic_stream: the pure half of the Anthropic Messages client
 * (docs/runs.md, Providers). It reads the event stream of POST /messages one
 * SSE data payload at a time (message_start, content_block_start,
 * content_block_delta, content_block_stop, message_delta, message_stop,
 * ping, error) and accumulates the turn with the limits of llm_stream.h; it
 * builds the request body from the OpenAI-form request the run hands every
 * provider, and reads error bodies. No sockets, no clock.
 */
#ifndef CHATPLANE_LLM_ANTHROPIC_STREAM_H
#define CHATPLANE_LLM_ANTHROPIC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/llm.h"
#include "engine/llm_stream.h"

/* max_tokens when the budget leaves completion tokens unlimited: the API
 * requires the field. */
#define LLM_ANTHROPIC_DEFAULT_MAX_TOKENS 4096
/* Content blocks of one message; later ones fail the turn. */
#define LLM_ANTHROPIC_MAX_BLOCKS 1024

typedef struct llm_anthropic_stream llm_anthropic_stream;

/* Returns a new stream; on_text may be NULL. Caller frees. */
llm_anthropic_stream *llm_anthropic_stream_new(llm_stream_text_cb on_text, void *ud);
void llm_anthropic_stream_free(llm_anthropic_stream *s);

/*
 * Reads one SSE data payload (the event name is repeated in its "type").
 * Empty payloads, ping and unknown event types are ignored; text and
 * tool_use blocks are kept, other block kinds (thinking) skipped.
 * message_stop ends the stream (LLM_STREAM_DONE); an error event fails it,
 * retryable for overloaded_error, api_error, rate_limit_error and
 * timeout_error, not for the others. Returns the state afterwards.
 */
int llm_anthropic_stream_feed(llm_anthropic_stream *s, const char *data, size_t len);
int llm_anthropic_stream_state(const llm_anthropic_stream *s);

/* True when message_stop came, or a message_delta with a stop_reason, and
 * the stream has not failed. */
bool llm_anthropic_stream_turn_complete(const llm_anthropic_stream *s);

/*
 * Ends the stream and writes the outcome into r, as llm_stream_finish does:
 * stop_reason end_turn and stop_sequence become finish_reason "stop",
 * tool_use "tool_calls", max_tokens "length"; prompt_tokens is the sum of
 * input_tokens and the cache token counts of message_start (or of
 * message_delta when it carries them), completion_tokens the last
 * output_tokens. A tool_use block whose input never came in fragments gets
 * the input of its content_block_start when that is a non-empty object, else
 * "{}".
 */
void llm_anthropic_stream_finish(llm_anthropic_stream *s, llm_result *r);

/*
 * Overwrites r with the failure of a non-200 response, with the message of
 * {"type": "error", "error": {"type", "message"}} (or what
 * llm_stream_http_error reads) and error_code the error's type. 429
 * (unless insufficient_quota) and 5xx but 501 and 505 (529
 * overloaded_error included) are retryable; every other status is not.
 */
void llm_anthropic_stream_http_error(llm_result *r, int status, const char *url, const char *body,
                                     size_t len, int64_t retry_after_ms);

/*
 * Builds the request body from the OpenAI-form request: model, max_tokens
 * (req->max_completion_tokens, else LLM_ANTHROPIC_DEFAULT_MAX_TOKENS),
 * system (every system message joined by blank lines; absent when none),
 * messages, tools ({"name", "description", "input_schema"}; only when
 * req->tools is a non-empty array) and stream true. Assistant tool calls
 * become tool_use blocks (arguments that are not a JSON object become {}),
 * tool results become tool_result blocks of a user message, messages of
 * the same role in a row are merged, empty texts are left out, and a
 * conversation that would start with the assistant gets a first user
 * message saying that earlier turns were left out. Returns a new string
 * and its length in *len.
 */
char *llm_anthropic_stream_request_body(const char *model, const llm_request *req, size_t *len);

#endif
