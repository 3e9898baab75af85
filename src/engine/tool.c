/*
 * tool: the names of tool statuses, the name a tool is offered under, and
 * the error result a source gives for a call it cannot make.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tool_source.h"
#include "lib/buf.h"
#include "lib/utf8.h"

#define TOOL_NAME_MAX 64 /* the longest function name OpenAI-style APIs accept */

const char *tool_status_name(tool_status s)
{
    switch (s) {
    case TOOL_OK:
        return "ok";
    case TOOL_ERROR:
        return "error";
    case TOOL_TIMEOUT:
        return "timeout";
    case TOOL_CANCELLED:
        return "cancelled";
    case TOOL_DENIED:
        return "denied";
    }
    return "error";
}

void tool__done_error(const tool_callbacks *cb, void *ud, const char *msg)
{
    tool_result r = {.status = TOOL_ERROR, .text = msg, .text_len = strlen(msg), .error = msg};
    cb->on_done(ud, &r);
}

void tool__done_ok(const tool_callbacks *cb, void *ud, const char *text)
{
    tool_result r = {.status = TOOL_OK, .text = text, .text_len = strlen(text)};
    cb->on_done(ud, &r);
}

/* Appends the characters of s, each outside [A-Za-z0-9_-] as one '_', for as
 * long as the buffer's cap allows. A character of several bytes becomes a
 * single '_', and so does each unit of bytes that is not UTF-8. */
static void tool__append_sanitized(buf *b, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0, k; i < len; i += k) {
        k = utf8_next(s + i, len - i);
        char c = s[i];
        bool ok = k == 1 && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == '-');
        if (buf_append_char(b, ok ? c : '_') < 0) return;
    }
}

char *tool_model_name(const char *server, const char *tool)
{
    buf b;
    buf_init(&b, TOOL_NAME_MAX);
    /* A full buffer is the cut at 64 bytes: what does not fit is left out,
     * one byte at a time, so the cut falls at exactly 64 bytes even inside
     * the separator. */
    bool full = false;
    if (server) {
        tool__append_sanitized(&b, server);
        full = buf_append_char(&b, '_') != 0 || buf_append_char(&b, '_') != 0;
    }
    if (!full) tool__append_sanitized(&b, tool ? tool : "");
    return buf_detach(&b, NULL);
}

void tool__defs_cleanup(tool_def *defs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(defs[i].name);
        free(defs[i].server);
        free(defs[i].tool);
        free(defs[i].description);
        json_decref(defs[i].input_schema);
        json_decref(defs[i].annotations);
    }
}
