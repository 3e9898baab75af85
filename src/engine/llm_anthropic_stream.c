/*
 * llm_anthropic_stream: reading the event stream and the error bodies of
 * Anthropic's Messages API and writing its request body. Pure: the
 * transport (llm_openai.c) hands the SSE payloads in.
 *
 * A message arrives as numbered content blocks. Text blocks stream their
 * text in text_delta events; tool_use blocks name the call in
 * content_block_start and stream its input as input_json_delta fragments
 * that only form JSON once joined. Every buffer has the cap of
 * llm_stream.h, and going past one fails the turn naming the limit.
 */
#include "engine/llm_anthropic_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"

/* One content block as it arrives. */
typedef struct astream__block {
    int64_t index; /* the block's index on the wire */
    bool tool;     /* a tool_use block; otherwise a text block */
    bool streamed; /* input fragments arrived */
    buf id, name, args;
    char *start_input; /* the input of content_block_start, compact JSON, or NULL */
} astream__block;

struct llm_anthropic_stream {
    llm_stream_text_cb on_text;
    void *ud;
    int state;
    buf text;
    astream__block *blocks; /* tool_use blocks in order */
    size_t nblocks, blocks_alloc;
    size_t seen_blocks; /* every block started, kept or not */
    size_t dropped_calls;
    char *stop_reason;
    int64_t input_tokens, cache_tokens, output_tokens;
    bool fail_retryable;
    char *fail_code, *fail_message;
};

llm_anthropic_stream *llm_anthropic_stream_new(llm_stream_text_cb on_text, void *ud)
{
    llm_anthropic_stream *s = xcalloc(1, sizeof *s);
    s->on_text = on_text;
    s->ud = ud;
    s->state = LLM_STREAM_MORE;
    buf_init(&s->text, LLM_STREAM_MAX_TEXT);
    s->input_tokens = s->output_tokens = -1;
    return s;
}

static void llm_anthropic_stream__free_blocks(llm_anthropic_stream *s)
{
    for (size_t i = 0; i < s->nblocks; i++) {
        buf_cleanup(&s->blocks[i].id);
        buf_cleanup(&s->blocks[i].name);
        buf_cleanup(&s->blocks[i].args);
        free(s->blocks[i].start_input);
    }
    free(s->blocks);
    s->blocks = NULL;
    s->nblocks = s->blocks_alloc = 0;
}

void llm_anthropic_stream_free(llm_anthropic_stream *s)
{
    if (!s) return;
    buf_cleanup(&s->text);
    llm_anthropic_stream__free_blocks(s);
    free(s->stop_reason);
    free(s->fail_code);
    free(s->fail_message);
    free(s);
}

int llm_anthropic_stream_state(const llm_anthropic_stream *s)
{
    return s->state;
}

bool llm_anthropic_stream_turn_complete(const llm_anthropic_stream *s)
{
    return s->state == LLM_STREAM_DONE || (s->state == LLM_STREAM_MORE && s->stop_reason);
}

/* Marks the stream failed; the first failure wins. message is cleaned by
 * the caller. */
static int llm_anthropic_stream__fail(llm_anthropic_stream *s, bool retryable, const char *code,
                                      const char *message)
{
    if (s->state == LLM_STREAM_FAILED) return s->state;
    s->state = LLM_STREAM_FAILED;
    s->fail_retryable = retryable;
    s->fail_code = code ? xstrdup(code) : NULL;
    s->fail_message = xstrdup(message);
    return s->state;
}

/* A non-empty string member, or NULL. */
static const char *llm_anthropic_stream__str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

/* A non-negative integer member, or -1. */
static int64_t llm_anthropic_stream__count(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

/* Reads a usage object of message_start or message_delta: each count it
 * carries replaces the one known. */
static void llm_anthropic_stream__usage(llm_anthropic_stream *s, const json_t *usage)
{
    if (!json_is_object(usage)) return;
    int64_t in = llm_anthropic_stream__count(usage, "input_tokens");
    int64_t out = llm_anthropic_stream__count(usage, "output_tokens");
    int64_t cc = llm_anthropic_stream__count(usage, "cache_creation_input_tokens");
    int64_t cr = llm_anthropic_stream__count(usage, "cache_read_input_tokens");
    if (in >= 0) s->input_tokens = in;
    if (cc >= 0 || cr >= 0) s->cache_tokens = (cc > 0 ? cc : 0) + (cr > 0 ? cr : 0);
    if (out >= 0) s->output_tokens = out;
}

/* The tool_use block with this wire index, or NULL (a text block, a
 * skipped kind, or one dropped past the limit). */
static astream__block *llm_anthropic_stream__block(llm_anthropic_stream *s, int64_t index)
{
    for (size_t i = s->nblocks; i-- > 0;)
        if (s->blocks[i].index == index) return &s->blocks[i];
    return NULL;
}

/* Appends a string to a capped buffer; fails the turn past the cap. */
static int llm_anthropic_stream__append(llm_anthropic_stream *s, buf *b, const char *what,
                                        const char *text, size_t len)
{
    if (buf_append(b, text, len) == 0) return s->state;
    char m[128];
    snprintf(m, sizeof m, "the model's %s exceeded %zu bytes", what, b->cap);
    return llm_anthropic_stream__fail(s, false, NULL, m);
}

static int llm_anthropic_stream__block_start(llm_anthropic_stream *s, const json_t *ev)
{
    const json_t *cb = json_object_get(ev, "content_block");
    const char *type = llm_anthropic_stream__str(cb, "type");
    int64_t index = llm_anthropic_stream__count(ev, "index");
    if (++s->seen_blocks > LLM_ANTHROPIC_MAX_BLOCKS)
        return llm_anthropic_stream__fail(s, false, NULL,
                                          "the model sent more than 1024 content blocks");
    if (!type) return s->state;
    if (strcmp(type, "text") == 0) {
        const char *t = llm_anthropic_stream__str(cb, "text");
        size_t before = s->text.len;
        if (t && llm_anthropic_stream__append(s, &s->text, "text", t, strlen(t)) != LLM_STREAM_MORE)
            return s->state;
        if (s->text.len > before && s->on_text)
            s->on_text(s->ud, s->text.data + before, s->text.len - before);
        return s->state;
    }
    if (strcmp(type, "tool_use") != 0) return s->state;
    if (s->nblocks == LLM_STREAM_MAX_CALLS) {
        s->dropped_calls++;
        return s->state;
    }
    if (s->nblocks == s->blocks_alloc) {
        s->blocks_alloc = s->blocks_alloc ? s->blocks_alloc * 2 : 4;
        s->blocks = xrealloc(s->blocks, s->blocks_alloc * sizeof *s->blocks);
    }
    astream__block *b = &s->blocks[s->nblocks++];
    memset(b, 0, sizeof *b);
    b->index = index;
    b->tool = true;
    buf_init(&b->id, LLM_STREAM_MAX_NAME);
    buf_init(&b->name, LLM_STREAM_MAX_NAME);
    buf_init(&b->args, LLM_STREAM_MAX_ARGS);
    const char *id = llm_anthropic_stream__str(cb, "id");
    const char *name = llm_anthropic_stream__str(cb, "name");
    if (id && llm_anthropic_stream__append(s, &b->id, "tool call id", id, strlen(id)) != 0)
        return s->state;
    if (name && llm_anthropic_stream__append(s, &b->name, "tool name", name, strlen(name)) != 0)
        return s->state;
    const json_t *input = json_object_get(cb, "input");
    if (json_is_object(input) && json_object_size(input) > 0)
        b->start_input = json_dumps(input, JSON_COMPACT);
    return s->state;
}

static int llm_anthropic_stream__block_delta(llm_anthropic_stream *s, const json_t *ev)
{
    const json_t *d = json_object_get(ev, "delta");
    const char *type = llm_anthropic_stream__str(d, "type");
    if (!type) return s->state;
    if (strcmp(type, "text_delta") == 0) {
        const json_t *t = json_object_get(d, "text");
        if (!json_is_string(t) || json_string_length(t) == 0) return s->state;
        size_t before = s->text.len;
        if (llm_anthropic_stream__append(s, &s->text, "text", json_string_value(t),
                                         json_string_length(t)) != LLM_STREAM_MORE)
            return s->state;
        if (s->on_text) s->on_text(s->ud, s->text.data + before, s->text.len - before);
        return s->state;
    }
    if (strcmp(type, "input_json_delta") == 0) {
        astream__block *b =
            llm_anthropic_stream__block(s, llm_anthropic_stream__count(ev, "index"));
        const json_t *p = json_object_get(d, "partial_json");
        if (!b || !json_is_string(p)) return s->state;
        b->streamed = true;
        return llm_anthropic_stream__append(s, &b->args, "arguments of one tool call",
                                            json_string_value(p), json_string_length(p));
    }
    return s->state; /* thinking_delta, signature_delta, citations_delta */
}

/* An error event: {"type": "error", "error": {"type", "message"}}. */
static int llm_anthropic_stream__error_event(llm_anthropic_stream *s, const json_t *ev)
{
    const json_t *err = json_object_get(ev, "error");
    const char *type = llm_anthropic_stream__str(err, "type");
    const char *msg = llm_anthropic_stream__str(err, "message");
    bool retryable =
        type && (strcmp(type, "overloaded_error") == 0 || strcmp(type, "api_error") == 0 ||
                 strcmp(type, "rate_limit_error") == 0 || strcmp(type, "timeout_error") == 0);
    buf m;
    buf_init(&m, LLM_STREAM_MAX_UPSTREAM_MSG + 64);
    buf_append_str(&m, "the model stream carried an error: ");
    size_t head = m.len;
    if (msg) llm_stream_append_clean(&m, msg, strlen(msg), LLM_STREAM_MAX_UPSTREAM_MSG);
    if (m.len == head) buf_append_str(&m, "no message");
    char code[64] = "";
    if (type) {
        buf c;
        buf_init(&c, sizeof code - 1);
        llm_stream_append_clean(&c, type, strlen(type), sizeof code - 1);
        if (c.data) snprintf(code, sizeof code, "%s", c.data);
        buf_cleanup(&c);
    }
    llm_anthropic_stream__fail(s, retryable, code[0] ? code : NULL, m.data);
    buf_cleanup(&m);
    return s->state;
}

int llm_anthropic_stream_feed(llm_anthropic_stream *s, const char *data, size_t len)
{
    if (s->state != LLM_STREAM_MORE || len == 0) return s->state;
    if (memchr(data, '\0', len))
        return llm_anthropic_stream__fail(s, false, NULL,
                                          "the model stream sent an event with a NUL byte");
    json_error_t jerr;
    json_t *ev = json_loadb(data, len, 0, &jerr);
    if (!ev && json_error_code(&jerr) == json_error_null_character)
        return llm_anthropic_stream__fail(s, false, NULL,
                                          "the model stream sent an event with a NUL character");
    if (!json_is_object(ev)) {
        json_decref(ev);
        return llm_anthropic_stream__fail(
            s, true, NULL, "the model stream sent an event that is not a JSON object");
    }
    const char *type = llm_anthropic_stream__str(ev, "type");
    if (!type) {
        /* Ignored like an unknown event type. */
    } else if (strcmp(type, "message_start") == 0) {
        llm_anthropic_stream__usage(s, json_object_get(json_object_get(ev, "message"), "usage"));
    } else if (strcmp(type, "content_block_start") == 0) {
        llm_anthropic_stream__block_start(s, ev);
    } else if (strcmp(type, "content_block_delta") == 0) {
        llm_anthropic_stream__block_delta(s, ev);
    } else if (strcmp(type, "message_delta") == 0) {
        const char *stop = llm_anthropic_stream__str(json_object_get(ev, "delta"), "stop_reason");
        if (stop && strlen(stop) < 64) {
            free(s->stop_reason);
            s->stop_reason = xstrdup(stop);
        }
        llm_anthropic_stream__usage(s, json_object_get(ev, "usage"));
    } else if (strcmp(type, "message_stop") == 0) {
        s->state = LLM_STREAM_DONE;
    } else if (strcmp(type, "error") == 0) {
        llm_anthropic_stream__error_event(s, ev);
    }
    json_decref(ev);
    return s->state;
}

/* OpenAI's name for a stop reason, so the run reads one vocabulary. */
static char *llm_anthropic_stream__finish_reason(const char *stop)
{
    if (!stop) return NULL;
    if (strcmp(stop, "end_turn") == 0 || strcmp(stop, "stop_sequence") == 0) return xstrdup("stop");
    if (strcmp(stop, "tool_use") == 0) return xstrdup("tool_calls");
    if (strcmp(stop, "max_tokens") == 0) return xstrdup("length");
    return xstrdup(stop);
}

/* Moves the tool_use blocks into r; fails when one has no name or id. */
static int llm_anthropic_stream__take_calls(llm_anthropic_stream *s, llm_result *r)
{
    for (size_t i = 0; i < s->nblocks; i++) {
        if (s->blocks[i].name.len == 0 || s->blocks[i].id.len == 0) {
            char m[96];
            snprintf(m, sizeof m, "the model sent tool call %zu without a %s", i,
                     s->blocks[i].name.len == 0 ? "name" : "id");
            llm_anthropic_stream__fail(s, false, NULL, m);
            return -1;
        }
    }
    if (s->nblocks == 0) return 0;
    r->calls = xcalloc(s->nblocks, sizeof *r->calls);
    r->ncalls = s->nblocks;
    for (size_t i = 0; i < s->nblocks; i++) {
        astream__block *b = &s->blocks[i];
        r->calls[i].id = buf_detach(&b->id, NULL);
        r->calls[i].name = buf_detach(&b->name, NULL);
        if (b->args.len)
            r->calls[i].arguments = buf_detach(&b->args, NULL);
        else
            r->calls[i].arguments = xstrdup(b->start_input ? b->start_input : "{}");
    }
    return 0;
}

void llm_anthropic_stream_finish(llm_anthropic_stream *s, llm_result *r)
{
    memset(r, 0, sizeof *r);
    if (s->state == LLM_STREAM_MORE && s->stop_reason) s->state = LLM_STREAM_DONE;
    if (s->state == LLM_STREAM_MORE)
        llm_anthropic_stream__fail(s, true, NULL, "the model stream ended before message_stop");
    if (s->state == LLM_STREAM_DONE && llm_anthropic_stream__take_calls(s, r) != 0)
        llm_result_cleanup(r);
    if (s->state == LLM_STREAM_FAILED) {
        llm_stream_fail(r, s->fail_retryable, 0, s->fail_code, "%s", s->fail_message);
        return;
    }
    r->ok = true;
    r->text = buf_detach(&s->text, &r->text_len);
    r->finish_reason = llm_anthropic_stream__finish_reason(s->stop_reason);
    r->prompt_tokens = s->input_tokens >= 0 ? s->input_tokens + s->cache_tokens : -1;
    r->completion_tokens = s->output_tokens;
    r->dropped_calls = s->dropped_calls;
    r->retry_after_ms = -1;
}

void llm_anthropic_stream_http_error(llm_result *r, int status, const char *url, const char *body,
                                     size_t len, int64_t retry_after_ms)
{
    /* The classification is the OpenAI client's: 429 (unless its type
     * says insufficient_quota) and 5xx but 501 and 505, 529
     * overloaded_error among them, are retryable. */
    llm_stream_http_error(r, status, url, body, len, retry_after_ms);
    if (r->error_code || !body || !len) return;
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *type = llm_anthropic_stream__str(json_object_get(root, "error"), "type");
    if (type && strlen(type) < 64 && strspn(type, "abcdefghijklmnopqrstuvwxyz_") == strlen(type))
        r->error_code = xstrdup(type);
    json_decref(root);
}

/* ---- the request ---- */

/* Appends a block to the last message when it has role, else starts a
 * message of that role. */
static void llm_anthropic_stream__push(json_t *messages, const char *role, json_t *block)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *lr = last ? json_string_value(json_object_get(last, "role")) : NULL;
    if (lr && strcmp(lr, role) == 0) {
        json_array_append_new(json_object_get(last, "content"), block);
        return;
    }
    json_t *content = json_array();
    json_array_append_new(content, block);
    json_array_append_new(messages, json_pack("{s:s, s:o}", "role", role, "content", content));
}

static json_t *llm_anthropic_stream__text_block(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

/* The tool_use blocks of an assistant message's OpenAI-form tool calls. */
static void llm_anthropic_stream__tool_uses(json_t *messages, const json_t *calls)
{
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const json_t *fn = json_object_get(c, "function");
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_t *input = args ? json_loads(args, 0, NULL) : NULL;
        if (!json_is_object(input)) {
            json_decref(input);
            input = json_object();
        }
        llm_anthropic_stream__push(messages, "assistant",
                                   json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                             id ? id : "", "name", name ? name : "", "input",
                                             input));
    }
}

/* Converts the OpenAI-form messages; system texts are joined into sys. */
static json_t *llm_anthropic_stream__messages(const json_t *in, buf *sys)
{
    json_t *out = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(in, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role) continue;
        if (strcmp(role, "system") == 0) {
            if (!content || !*content) continue;
            if (sys->len) buf_append_str(sys, "\n\n");
            buf_append_str(sys, content);
        } else if (strcmp(role, "user") == 0) {
            if (content && *content)
                llm_anthropic_stream__push(out, "user", llm_anthropic_stream__text_block(content));
        } else if (strcmp(role, "assistant") == 0) {
            if (content && *content)
                llm_anthropic_stream__push(out, "assistant",
                                           llm_anthropic_stream__text_block(content));
            llm_anthropic_stream__tool_uses(out, json_object_get(m, "tool_calls"));
        } else if (strcmp(role, "tool") == 0) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            llm_anthropic_stream__push(out, "user",
                                       json_pack("{s:s, s:s, s:s}", "type", "tool_result",
                                                 "tool_use_id", id ? id : "", "content",
                                                 content ? content : ""));
        }
    }
    const json_t *first = json_array_get(out, 0);
    const char *fr = first ? json_string_value(json_object_get(first, "role")) : NULL;
    if (!fr || strcmp(fr, "user") != 0) {
        json_t *content = json_array();
        json_array_append_new(content,
                              llm_anthropic_stream__text_block("(Earlier turns were left out.)"));
        json_array_insert_new(out, 0, json_pack("{s:s, s:o}", "role", "user", "content", content));
    }
    return out;
}

/* The tools in Anthropic's form. */
static json_t *llm_anthropic_stream__tools(const json_t *tools)
{
    json_t *out = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name) continue;
        json_t *o = json_pack("{s:s}", "name", name);
        const char *desc = json_string_value(json_object_get(fn, "description"));
        if (desc && *desc) json_object_set_new(o, "description", json_string(desc));
        const json_t *params = json_object_get(fn, "parameters");
        json_object_set_new(o, "input_schema",
                            json_is_object(params) ? json_deep_copy(params)
                                                   : json_pack("{s:s}", "type", "object"));
        json_array_append_new(out, o);
    }
    return out;
}

char *llm_anthropic_stream_request_body(const char *model, const llm_request *req, size_t *len)
{
    json_t *o = json_object();
    buf sys;
    buf_init(&sys, (size_t)64 << 20); /* bounded by the request the run built */
    json_t *messages = llm_anthropic_stream__messages(req->messages, &sys);
    int64_t max = req->max_completion_tokens >= 0 ? req->max_completion_tokens
                                                  : LLM_ANTHROPIC_DEFAULT_MAX_TOKENS;
    if (max < 1) max = 1;
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "max_tokens", json_integer((json_int_t)max));
    if (sys.len) json_object_set_new(o, "system", json_stringn(sys.data, sys.len));
    json_object_set_new(o, "messages", messages);
    if (req->tools && json_array_size(req->tools) > 0)
        json_object_set_new(o, "tools", llm_anthropic_stream__tools(req->tools));
    json_object_set_new(o, "stream", json_true());
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    buf_cleanup(&sys);
    if (!body) body = xstrdup("{}");
    *len = strlen(body);
    return body;
}
