/*
 * mcp_frame: line reading, message classification and encoding for the MCP
 * stdio client. Pure: see mcp_frame.h.
 */
#include "engine/mcp_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"
#include "lib/xmalloc.h"

/* After a line this large, the reader gives its memory back instead of
 * keeping a multi-megabyte buffer for the short lines that usually follow. */
#define FRAME__KEEP_ALLOC (64 * 1024)

/* ---- line reader ---- */

void mcp_reader_init(mcp_reader *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap;
    buf_init(&r->line, cap);
}

void mcp_reader_cleanup(mcp_reader *r)
{
    buf_cleanup(&r->line);
}

/* Keeps the last MCP_FRAME_SNIFF bytes seen of an over-long line. */
static void mcp_frame__tail_add(mcp_reader *r, const char *p, size_t n)
{
    if (n >= MCP_FRAME_SNIFF) {
        memcpy(r->tail, p + n - MCP_FRAME_SNIFF, MCP_FRAME_SNIFF);
        r->tail_len = MCP_FRAME_SNIFF;
        return;
    }
    if (r->tail_len + n > MCP_FRAME_SNIFF) {
        size_t drop = r->tail_len + n - MCP_FRAME_SNIFF;
        memmove(r->tail, r->tail + drop, r->tail_len - drop);
        r->tail_len -= drop;
    }
    memcpy(r->tail + r->tail_len, p, n);
    r->tail_len += n;
}

static void mcp_frame__head_add(mcp_reader *r, const char *p, size_t n)
{
    size_t room = MCP_FRAME_SNIFF - r->head_len;
    if (n > room) n = room;
    memcpy(r->head + r->head_len, p, n);
    r->head_len += n;
}

/* The line being read turned out longer than the cap: keep its ends, drop
 * the rest, and skip up to the LF. */
static void mcp_frame__start_skipping(mcp_reader *r, const char *p, size_t n)
{
    r->skipping = true;
    r->head_len = r->tail_len = 0;
    mcp_frame__head_add(r, r->line.data ? r->line.data : "", r->line.len);
    mcp_frame__head_add(r, p, n);
    mcp_frame__tail_add(r, r->line.data ? r->line.data : "", r->line.len);
    mcp_frame__tail_add(r, p, n);
    r->skipped = r->line.len + n;
    buf_cleanup(&r->line);
    buf_init(&r->line, r->cap);
}

static int mcp_frame__emit_toobig(mcp_reader *r, mcp_line_fn fn, void *ud)
{
    mcp_line l = {.data = NULL,
                  .len = r->skipped,
                  .toobig = true,
                  .id = mcp_frame_sniff_id(r->head, r->head_len, r->tail, r->tail_len),
                  .head = r->head,
                  .head_len = r->head_len};
    r->skipping = false;
    r->skipped = 0;
    return fn(ud, &l);
}

static int mcp_frame__emit_line(mcp_reader *r, mcp_line_fn fn, void *ud)
{
    buf *b = &r->line;
    if (b->len > 0 && b->data[b->len - 1] == '\r') b->data[--b->len] = '\0';
    int rc = 0;
    if (b->len > 0) {
        mcp_line l = {.data = b->data, .len = b->len, .id = -1};
        rc = fn(ud, &l);
    }
    if (b->alloc > FRAME__KEEP_ALLOC) {
        buf_cleanup(b);
        buf_init(b, r->cap);
    } else {
        buf_reset(b);
    }
    return rc;
}

int mcp_reader_feed(mcp_reader *r, const char *data, size_t len, mcp_line_fn fn, void *ud)
{
    size_t i = 0;
    while (i < len) {
        const char *p = data + i;
        const char *nl = memchr(p, '\n', len - i);
        size_t n = nl ? (size_t)(nl - p) : len - i;
        int rc = 0;
        if (r->skipping) {
            mcp_frame__head_add(r, p, n);
            mcp_frame__tail_add(r, p, n);
            r->skipped += n;
        } else if (r->line.len + n > r->cap || buf_append(&r->line, p, n) != 0) {
            mcp_frame__start_skipping(r, p, n);
        }
        if (!nl) return 0;
        i += n + 1;
        rc = r->skipping ? mcp_frame__emit_toobig(r, fn, ud) : mcp_frame__emit_line(r, fn, ud);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- id sniffing ---- */

static bool mcp_frame__ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool mcp_frame__digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads a non-negative integer of at most 18 digits at s[*i]; it must be
 * followed by a byte that ends a JSON number, so a number cut off by the end
 * of the window is not taken for a shorter one. */
static int64_t mcp_frame__read_id(const char *s, size_t n, size_t *i)
{
    size_t j = *i, start = j;
    int64_t v = 0;
    while (j < n && mcp_frame__digit(s[j]) && j - start < 18) v = v * 10 + (s[j++] - '0');
    if (j == start || j >= n) return -1;
    if (!(mcp_frame__ws(s[j]) || s[j] == ',' || s[j] == '}')) return -1;
    *i = j;
    return v;
}

/* Skips a JSON string starting at s[*i] == '"'; false when it does not end
 * inside the window. */
static bool mcp_frame__skip_string(const char *s, size_t n, size_t *i)
{
    size_t j = *i + 1;
    while (j < n) {
        if (s[j] == '\\') {
            j += 2;
            continue;
        }
        if (s[j] == '"') {
            *i = j + 1;
            return true;
        }
        j++;
    }
    return false;
}

/* Skips one JSON value of any kind; false when it does not end inside the
 * window. Nested values are skipped by counting brackets outside strings. */
static bool mcp_frame__skip_value(const char *s, size_t n, size_t *i)
{
    size_t j = *i;
    if (j >= n) return false;
    if (s[j] == '"') return mcp_frame__skip_string(s, n, i);
    if (s[j] == '{' || s[j] == '[') {
        int depth = 0;
        while (j < n) {
            char c = s[j];
            if (c == '"') {
                if (!mcp_frame__skip_string(s, n, &j)) return false;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') depth--;
            j++;
            if (depth == 0) {
                *i = j;
                return true;
            }
        }
        return false;
    }
    while (j < n && !mcp_frame__ws(s[j]) && s[j] != ',' && s[j] != '}' && s[j] != ']') j++;
    if (j >= n) return false;
    *i = j;
    return true;
}

static size_t mcp_frame__skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && mcp_frame__ws(s[i])) i++;
    return i;
}

/* Reads the top-level members from the front until "id" or the window ends. */
static int64_t mcp_frame__sniff_head(const char *s, size_t n)
{
    size_t i = mcp_frame__skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return -1;
    i++;
    for (;;) {
        i = mcp_frame__skip_ws(s, n, i);
        if (i >= n || s[i] != '"') return -1;
        size_t key = i;
        if (!mcp_frame__skip_string(s, n, &i)) return -1;
        bool is_id = i - key == 4 && memcmp(s + key, "\"id\"", 4) == 0;
        i = mcp_frame__skip_ws(s, n, i);
        if (i >= n || s[i] != ':') return -1;
        i = mcp_frame__skip_ws(s, n, i + 1);
        if (is_id) return mcp_frame__read_id(s, n, &i);
        if (!mcp_frame__skip_value(s, n, &i)) return -1;
        i = mcp_frame__skip_ws(s, n, i);
        if (i >= n || s[i] != ',') return -1;
        i++;
    }
}

static size_t mcp_frame__skip_ws_back(const char *s, size_t j)
{
    while (j > 0 && mcp_frame__ws(s[j - 1])) j--;
    return j;
}

/* Whether s[..j) ends with lit; on success moves j before it. */
static bool mcp_frame__ends_with(const char *s, size_t *j, const char *lit)
{
    size_t n = strlen(lit);
    if (*j < n || memcmp(s + *j - n, lit, n) != 0) return false;
    *j -= n;
    return true;
}

/* Reads the last members from the back: the text must end with the object's
 * closing brace, so a member just before it is a top-level one. An "id" may
 * be last or be followed by "jsonrpc":"2.0", as the reference servers write
 * it. A key is taken only when preceded by ',' or '{', which a quote inside
 * a string never is (it would be escaped). */
static int64_t mcp_frame__sniff_tail(const char *s, size_t n)
{
    size_t j = mcp_frame__skip_ws_back(s, n);
    if (j == 0 || s[j - 1] != '}') return -1;
    j--;
    for (int member = 0; member < 2; member++) {
        j = mcp_frame__skip_ws_back(s, j);
        if (j > 0 && mcp_frame__digit(s[j - 1])) {
            size_t end = j;
            while (j > 0 && mcp_frame__digit(s[j - 1]) && end - j < 18) j--;
            if (j == 0 || mcp_frame__digit(s[j - 1]) || s[j - 1] == '-' || s[j - 1] == '.')
                return -1;
            size_t digits = j;
            j = mcp_frame__skip_ws_back(s, j);
            if (!mcp_frame__ends_with(s, &j, ":")) return -1;
            j = mcp_frame__skip_ws_back(s, j);
            if (!mcp_frame__ends_with(s, &j, "\"id\"")) return -1;
            j = mcp_frame__skip_ws_back(s, j);
            if (j == 0 || (s[j - 1] != ',' && s[j - 1] != '{')) return -1;
            int64_t v = 0;
            for (size_t k = digits; k < end; k++) v = v * 10 + (s[k] - '0');
            return v;
        }
        if (!mcp_frame__ends_with(s, &j, "\"2.0\"")) return -1;
        j = mcp_frame__skip_ws_back(s, j);
        if (!mcp_frame__ends_with(s, &j, ":")) return -1;
        j = mcp_frame__skip_ws_back(s, j);
        if (!mcp_frame__ends_with(s, &j, "\"jsonrpc\"")) return -1;
        j = mcp_frame__skip_ws_back(s, j);
        if (!mcp_frame__ends_with(s, &j, ",")) return -1;
    }
    return -1;
}

int64_t mcp_frame_sniff_id(const char *head, size_t head_len, const char *tail, size_t tail_len)
{
    int64_t id = mcp_frame__sniff_head(head, head_len);
    return id >= 0 ? id : mcp_frame__sniff_tail(tail, tail_len);
}

/* ---- messages ---- */

int mcp_msg_parse(const char *line, size_t len, mcp_msg *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->kind = MCP_MSG_INVALID;
    json_error_t je;
    m->root = json_loadb(line, len, 0, &je);
    if (!m->root) {
        snprintf(err, errlen, "not JSON: %s at column %d", je.text, je.column);
        return -1;
    }
    json_t *root = m->root;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    json_t *v = json_object_get(root, "jsonrpc");
    if (v && !(json_is_string(v) && strcmp(json_string_value(v), "2.0") == 0)) {
        snprintf(err, errlen, "\"jsonrpc\" is not \"2.0\"");
        return -1;
    }
    json_t *method = json_object_get(root, "method");
    json_t *id = json_object_get(root, "id");
    if (id && !json_is_integer(id) && !json_is_string(id) && !json_is_null(id)) {
        snprintf(err, errlen, "\"id\" is neither a string nor an integer");
        return -1;
    }
    if (id && json_is_integer(id)) {
        m->id_is_int = true;
        m->id_int = json_integer_value(id);
    }
    if (method) {
        if (!json_is_string(method)) {
            snprintf(err, errlen, "\"method\" is not a string");
            return -1;
        }
        if (id && json_is_null(id)) {
            snprintf(err, errlen, "a request's \"id\" is null");
            return -1;
        }
        m->method = json_string_value(method);
        m->params = json_object_get(root, "params");
        m->id = id;
        m->kind = id ? MCP_MSG_REQUEST : MCP_MSG_NOTIFICATION;
        return 0;
    }
    if (!id) {
        snprintf(err, errlen, "neither a \"method\" nor an \"id\"");
        return -1;
    }
    /* A null id is an error answer to a request the server could not read. */
    m->id = json_is_null(id) ? NULL : id;
    json_t *result = json_object_get(root, "result");
    json_t *error = json_object_get(root, "error");
    if (result && !error) {
        m->result = result;
        m->kind = MCP_MSG_RESULT;
        return 0;
    }
    if (error && !result && json_is_object(error)) {
        json_t *code = json_object_get(error, "code");
        const char *msg = json_string_value(json_object_get(error, "message"));
        m->error_code = json_is_integer(code) ? json_integer_value(code) : 0;
        m->error_message = msg ? msg : "";
        m->kind = MCP_MSG_ERROR;
        return 0;
    }
    snprintf(err, errlen, "a response needs exactly one of \"result\" and an \"error\" object");
    return -1;
}

void mcp_msg_cleanup(mcp_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

char *mcp_msg_error_text(const mcp_msg *m)
{
    if (!m->error_message || !*m->error_message)
        return xasprintf("JSON-RPC error %lld", (long long)m->error_code);
    return xasprintf("JSON-RPC error %lld: %s", (long long)m->error_code, m->error_message);
}

/* ---- encoding ---- */

/* Dumps msg (taking it over) as one compact line ending in LF. */
static char *mcp_frame__line(json_t *msg, size_t *len)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    char *out = xasprintf("%s\n", text ? text : "{}");
    free(text);
    if (len) *len = strlen(out);
    return out;
}

char *mcp_frame_request(int64_t id, const char *method, json_t *params, size_t *len)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set_new(msg, "id", json_integer(id));
    json_object_set_new(msg, "method", json_string(method));
    if (params) json_object_set_new(msg, "params", params);
    return mcp_frame__line(msg, len);
}

char *mcp_frame_notification(const char *method, json_t *params, size_t *len)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set_new(msg, "method", json_string(method));
    if (params) json_object_set_new(msg, "params", params);
    return mcp_frame__line(msg, len);
}

char *mcp_frame_answer(const mcp_msg *request, size_t *len)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set(msg, "id", request->id ? request->id : json_null());
    if (request->method && strcmp(request->method, "ping") == 0) {
        json_object_set_new(msg, "result", json_object());
    } else {
        char *text = xasprintf("Method not found: %s", request->method ? request->method : "");
        json_t *error = json_object();
        json_object_set_new(error, "code", json_integer(-32601));
        json_object_set_new(error, "message", json_string(text));
        json_object_set_new(msg, "error", error);
        free(text);
    }
    return mcp_frame__line(msg, len);
}

char *mcp_frame_result(const json_t *id, json_t *result, size_t *len)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set(msg, "id", id ? (json_t *)id : json_null());
    json_object_set_new(msg, "result", result ? result : json_object());
    return mcp_frame__line(msg, len);
}

char *mcp_frame_error(const json_t *id, int64_t code, const char *message, size_t *len)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set(msg, "id", id ? (json_t *)id : json_null());
    json_object_set_new(msg, "error",
                        json_pack("{s:I,s:s}", "code", (json_int_t)code, "message", message));
    return mcp_frame__line(msg, len);
}

/* ---- tools ---- */

/* Appends as much of s[0..n) as the cap allows, cut at a UTF-8 character
 * boundary. */
static void mcp_frame__append_capped(buf *out, const char *s, size_t n)
{
    size_t room = out->cap > out->len ? out->cap - out->len : 0;
    n = utf8_cut(s, n, room);
    /* n fits the room, so the append cannot fail. */
    if (n && buf_append(out, s, n) != 0) abort();
}

/* The text one content part contributes; caller frees. */
static char *mcp_frame__part_text(const json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!type) return xstrdup("[content without a type]");
    if (strcmp(type, "text") == 0) {
        const char *t = json_string_value(json_object_get(part, "text"));
        return xstrdup(t ? t : "");
    }
    if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
        const char *mime = json_string_value(json_object_get(part, "mimeType"));
        return mime ? xasprintf("[%s: %s]", type, mime) : xasprintf("[%s]", type);
    }
    if (strcmp(type, "resource") == 0) {
        const json_t *res = json_object_get(part, "resource");
        const char *text = json_string_value(json_object_get(res, "text"));
        if (text) return xstrdup(text);
        const char *uri = json_string_value(json_object_get(res, "uri"));
        return uri ? xasprintf("[resource: %s]", uri) : xstrdup("[resource]");
    }
    if (strcmp(type, "resource_link") == 0) {
        const char *uri = json_string_value(json_object_get(part, "uri"));
        return uri ? xasprintf("[resource link: %s]", uri) : xstrdup("[resource link]");
    }
    return xasprintf("[%s]", type);
}

bool mcp_frame_result_text(const json_t *result, buf *out)
{
    bool is_error = json_is_true(json_object_get(result, "isError"));
    const json_t *content = json_object_get(result, "content");
    size_t i, parts = 0;
    const json_t *part;
    if (json_is_array(content)) {
        json_array_foreach(content, i, part)
        {
            char *text = mcp_frame__part_text(part);
            if (parts++) mcp_frame__append_capped(out, "\n", 1);
            mcp_frame__append_capped(out, text, strlen(text));
            free(text);
        }
    }
    const json_t *structured = json_object_get(result, "structuredContent");
    if (parts == 0 && structured) {
        char *text = json_dumps(structured, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text) mcp_frame__append_capped(out, text, strlen(text));
        free(text);
    }
    return is_error;
}
