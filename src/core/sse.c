/*
 * sse: framing of outgoing events and an incremental parser for incoming
 * streams.
 *
 * The parser follows the WHATWG event-stream interpretation rules, so that
 * what the model client and the tests read is what a browser's EventSource
 * would read from the same bytes, however the bytes are split into feeds.
 */
#include "core/sse.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The literal's length without its NUL, for fixed parts of a frame. */
#define SSE__LIT_LEN(s) (sizeof(s) - 1)

/*
 * Appends one event frame. The total size is computed first so that a frame
 * that does not fit leaves out untouched: a half-written frame on a
 * subscriber's buffer would corrupt the stream for every later event.
 */
size_t sse_frame_size(int64_t id, const char *type, size_t data_len)
{
    char idtxt[BUF_I64_LEN];
    return SSE__LIT_LEN("id: \nevent: \ndata: \n\n") + buf_i64_text(idtxt, id) + strlen(type) +
           data_len;
}

/* Copies len bytes to out and returns the position after them. */
static char *sse__put(char *out, const char *s, size_t len)
{
    memcpy(out, s, len);
    return out + len;
}

size_t sse_frame_write(char *out, int64_t id, const char *type, const char *data, size_t data_len)
{
    char idtxt[BUF_I64_LEN];
    size_t idlen = buf_i64_text(idtxt, id);
    char *p = sse__put(out, "id: ", SSE__LIT_LEN("id: "));
    p = sse__put(p, idtxt, idlen);
    p = sse__put(p, "\nevent: ", SSE__LIT_LEN("\nevent: "));
    p = sse__put(p, type, strlen(type));
    p = sse__put(p, "\ndata: ", SSE__LIT_LEN("\ndata: "));
    p = sse__put(p, data, data_len);
    p = sse__put(p, "\n\n", 2);
    *p = '\0';
    return (size_t)(p - out);
}

int sse_frame(buf *out, int64_t id, const char *type, const char *data, size_t data_len)
{
    size_t fixed = sse_frame_size(id, type, 0);
    size_t room = out->cap - out->len;

    if (fixed > room || data_len > room - fixed) return BUF_TOOBIG;
    /* The room was checked above, so the reservation cannot fail. */
    int rc = buf_reserve(out, fixed + data_len);
    assert(rc == 0);
    (void)rc;
    out->len += sse_frame_write(out->data + out->len, id, type, data, data_len);
    return 0;
}

int sse_frame_retry(buf *out, int64_t retry_ms)
{
    return buf_printf(out, "retry: %" PRId64 "\n\n", retry_ms);
}

int sse_frame_comment(buf *out, const char *text)
{
    return buf_printf(out, ": %s\n\n", text);
}

/* Every buffer of the parser is capped at max_bytes: a line can never be
 * longer than that, so neither can an event name or an id taken from it. */
void sse_parser_init(sse_parser *p, size_t max_bytes, sse_event_cb cb, void *ud)
{
    p->on_event = cb;
    p->ud = ud;
    buf_init(&p->line, max_bytes);
    buf_init(&p->data, max_bytes);
    buf_init(&p->event, max_bytes);
    buf_init(&p->last_id, max_bytes);
    p->retry_ms = -1;
    p->data_seen = 0;
    p->after_cr = 0;
    p->bom_checked = 0;
}

void sse_parser_cleanup(sse_parser *p)
{
    buf_cleanup(&p->line);
    buf_cleanup(&p->data);
    buf_cleanup(&p->event);
    buf_cleanup(&p->last_id);
}

/* A buf's contents as a string; an untouched buf has no storage yet. */
static const char *sse__str(const buf *b)
{
    return b->data ? b->data : "";
}

/* True when the field name of length n is exactly name (the name may hold
 * NUL bytes from the stream, so this compares lengths, not strings). */
static int sse__field_is(const char *field, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(field, name, n) == 0;
}

/*
 * Sets the reconnection time when the value is one or more ASCII digits that
 * fit an int64_t. Anything else, including an empty value, is ignored, as a
 * browser does.
 */
static void sse__set_retry(sse_parser *p, const char *v, size_t n)
{
    int64_t ms = 0;

    if (n == 0) return;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return;
        int d = v[i] - '0';
        if (ms > (INT64_MAX - d) / 10) return;
        ms = ms * 10 + d;
    }
    p->retry_ms = ms;
}

/*
 * Handles a blank line: hands the event being read to the callback, unless
 * no data field was seen, and starts a new event either way. The last event
 * id is kept. Returns the callback's value.
 */
static int sse__dispatch(sse_parser *p)
{
    int rc = 0;

    if (p->data_seen) {
        sse_event ev = {
            .event = p->event.len ? p->event.data : "message",
            .data = sse__str(&p->data),
            .data_len = p->data.len,
            .id = sse__str(&p->last_id),
        };
        rc = p->on_event(p->ud, &ev);
    }
    buf_reset(&p->data);
    buf_reset(&p->event);
    p->data_seen = 0;
    return rc;
}

/*
 * Interprets one complete line (without its line ending) held in p->line.
 * Data lines are stored joined by LF, without the trailing LF the standard
 * appends and then removes at dispatch, so the data buffer holds exactly what
 * will be dispatched and its cap applies to that. Returns 0, SSE_ERR_TOOBIG
 * or the callback's value.
 */
static int sse__line(sse_parser *p)
{
    const char *line = sse__str(&p->line);
    size_t n = p->line.len;

    if (!p->bom_checked) {
        p->bom_checked = 1;
        if (n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            n -= 3;
        }
    }
    if (n == 0) return sse__dispatch(p);
    if (line[0] == ':') return 0;

    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = n - (size_t)(v - line);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }

    if (sse__field_is(line, flen, "data")) {
        if (p->data_seen && buf_append_char(&p->data, '\n') != 0) return SSE_ERR_TOOBIG;
        if (buf_append(&p->data, v, vlen) != 0) return SSE_ERR_TOOBIG;
        p->data_seen = 1;
    } else if (sse__field_is(line, flen, "event")) {
        buf_reset(&p->event);
        if (buf_append(&p->event, v, vlen) != 0) return SSE_ERR_TOOBIG;
    } else if (sse__field_is(line, flen, "id")) {
        if (!memchr(v, '\0', vlen)) {
            buf_reset(&p->last_id);
            if (buf_append(&p->last_id, v, vlen) != 0) return SSE_ERR_TOOBIG;
        }
    } else if (sse__field_is(line, flen, "retry")) {
        sse__set_retry(p, v, vlen);
    }
    return 0;
}

/*
 * Splits the input into lines at LF, CRLF or CR. A CR ends its line at once;
 * after_cr remembers it so that an LF right after it, even one that arrives
 * in the next feed, is taken as the rest of the same line ending. Partial
 * lines wait in p->line for the next feed.
 *
 * On SSE_ERR_TOOBIG the parser is left in an unspecified (but memory-safe)
 * state and the caller must drop the stream. When the callback stops the
 * parse, the bytes after the dispatching blank line are not read.
 */
int sse_parser_feed(sse_parser *p, const char *data, size_t len)
{
    size_t i = 0;
    /* Where the next CR is (len for none): looked for again only once a
     * line passes it, so a feed of many LF-ended lines scans its bytes
     * for a CR once. With memchr the line's end costs a fraction of the
     * byte-by-byte loop it replaces, which was about a tenth of what
     * reading one piece of a model's answer cost the loop
     * (docs/benchmarks.md, fix 73). */
    size_t cr = 0;
    bool cr_known = false;

    while (i < len) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (data[i] == '\n') {
                i++;
                continue;
            }
        }
        if (!cr_known || cr < i) {
            const char *c = memchr(data + i, '\r', len - i);
            cr = c ? (size_t)(c - data) : len;
            cr_known = true;
        }
        const char *nl = memchr(data + i, '\n', cr - i);
        size_t j = nl ? (size_t)(nl - data) : cr;
        if (buf_append(&p->line, data + i, j - i) != 0) return SSE_ERR_TOOBIG;
        if (j == len) break;
        p->after_cr = data[j] == '\r';
        i = j + 1;
        int rc = sse__line(p);
        buf_reset(&p->line);
        if (rc != 0) return rc;
    }
    return 0;
}
