/*
 * llm_repair: recognising a context overflow in the words of the usual
 * providers, and choosing the turns a condensed prompt leaves out. Pure.
 */
#include "engine/llm_repair.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/context.h"
#include "lib/xmalloc.h"

/* The phrases that name an overflow, lower case. */
static const char *const llm_repair__phrases[] = {
    "prompt is too long",
    "maximum context length",
    "exceeds the available context size",
    "please reduce the length",
};

/* Case-insensitive strstr for ASCII phrases; returns where it starts. */
static const char *llm_repair__find(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0) return p;
    return NULL;
}

/* Reads a whole number with optional thousands separators at p; returns
 * it (or -1) and sets *end past it. */
static int64_t llm_repair__number(const char *p, const char **end)
{
    int64_t v = 0;
    int digits = 0;
    while (*p &&
           (isdigit((unsigned char)*p) || (*p == ',' && digits && isdigit((unsigned char)p[1])))) {
        if (*p != ',') {
            if (v > INT64_MAX / 10 - 10) return -1;
            v = v * 10 + (*p - '0');
            digits++;
        }
        p++;
    }
    *end = p;
    return digits ? v : -1;
}

/* The number that follows the phrase, skipping at most a few words
 * ("is", "(", "of"); -1 when none is near. */
static int64_t llm_repair__after(const char *text, const char *phrase)
{
    const char *p = llm_repair__find(text, phrase);
    if (!p) return -1;
    p += strlen(phrase);
    for (int i = 0; i < 24 && *p; i++, p++) {
        if (isdigit((unsigned char)*p)) {
            const char *end;
            return llm_repair__number(p, &end);
        }
        if (*p == '.' || *p == ';') break;
    }
    return -1;
}

/* The number right before the phrase ("8192 tokens > ..."); -1 if none. */
static int64_t llm_repair__before(const char *text, const char *phrase)
{
    const char *p = llm_repair__find(text, phrase);
    if (!p) return -1;
    const char *q = p;
    while (q > text && q[-1] == ' ') q--;
    const char *s = q;
    while (s > text && (isdigit((unsigned char)s[-1]) || s[-1] == ',')) s--;
    if (s == q) return -1;
    const char *end;
    int64_t v = llm_repair__number(s, &end);
    return end == q ? v : -1;
}

/* Fills the numbers the message states, in each provider's wording. */
static void llm_repair__numbers(const char *m, llm_overflow *o)
{
    /* Anthropic: "prompt is too long: 210000 tokens > 200000 maximum". */
    const char *gt = llm_repair__find(m, " tokens > ");
    if (gt) {
        o->prompt_tokens = llm_repair__before(m, " tokens > ");
        const char *end;
        o->window = llm_repair__number(gt + strlen(" tokens > "), &end);
        if (o->prompt_tokens >= 0 && o->window >= 0) return;
    }
    /* OpenAI and vLLM: "maximum context length is 8192 tokens. However, you
     * requested 9000 tokens"; "...your messages resulted in 9000 tokens". */
    if (o->window < 0) o->window = llm_repair__after(m, "maximum context length is");
    if (o->window < 0) o->window = llm_repair__after(m, "maximum context length of");
    if (o->prompt_tokens < 0) o->prompt_tokens = llm_repair__after(m, "you requested");
    if (o->prompt_tokens < 0) o->prompt_tokens = llm_repair__after(m, "resulted in");
    /* llama.cpp: "request (9000 tokens) exceeds the available context size
     * (8192 tokens)". */
    if (o->window < 0) o->window = llm_repair__after(m, "available context size");
    if (o->prompt_tokens < 0) o->prompt_tokens = llm_repair__after(m, "request (");
}

bool llm_repair_is_overflow(int http_status, const char *code, const char *message,
                            llm_overflow *out)
{
    llm_overflow o = {-1, -1};
    bool yes = false;
    if (http_status == 401 || http_status == 403 || http_status == 429) goto out;
    if (code && strcmp(code, "context_length_exceeded") == 0) yes = true;
    for (size_t i = 0;
         !yes && message && i < sizeof llm_repair__phrases / sizeof *llm_repair__phrases; i++)
        if (llm_repair__find(message, llm_repair__phrases[i])) yes = true;
    if (yes && message) llm_repair__numbers(message, &o);
out:
    if (out) *out = o;
    return yes;
}

int64_t llm_repair_target(const llm_overflow *ov, int64_t failed_estimate)
{
    int64_t base = ov && ov->window > 0 ? ov->window : failed_estimate;
    if (base < 0) base = 0;
    return base / 100 * LLM_REPAIR_TARGET_PERCENT + base % 100 * LLM_REPAIR_TARGET_PERCENT / 100;
}

/* The end (exclusive) of the turn starting at i: an assistant message takes
 * the tool results after it; tool results with no call before them form
 * a turn of their own. */
static size_t llm_repair__turn_end(const json_t *h, size_t i)
{
    size_t n = json_array_size(h), j = i + 1;
    const char *role = json_string_value(json_object_get(json_array_get(h, i), "role"));
    bool takes_tools = role && (strcmp(role, "assistant") == 0 || strcmp(role, "tool") == 0);
    while (takes_tools && j < n) {
        const char *r = json_string_value(json_object_get(json_array_get(h, j), "role"));
        if (!r || strcmp(r, "tool") != 0) break;
        j++;
    }
    return j;
}

void llm_repair_condense(json_t *history, size_t *keep_from, int64_t overhead, int64_t target,
                         llm_condense_result *out)
{
    size_t n = json_array_size(history);
    size_t first_user = n;
    int64_t total = overhead;
    int64_t *cost = xcalloc(n ? n : 1, sizeof *cost);
    bool *drop = xcalloc(n ? n : 1, sizeof *drop);

    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(history, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (first_user == n && role && strcmp(role, "user") == 0) first_user = i;
        cost[i] = context_estimate_tokens(m);
        total += cost[i];
    }
    out->messages_before = n;
    out->tokens_before = total;
    for (size_t i = 0; i < n && total > target;) {
        size_t end = llm_repair__turn_end(history, i);
        bool keep = (i <= first_user && first_user < end) || (i <= *keep_from && *keep_from < end);
        if (!keep) {
            for (size_t k = i; k < end; k++) {
                drop[k] = true;
                total -= cost[k];
            }
        }
        i = end;
    }
    size_t kept = 0, new_keep = *keep_from;
    for (size_t i = 0, w = 0; i < n; i++) {
        if (drop[i]) {
            json_array_remove(history, w);
            if (i < *keep_from) new_keep--;
            continue;
        }
        w++;
        kept++;
    }
    *keep_from = new_keep;
    out->messages_after = kept;
    out->tokens_after = total;
    out->reached = total <= target;
    free(drop);
    free(cost);
}

const char *llm_repair_thousands(char out[32], int64_t n)
{
    char digits[24];
    bool neg = n < 0;
    snprintf(digits, sizeof digits, "%llu",
             neg ? (unsigned long long)(-(n + 1)) + 1 : (unsigned long long)n);
    size_t len = strlen(digits), w = 0;
    if (neg) out[w++] = '-';
    for (size_t i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) out[w++] = ',';
        out[w++] = digits[i];
    }
    out[w] = '\0';
    return out;
}
