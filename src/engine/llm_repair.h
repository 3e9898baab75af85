/*
 * llm_repair: the pure decisions behind the context-overflow repair
 * (docs/runs.md, Repairs): whether a failed model call was a context
 * overflow, with the numbers the error states, and which turns to drop so
 * that the prompt fits again.
 */
#ifndef CHATPLANE_LLM_REPAIR_H
#define CHATPLANE_LLM_REPAIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The share of the window (or of the failed prompt) a condensed prompt may
 * take, in percent. */
#define LLM_REPAIR_TARGET_PERCENT 70
/* Condensations of one step before the run stops. */
#define LLM_REPAIR_MAX_CONDENSE 2

/* What an overflow error says; -1 where it says nothing. */
typedef struct llm_overflow {
    int64_t prompt_tokens; /* N: the prompt's size as the provider counted it */
    int64_t window;        /* M: the model's context window */
} llm_overflow;

/*
 * True when the failure is a context overflow: the code
 * context_length_exceeded, or a message holding (case-insensitively)
 * "prompt is too long" (Anthropic: "prompt is too long: N tokens > M
 * maximum"), "maximum context length" (OpenAI, vLLM, Ollama: "maximum
 * context length is M tokens. However, you requested N tokens"),
 * "exceeds the available context size" (llama.cpp: "request (N tokens)
 * exceeds the available context size (M tokens)") or "please reduce the
 * length". A 401, 403 or 429 is never one. out (may be NULL) gets the
 * numbers found in the message.
 */
bool llm_repair_is_overflow(int http_status, const char *code, const char *message,
                            llm_overflow *out);

/* The estimate a condensed prompt must reach: 70 % of the window when the
 * error stated it, else 70 % of the failed prompt's estimate. */
int64_t llm_repair_target(const llm_overflow *ov, int64_t failed_estimate);

typedef struct llm_condense_result {
    size_t messages_before, messages_after; /* in the history */
    int64_t tokens_before, tokens_after;    /* prompt estimates, overhead included */
    bool reached;                           /* tokens_after <= target */
} llm_condense_result;

/*
 * Drops the oldest turns of history (OpenAI-form messages, oldest first)
 * in place until overhead plus the estimate of what is left is at most
 * target, or nothing more may go. A turn is a message, and an assistant
 * message with tool calls goes together with the tool results that
 * follow it (a call never loses its result, a result never its call).
 * Never dropped: the first user message, the message at *keep_from (the
 * current run's user message) and whatever turn holds them. *keep_from is
 * moved to where that message ends up. overhead is the estimate of
 * everything sent besides the history (system prompt, notes, tools).
 */
void llm_repair_condense(json_t *history, size_t *keep_from, int64_t overhead, int64_t target,
                         llm_condense_result *out);

/* Writes n with thousands separators ("61,000") into out; returns out. */
const char *llm_repair_thousands(char out[32], int64_t n);

#endif
