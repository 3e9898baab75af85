/*
 * llm_stream: reading the chat.completion.chunk stream, error bodies and
 * Retry-After headers of an OpenAI-compatible server, and writing its
 * request body. Pure: the transport hands bytes and the time in.
 *
 * The accumulation is lenient about what servers that speak the API do
 * differently (docs/runs.md, The model endpoint): Ollama's whole calls with a repeated
 * role, vLLM's missing or empty ids, calls sent whole at the end, usage in
 * any chunk. It is strict about size: every buffer is capped and going past
 * a cap fails the call with a message naming the limit.
 */
#include "engine/llm_stream.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/civil.h"
#include "core/jsonw.h"
#include "core/textchunk.h"
#include "lib/buf.h"
#include "lib/redact.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

/* One tool call being accumulated. index is the wire index, -1 when the
 * server sent none. */
typedef struct stream__call {
    int64_t index;
    buf id;
    buf name;
    buf args;
} stream__call;

struct llm_stream {
    llm_stream_text_cb on_text;
    void *ud;
    int state;
    buf text;
    stream__call *calls;
    size_t ncalls;
    size_t calls_alloc;
    /* Calls past LLM_STREAM_MAX_CALLS: counted, not kept. While dropping,
     * fragments that continue the latest dropped call (drop_index, its wire
     * index or -1) are ignored rather than appended to a kept call. */
    size_t dropped_calls;
    bool dropping;
    int64_t drop_index;
    char *finish_reason;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    /* The failure, once state is LLM_STREAM_FAILED. */
    bool fail_retryable;
    char *fail_code;
    char *fail_message;
    /* The shape of the answer's plain chunks, so that each after the first
     * has only its text scanned (core/textchunk). */
    textchunk_memo memo;
};

llm_stream *llm_stream_new(llm_stream_text_cb on_text, void *ud)
{
    llm_stream *s = xcalloc(1, sizeof *s);
    s->on_text = on_text;
    s->ud = ud;
    s->state = LLM_STREAM_MORE;
    buf_init(&s->text, LLM_STREAM_MAX_TEXT);
    s->prompt_tokens = -1;
    s->completion_tokens = -1;
    s->drop_index = -1;
    return s;
}

static void llm_stream__free_calls(llm_stream *s)
{
    for (size_t i = 0; i < s->ncalls; i++) {
        buf_cleanup(&s->calls[i].id);
        buf_cleanup(&s->calls[i].name);
        buf_cleanup(&s->calls[i].args);
    }
    free(s->calls);
    s->calls = NULL;
    s->ncalls = s->calls_alloc = 0;
}

void llm_stream_free(llm_stream *s)
{
    if (!s) return;
    buf_cleanup(&s->text);
    llm_stream__free_calls(s);
    free(s->finish_reason);
    free(s->fail_code);
    free(s->fail_message);
    free(s);
}

int llm_stream_state(const llm_stream *s)
{
    return s->state;
}

/* A formatted message of at most cap bytes, cut at a character boundary
 * when it is longer (a message that does not fit is cut, not lost).
 * Returns a new string. */
static char *llm_stream__vformat(size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static char *llm_stream__vformat(size_t cap, const char *fmt, va_list ap)
{
    char *m = xmalloc(cap + 1);
    int n = vsnprintf(m, cap + 1, fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap;
    m[utf8_cut(m, len, cap)] = '\0';
    return m;
}

/* Marks the stream failed with a formatted message; the first failure wins. */
static int llm_stream__fail(llm_stream *s, bool retryable, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int llm_stream__fail(llm_stream *s, bool retryable, const char *code, const char *fmt, ...)
{
    if (s->state == LLM_STREAM_FAILED) return s->state;
    va_list ap;
    va_start(ap, fmt);
    s->fail_message = llm_stream__vformat(4096, fmt, ap);
    va_end(ap);
    s->state = LLM_STREAM_FAILED;
    s->fail_retryable = retryable;
    s->fail_code = code ? xstrdup(code) : NULL;
    return s->state;
}

/* ---- text sanitising shared by the error paths ---- */

/*
 * Appends at most max bytes of text to out as one clean line: known secrets
 * masked (lib/redact.h), control characters become spaces, runs of spaces
 * shrink to one, the ends are trimmed, invalid UTF-8 bytes become '?', and
 * a character is never cut in half. The result can go into a JSON string
 * and a log line as it is. Secrets are masked first, on the whole text: a
 * secret cut by the length limit would no longer match whole.
 */
void llm_stream_append_clean(buf *out, const char *raw, size_t raw_len, size_t max)
{
    size_t len;
    char *text = redact_string(raw, raw_len, &len);
    const unsigned char *p = (const unsigned char *)text;
    size_t start = out->len;
    size_t i = 0;
    bool space = true; /* pending trim at the start */

    while (i < len) {
        size_t n = utf8_seq(text + i, len - i);
        if (n == 0) {
            if (out->len - start + 1 > max) break;
            buf_append_char(out, '?');
            space = false;
            i++;
            continue;
        }
        if (n == 1 && (p[i] < 0x20 || p[i] == 0x7F || p[i] == ' ')) {
            if (!space) {
                if (out->len - start + 1 > max) break;
                buf_append_char(out, ' ');
            }
            space = true;
            i++;
            continue;
        }
        if (out->len - start + n > max) break;
        buf_append(out, p + i, n);
        space = false;
        i += n;
    }
    while (out->len > start && out->data[out->len - 1] == ' ') out->len--;
    if (out->data) out->data[out->len] = '\0';
    free(text);
}

/* ---- the chunk stream ---- */

/* A string member that is present and non-empty, else NULL: servers send ""
 * where they mean "absent" (vLLM's later ids). */
static const char *llm_stream__nonempty(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0) return NULL;
    return json_string_value(v);
}

/*
 * Starts a call, or drops it when the turn already holds
 * LLM_STREAM_MAX_CALLS: the turn goes on with the calls kept (the engine
 * runs what the budget allows of them) and the result counts the dropped
 * ones (starts: the delta names an id or a function, as the first delta
 * of a call does). Returns NULL for a dropped call.
 */
static stream__call *llm_stream__new_call(llm_stream *s, int64_t index, bool starts)
{
    if (s->ncalls == LLM_STREAM_MAX_CALLS) {
        /* Only a delta that names an id or a function begins a call;
         * counting the others would count fragments. */
        if (starts) s->dropped_calls++;
        s->dropping = true;
        s->drop_index = index;
        return NULL;
    }
    s->dropping = false;
    if (s->ncalls == s->calls_alloc) {
        s->calls_alloc = s->calls_alloc ? s->calls_alloc * 2 : 4;
        s->calls = xrealloc(s->calls, s->calls_alloc * sizeof *s->calls);
    }
    stream__call *c = &s->calls[s->ncalls++];
    c->index = index;
    buf_init(&c->id, LLM_STREAM_MAX_NAME);
    buf_init(&c->name, LLM_STREAM_MAX_NAME);
    buf_init(&c->args, LLM_STREAM_MAX_ARGS);
    return c;
}

/*
 * Finds the call a tool_calls delta continues, or starts a new one.
 *
 * With an index: the latest call with that index, unless the delta carries
 * an id or a function name different from that call's (Ollama numbers each
 * whole call 0 in its own chunk; an id or name that changes means a new
 * call). Without an index: a
 * delta that names an id or a function starts a new call unless it repeats
 * the current call's id or the current call has no name yet; anything else
 * continues the last call.
 */
static stream__call *llm_stream__find_call(llm_stream *s, int64_t index, const char *id,
                                           const char *name)
{
    stream__call *last = s->ncalls ? &s->calls[s->ncalls - 1] : NULL;

    /* A fragment of the call being dropped: neither a new call nor a part
     * of a kept one. */
    if (s->dropping && !id && !name && index == s->drop_index) return NULL;
    if (index >= 0) {
        for (size_t i = s->ncalls; i-- > 0;) {
            stream__call *c = &s->calls[i];
            if (c->index != index) continue;
            if (id && c->id.len && strcmp(c->id.data, id) != 0) break;
            if (!id && name && c->name.len && strcmp(c->name.data, name) != 0) break;
            return c;
        }
        return llm_stream__new_call(s, index, id || name);
    }
    if (last && last->index < 0) {
        if (id && last->id.len) {
            if (strcmp(last->id.data, id) == 0) return last;
        } else if (!id && (!name || last->name.len == 0)) {
            return last;
        } else if (id && last->id.len == 0 && last->name.len == 0) {
            return last;
        }
    }
    if (!last || id || name) return llm_stream__new_call(s, -1, id || name);
    return last;
}

/* Reads one element of delta.tool_calls. Returns the stream state. */
static int llm_stream__tool_delta(llm_stream *s, const json_t *tc)
{
    if (!json_is_object(tc)) return s->state;
    const json_t *jindex = json_object_get(tc, "index");
    int64_t index = json_is_integer(jindex) && json_integer_value(jindex) >= 0
                        ? (int64_t)json_integer_value(jindex)
                        : -1;
    const char *id = llm_stream__nonempty(tc, "id");
    const json_t *fn = json_object_get(tc, "function");
    const char *name = json_is_object(fn) ? llm_stream__nonempty(fn, "name") : NULL;
    const json_t *jargs = json_is_object(fn) ? json_object_get(fn, "arguments") : NULL;

    stream__call *c = llm_stream__find_call(s, index, id, name);
    if (!c) return s->state;
    size_t pos = (size_t)(c - s->calls);

    if (id && c->id.len == 0 && buf_append(&c->id, id, strlen(id)) != 0)
        return llm_stream__fail(s, false, NULL, "the id of tool call %zu exceeded %d bytes", pos,
                                LLM_STREAM_MAX_NAME);
    if (name && c->name.len == 0 && buf_append(&c->name, name, strlen(name)) != 0)
        return llm_stream__fail(s, false, NULL, "the name of tool call %zu exceeded %d bytes", pos,
                                LLM_STREAM_MAX_NAME);

    int rc = 0;
    if (json_is_string(jargs)) {
        rc = buf_append(&c->args, json_string_value(jargs), json_string_length(jargs));
    } else if (json_is_object(jargs) || json_is_array(jargs)) {
        /* Some servers send the arguments as the object itself. */
        char *dump = json_dumps(jargs, JSON_COMPACT | JSON_ENCODE_ANY);
        rc = dump ? buf_append(&c->args, dump, strlen(dump)) : 0;
        free(dump);
    }
    if (rc != 0)
        return llm_stream__fail(s, false, NULL,
                                "the arguments of tool call %zu (%s) exceeded 1 MiB", pos,
                                c->name.len ? c->name.data : "unnamed");
    return s->state;
}

/* Reads choices[0]: text, tool call deltas and the finish reason. */
static int llm_stream__choice(llm_stream *s, const json_t *choice)
{
    const json_t *delta = json_object_get(choice, "delta");
    /* A few servers put the last piece in "message" rather than "delta". */
    if (!json_is_object(delta)) delta = json_object_get(choice, "message");

    if (json_is_object(delta)) {
        const json_t *content = json_object_get(delta, "content");
        if (json_is_string(content) && json_string_length(content) > 0) {
            const char *t = json_string_value(content);
            size_t n = json_string_length(content);
            if (buf_append(&s->text, t, n) != 0)
                return llm_stream__fail(s, false, NULL, "the model's text exceeded 4 MiB");
            if (s->on_text) s->on_text(s->ud, t, n);
        }
        const json_t *tcs = json_object_get(delta, "tool_calls");
        size_t i;
        const json_t *tc;
        if (json_is_array(tcs)) {
            json_array_foreach(tcs, i, tc)
            {
                if (llm_stream__tool_delta(s, tc) != LLM_STREAM_MORE) return s->state;
            }
        }
    }
    const char *fr = llm_stream__nonempty(choice, "finish_reason");
    if (fr) {
        free(s->finish_reason);
        s->finish_reason = xstrdup(fr);
    }
    return s->state;
}

/* Takes the token counts of a usage object; absent counts stay as they were. */
static void llm_stream__usage(llm_stream *s, const json_t *usage)
{
    const json_t *p = json_object_get(usage, "prompt_tokens");
    const json_t *c = json_object_get(usage, "completion_tokens");
    if (json_is_integer(p) && json_integer_value(p) >= 0) s->prompt_tokens = json_integer_value(p);
    if (json_is_integer(c) && json_integer_value(c) >= 0)
        s->completion_tokens = json_integer_value(c);
}

/*
 * Reads an error object sent inside a 200 stream: {"error": {...}},
 * {"error": "text"}, or vLLM's {"object": "error", "message": ...}.
 * Returns true when the chunk was one.
 */
static bool llm_stream__in_stream_error(llm_stream *s, const json_t *chunk)
{
    const json_t *err = json_object_get(chunk, "error");
    const json_t *obj = json_object_get(chunk, "object");
    const char *msg = NULL;
    const char *code = NULL;
    char codebuf[32];

    if (json_is_object(err)) {
        msg = llm_stream__nonempty(err, "message");
        code = llm_stream__nonempty(err, "code");
        const json_t *jcode = json_object_get(err, "code");
        if (json_is_integer(jcode)) {
            snprintf(codebuf, sizeof codebuf, "%lld", (long long)json_integer_value(jcode));
            code = codebuf;
        }
    } else if (json_is_string(err)) {
        msg = json_string_value(err);
    } else if (json_is_string(obj) && strcmp(json_string_value(obj), "error") == 0) {
        msg = llm_stream__nonempty(chunk, "message");
    } else {
        return false;
    }
    buf m;
    buf_init(&m, LLM_STREAM_MAX_UPSTREAM_MSG);
    if (msg) llm_stream_append_clean(&m, msg, strlen(msg), LLM_STREAM_MAX_UPSTREAM_MSG);
    llm_stream__fail(s, true, code, "the model stream carried an error: %s",
                     m.len ? m.data : "no message");
    buf_cleanup(&m);
    return true;
}

/* True when the payload is "[DONE]", allowing surrounding white space. */
static bool llm_stream__is_done(const char *data, size_t len)
{
    while (len && isspace((unsigned char)data[0])) data++, len--;
    while (len && isspace((unsigned char)data[len - 1])) len--;
    return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}

/*
 * Reads one SSE data payload. Chunks whose choices hold no entry for index
 * 0 still count for their usage; unknown fields are ignored throughout.
 */
int llm_stream_feed(llm_stream *s, const char *data, size_t len)
{
    if (s->state != LLM_STREAM_MORE) return s->state;
    if (len == 0) return s->state;
    if (llm_stream__is_done(data, len)) {
        s->state = LLM_STREAM_DONE;
        return s->state;
    }
    /* A NUL byte is never part of a chunk (JSON has no raw control
     * characters): the server sends something else than the protocol, and
     * asking again would get the same, so the turn fails for good. */
    const char *nul = memchr(data, '\0', len);
    if (nul)
        return llm_stream__fail(s, false, NULL,
                                "the model stream sent a chunk with a NUL byte (at byte %zu)",
                                (size_t)(nul - data));

    /* The plain text chunk, nearly every chunk of a reply, is read without
     * building a tree (core/textchunk); everything else in full below. */
    size_t before = s->text.len;
    textchunk_end end;
    int fast = textchunk_read_memo(data, len, &s->text, &end, &s->memo);
    if (fast == BUF_TOOBIG)
        return llm_stream__fail(s, false, NULL, "the model's text exceeded 4 MiB");
    if (fast == 1) {
        if (s->text.len > before && s->on_text)
            s->on_text(s->ud, s->text.data + before, s->text.len - before);
        /* As llm_stream__choice and llm_stream__usage take them. */
        if (end.finish_reason[0]) {
            free(s->finish_reason);
            s->finish_reason = xstrdup(end.finish_reason);
        }
        if (s->state == LLM_STREAM_MORE) {
            if (end.prompt_tokens >= 0) s->prompt_tokens = end.prompt_tokens;
            if (end.completion_tokens >= 0) s->completion_tokens = end.completion_tokens;
        }
        return s->state;
    }

    json_error_t jerr;
    json_t *chunk = json_loadb(data, len, 0, &jerr);
    if (!chunk && json_error_code(&jerr) == json_error_null_character)
        return llm_stream__fail(s, false, NULL,
                                "the model stream sent a chunk with a NUL character (\\u0000)");
    if (!chunk) {
        /* jansson quotes the offending input, which may be any bytes. */
        buf why;
        buf_init(&why, sizeof jerr.text);
        llm_stream_append_clean(&why, jerr.text, strlen(jerr.text), sizeof jerr.text);
        llm_stream__fail(s, true, NULL,
                         "the model stream sent a chunk that is not JSON (%s at byte %d)",
                         why.data ? why.data : "", jerr.position);
        buf_cleanup(&why);
        return s->state;
    }
    if (!json_is_object(chunk)) {
        json_decref(chunk);
        return llm_stream__fail(s, true, NULL,
                                "the model stream sent a chunk that is not an object");
    }
    if (llm_stream__in_stream_error(s, chunk)) {
        json_decref(chunk);
        return s->state;
    }

    const json_t *choices = json_object_get(chunk, "choices");
    size_t i;
    const json_t *choice;
    if (json_is_array(choices)) {
        json_array_foreach(choices, i, choice)
        {
            if (!json_is_object(choice)) continue;
            const json_t *ci = json_object_get(choice, "index");
            if (ci && !(json_is_integer(ci) && json_integer_value(ci) == 0)) continue;
            if (llm_stream__choice(s, choice) != LLM_STREAM_MORE) break;
        }
    }
    const json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage) && s->state == LLM_STREAM_MORE) llm_stream__usage(s, usage);
    json_decref(chunk);
    return s->state;
}

void llm_stream_fail(llm_result *r, bool retryable, int http_status, const char *code,
                     const char *fmt, ...)
{
    va_list ap;
    memset(r, 0, sizeof *r);
    va_start(ap, fmt);
    r->error_message = llm_stream__vformat(8192, fmt, ap);
    va_end(ap);
    r->ok = false;
    r->retryable = retryable;
    r->http_status = http_status;
    r->error_code = code ? xstrdup(code) : NULL;
    r->prompt_tokens = r->completion_tokens = -1;
    r->retry_after_ms = -1;
}

/* True when id is taken in the turn: by a call already moved into r (those
 * before i) or by one still to come (those after i). */
static bool llm_stream__id_taken(const llm_stream *s, const llm_result *r, size_t i, const char *id)
{
    for (size_t k = 0; k < i; k++) {
        if (strcmp(r->calls[k].id, id) == 0) return true;
    }
    for (size_t k = i + 1; k < s->ncalls; k++) {
        if (s->calls[k].id.len && strcmp(s->calls[k].id.data, id) == 0) return true;
    }
    return false;
}

/*
 * Moves the accumulated calls into the result, making up the ids the
 * server never sent and replacing one it sent twice (tool results are
 * matched to calls by id, so ids must be unique in a turn). Fails when a call never got a function
 * name: nothing could run it.
 */
static int llm_stream__take_calls(llm_stream *s, llm_result *r)
{
    for (size_t i = 0; i < s->ncalls; i++) {
        if (s->calls[i].name.len == 0) {
            llm_stream__fail(s, false, NULL, "the model sent tool call %zu without a function name",
                             i);
            return -1;
        }
    }
    if (s->ncalls == 0) return 0;
    r->calls = xcalloc(s->ncalls, sizeof *r->calls);
    r->ncalls = s->ncalls;
    for (size_t i = 0; i < s->ncalls; i++) {
        stream__call *c = &s->calls[i];
        bool dup = false;
        for (size_t k = 0; k < i && c->id.len; k++) {
            if (strcmp(r->calls[k].id, c->id.data) == 0) dup = true;
        }
        if (c->id.len == 0 || dup) {
            char id[48];
            size_t n = i;
            do snprintf(id, sizeof id, "call_%zu", n++);
            while (llm_stream__id_taken(s, r, i, id));
            buf_reset(&c->id);
            /* "call_" and a number fit any name's cap. */
            if (buf_append_str(&c->id, id) != 0) abort();
        }
        if (c->args.len == 0 && buf_append_str(&c->args, "{}") != 0) abort();
        r->calls[i].id = buf_detach(&c->id, NULL);
        r->calls[i].name = buf_detach(&c->name, NULL);
        r->calls[i].arguments = buf_detach(&c->args, NULL);
    }
    return 0;
}

bool llm_stream_turn_complete(const llm_stream *s)
{
    return s->state == LLM_STREAM_DONE || (s->state == LLM_STREAM_MORE && s->finish_reason);
}

void llm_stream_finish(llm_stream *s, llm_result *r)
{
    memset(r, 0, sizeof *r);
    /* A finish reason ends the turn: a server that then closes without
     * [DONE] (or without the usage chunk) sent a complete answer. */
    if (s->state == LLM_STREAM_MORE && s->finish_reason) s->state = LLM_STREAM_DONE;
    if (s->state == LLM_STREAM_MORE)
        llm_stream__fail(s, true, NULL, "the model stream ended before [DONE]");
    if (s->state == LLM_STREAM_DONE && llm_stream__take_calls(s, r) != 0) llm_result_cleanup(r);
    if (s->state == LLM_STREAM_FAILED) {
        llm_stream_fail(r, s->fail_retryable, 0, s->fail_code, "%s", s->fail_message);
        return;
    }
    r->ok = true;
    r->text = buf_detach(&s->text, &r->text_len);
    r->finish_reason = s->finish_reason;
    s->finish_reason = NULL;
    r->prompt_tokens = s->prompt_tokens;
    r->completion_tokens = s->completion_tokens;
    r->dropped_calls = s->dropped_calls;
    r->retry_after_ms = -1;
}

/* ---- error responses ---- */

/*
 * Finds the upstream message and code in an error body. Writes the cleaned
 * message to out and returns the code (a new string) or NULL. *quota tells
 * whether the code or the type says insufficient_quota (servers differ in
 * which one carries it).
 */
static char *llm_stream__error_body(const char *body, size_t len, buf *out, bool *quota)
{
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = NULL;
    char *code = NULL;

    *quota = false;
    if (json_is_object(root)) {
        const json_t *err = json_object_get(root, "error");
        if (json_is_object(err)) {
            msg = llm_stream__nonempty(err, "message");
            const json_t *jcode = json_object_get(err, "code");
            const char *type = llm_stream__nonempty(err, "type");
            if (json_is_string(jcode) && json_string_length(jcode))
                code = xstrdup(json_string_value(jcode));
            else if (json_is_integer(jcode))
                code = xasprintf("%lld", (long long)json_integer_value(jcode));
            *quota = (code && strcmp(code, "insufficient_quota") == 0) ||
                     (type && strcmp(type, "insufficient_quota") == 0);
        } else if (json_is_string(err)) {
            msg = json_string_value(err);
        }
        if (!msg) msg = llm_stream__nonempty(root, "message");
        if (!msg) msg = llm_stream__nonempty(root, "detail");
    }
    if (msg)
        llm_stream_append_clean(out, msg, strlen(msg), LLM_STREAM_MAX_UPSTREAM_MSG);
    else
        llm_stream_append_clean(out, body, len, LLM_STREAM_MAX_RAW_BODY);
    json_decref(root);
    return code;
}

void llm_stream_http_error(llm_result *r, int status, const char *url, const char *body, size_t len,
                           int64_t retry_after_ms)
{
    buf msg;
    bool quota;
    bool retryable;

    buf_init(&msg, LLM_STREAM_MAX_UPSTREAM_MSG);
    char *code = llm_stream__error_body(body ? body : "", body ? len : 0, &msg, &quota);
    if (status == 429)
        retryable = !quota;
    else
        retryable = status >= 500 && status <= 599 && status != 501 && status != 505;
    if (msg.len)
        llm_stream_fail(r, retryable, status, code, "HTTP %d from %s: %s", status, url, msg.data);
    else
        llm_stream_fail(r, retryable, status, code, "HTTP %d from %s", status, url);
    r->retry_after_ms = retry_after_ms;
    free(code);
    buf_cleanup(&msg);
}

/* ---- Retry-After ---- */

/* Parses digits with an optional fraction ("1", "1.5", ".5"), white space
 * around allowed; returns the value times unit_ms rounded up and capped, or
 * -1. Done by hand rather than with strtod so that no locale, exponent,
 * sign, "inf" or hex form slips through. */
static int64_t llm_stream__number_ms(const char *s, int64_t unit_ms)
{
    const char *p = s;
    bool digits = false;
    int64_t whole = 0;    /* the integer part, saturated */
    int64_t frac_num = 0; /* the fraction as frac_num / frac_den */
    int64_t frac_den = 1;
    bool beyond = false; /* a non-zero digit past the ninth of the fraction */

    while (*p == ' ' || *p == '\t') p++;
    for (; isdigit((unsigned char)*p); p++) {
        digits = true;
        if (whole < LLM_STREAM_MAX_RETRY_AFTER_MS) whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            digits = true;
            if (frac_den < 1000000000) {
                frac_num = frac_num * 10 + (*p - '0');
                frac_den *= 10;
            } else if (*p != '0') {
                beyond = true;
            }
        }
    }
    while (*p == ' ' || *p == '\t') p++;
    if (!digits || *p != '\0') return -1;
    if (whole >= LLM_STREAM_MAX_RETRY_AFTER_MS) return LLM_STREAM_MAX_RETRY_AFTER_MS;
    /* Rounding up: past the ninth digit the value exceeds frac_num/frac_den,
     * so the ceiling is the floor plus one. */
    int64_t part =
        beyond ? frac_num * unit_ms / frac_den + 1 : (frac_num * unit_ms + frac_den - 1) / frac_den;
    int64_t ms = whole * unit_ms + part;
    return ms > LLM_STREAM_MAX_RETRY_AFTER_MS ? LLM_STREAM_MAX_RETRY_AFTER_MS : ms;
}

static int llm_stream__month(const char *mon)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++) {
        if (strncmp(mon, names + i * 3, 3) == 0 && mon[3] == '\0') return i + 1;
    }
    return 0;
}

/*
 * Parses an HTTP date in any of the three forms RFC 9110 asks recipients to
 * accept: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday,
 * 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994". Writes
 * Unix milliseconds and returns 0, or -1.
 */
static int llm_stream__http_date_ms(const char *s, int64_t *out)
{
    char mon[4] = "";
    int d = 0, y = 0, hh = 0, mm = 0, ss = 0, n = 0;

    if (sscanf(s, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &d, mon, &y, &hh, &mm, &ss,
               &n) == 6 &&
        n > 0) {
    } else if (sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &d, mon, &y, &hh, &mm,
                      &ss, &n) == 6 &&
               n > 0) {
        y += y < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", mon, &d, &hh, &mm, &ss, &y,
                      &n) == 6 &&
               n > 0) {
    } else {
        return -1;
    }
    while (s[n] == ' ' || s[n] == '\t') n++;
    int m = llm_stream__month(mon);
    if (s[n] != '\0' || m == 0 || d < 1 || d > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || y < 1970)
        return -1;
    int64_t days = civil_days_from(y, m, d);
    *out = ((days * 24 + hh) * 60 + mm) * 60000 + (int64_t)ss * 1000;
    return 0;
}

int64_t llm_stream_retry_after_ms(const char *retry_after_ms, const char *retry_after,
                                  int64_t now_ms)
{
    int64_t v;

    if (retry_after_ms && (v = llm_stream__number_ms(retry_after_ms, 1)) >= 0) return v;
    if (!retry_after) return -1;
    if ((v = llm_stream__number_ms(retry_after, 1000)) >= 0) return v;

    int64_t at;
    if (llm_stream__http_date_ms(retry_after, &at) != 0) return -1;
    v = at - now_ms;
    if (v < 0) return 0;
    return v > LLM_STREAM_MAX_RETRY_AFTER_MS ? LLM_STREAM_MAX_RETRY_AFTER_MS : v;
}

/* ---- the model list ---- */

_Static_assert(5 * (LLM_STREAM_MODEL_NAME_SHOWN + 2) <= LLM_STREAM_MAX_MODEL_NAMES,
               "five shown names fit the list of names");

/* True when a model id can be used as it is: at most LLM_STREAM_MAX_NAME
 * bytes, no control character. */
static bool llm_stream__plain_name(const char *id)
{
    size_t n = strlen(id);
    if (n > LLM_STREAM_MAX_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7F) return false;
    }
    return true;
}

char *llm_stream_only_model(const char *body, size_t len, char *err, size_t errlen)
{
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *data = json_object_get(root, "data");
    char *only = NULL;
    buf names;
    size_t n = 0, i;
    const json_t *m;

    buf_init(&names, LLM_STREAM_MAX_MODEL_NAMES);
    if (!json_is_array(data)) {
        snprintf(err, errlen, "answered with something that is not a model list");
        goto out;
    }
    /* The ids listed, as far as they are strings; others are not models. */
    json_array_foreach(data, i, m)
    {
        const char *id = llm_stream__nonempty(m, "id");
        if (!id) continue;
        if (n == 0) only = xstrdup(id);
        if (n < 5) {
            buf name;
            buf_init(&name, LLM_STREAM_MAX_NAME);
            llm_stream_append_clean(&name, id, strlen(id), LLM_STREAM_MODEL_NAME_SHOWN);
            /* Five names of LLM_STREAM_MODEL_NAME_SHOWN bytes fit the cap. */
            int rc = buf_printf(&names, "%s%s", n ? ", " : "", name.data ? name.data : "");
            assert(rc == 0);
            (void)rc;
            buf_cleanup(&name);
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "lists no models");
    } else if (n == 1 && !llm_stream__plain_name(only)) {
        /* The name goes into requests and the start-up log as it is. */
        snprintf(err, errlen, "lists one model whose id cannot be used (%s)", names.data);
        free(only);
        only = NULL;
    } else if (n > 1) {
        snprintf(err, errlen, "lists %zu models (%s%s)", n, names.data, n > 5 ? ", …" : "");
        free(only);
        only = NULL;
    }
out:
    buf_cleanup(&names);
    json_decref(root);
    return only;
}

/* ---- the request ---- */

char *llm_stream_request_body(const char *model, const llm_request *req, size_t *len)
{
    json_t *o = json_object();
    json_t *opts = json_object();

    /* The request borrows the caller's arrays: a reference is taken for the
     * lifetime of o instead of copying a long history. */
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "messages",
                        req->messages ? json_incref((json_t *)req->messages) : json_array());
    bool tools = req->tools && json_array_size(req->tools) > 0;
    /* Tools given as text go in between the two halves of the object as
     * they are: the same bytes, without writing the list again for every
     * request (it was two thirds of a request's text: docs/benchmarks.md,
     * fix 72). */
    json_t *rest = tools && req->tools_text ? json_object() : o;
    if (tools) {
        if (rest == o) json_object_set(o, "tools", (json_t *)req->tools);
        json_object_set_new(rest, "tool_choice", json_string("auto"));
    }
    json_object_set_new(rest, "stream", json_true());
    json_object_set_new(opts, "include_usage", json_true());
    json_object_set_new(rest, "stream_options", opts);
    if (req->max_completion_tokens >= 0)
        json_object_set_new(rest, "max_completion_tokens",
                            json_integer((json_int_t)req->max_completion_tokens));
    char *body = jsonw_dumps(o, JSON_COMPACT);
    if (rest != o) {
        char *tail = body ? jsonw_dumps(rest, JSON_COMPACT) : NULL;
        /* {"model":…,"messages":[…]} and {"tool_choice":…} become
         * {"model":…,"messages":[…],"tools":TEXT,"tool_choice":…}. */
        if (tail) {
            size_t head_len = strlen(body), tools_len = strlen(req->tools_text);
            size_t tail_len = strlen(tail);
            char *whole = xmalloc(head_len + tools_len + tail_len + 10);
            size_t at = head_len - 1;
            memcpy(whole, body, at);
            memcpy(whole + at, ",\"tools\":", 9);
            at += 9;
            memcpy(whole + at, req->tools_text, tools_len);
            at += tools_len;
            whole[at++] = ',';
            memcpy(whole + at, tail + 1, tail_len); /* with its '}' and '\0' */
            free(body);
            body = whole;
        } else {
            free(body);
            body = NULL;
        }
        free(tail);
        json_decref(rest);
    }
    json_decref(o);
    if (!body) body = xstrdup("{}"); /* only when a value cannot be encoded */
    *len = strlen(body);
    return body;
}
