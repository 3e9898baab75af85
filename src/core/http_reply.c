/*
 * http_reply: see http_reply.h.
 *
 * Lines end with LF, an optional CR before it taken off, as RFC 9112
 * allows a reader to accept. A line inside one piece is parsed where it
 * lies; only a line that a piece split is copied (into r->line), so the
 * usual piece costs no copy.
 */
#include "core/http_reply.h"

#include <string.h>
#include <strings.h>

enum {
    HR_STATUS,      /* the status line */
    HR_HEADERS,     /* header lines up to the empty one */
    HR_BODY_LENGTH, /* r->left bytes of body */
    HR_BODY_CLOSE,  /* body up to the end of the connection */
    HR_CHUNK_SIZE,  /* a chunk's size line */
    HR_CHUNK_DATA,  /* r->left bytes of chunk */
    HR_CHUNK_END,   /* the empty line after a chunk's data */
    HR_TRAILERS,    /* trailer lines up to the empty one */
    HR_DONE,
    HR_STOPPED,
    HR_BAD,
};

/* Sizes and lengths past this are refused rather than counted. */
#define HTTP_REPLY_SIZE_MAX ((uint64_t)1 << 60)

void http_reply_init(http_reply *r, const http_reply_cb *cb, void *ud)
{
    memset(r, 0, sizeof *r);
    r->cb = *cb;
    r->ud = ud;
    r->state = HR_STATUS;
    buf_init(&r->line, HTTP_REPLY_LINE_MAX);
}

void http_reply_cleanup(http_reply *r)
{
    buf_cleanup(&r->line);
}

static int http_reply__bad(http_reply *r, const char *why)
{
    r->state = HR_BAD;
    r->error = why;
    return HTTP_REPLY_BAD;
}

static bool http_reply__is_token(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c)) return false;
    }
    return true;
}

/* The next item of the comma-separated list s[*at..n), trimmed: false at
 * the end of the list. Empty items are skipped. */
static bool http_reply__list_next(const char *s, size_t n, size_t *at, const char **item,
                                  size_t *len)
{
    size_t i = *at;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
        if (i >= n) {
            *at = i;
            return false;
        }
        size_t start = i;
        while (i < n && s[i] != ',') i++;
        size_t end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t')) end--;
        if (end > start) {
            *at = i;
            *item = s + start;
            *len = end - start;
            return true;
        }
    }
}

static bool http_reply__is(const char *item, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(item, want, len) == 0;
}

/* True when the comma-separated list s holds the token want. */
static bool http_reply__list_has(const char *s, size_t n, const char *want)
{
    size_t at = 0, len;
    const char *item;
    while (http_reply__list_next(s, n, &at, &item, &len))
        if (http_reply__is(item, len, want)) return true;
    return false;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" */
static int http_reply__status_line(http_reply *r, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return http_reply__bad(r, "the answer is not an HTTP/1.x response");
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return http_reply__bad(r, "the response's status is not a number");
        status = status * 10 + (s[i] - '0');
    }
    if (n > 12 && s[12] != ' ') return http_reply__bad(r, "the response's status is not a number");
    if (status < 100) return http_reply__bad(r, "the response's status is not a number");
    if (status == 101) return http_reply__bad(r, "the server switched protocols");
    r->status = status;
    r->keep_alive = s[7] == '1';
    r->chunked = r->has_length = false;
    r->length = 0;
    r->state = HR_HEADERS;
    return HTTP_REPLY_MORE;
}

static int http_reply__header(http_reply *r, const char *s, size_t n)
{
    if (s[0] == ' ' || s[0] == '\t')
        return http_reply__bad(r, "a header of the response is folded");
    const char *colon = memchr(s, ':', n);
    if (!colon || !http_reply__is_token(s, (size_t)(colon - s)))
        return http_reply__bad(r, "a header line of the response is malformed");
    size_t nl = (size_t)(colon - s);
    const char *v = colon + 1;
    const char *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t vl = (size_t)(end - v);

    if (http_reply__is(s, nl, "content-length")) {
        uint64_t len = 0;
        if (vl == 0) return http_reply__bad(r, "the response's Content-Length is not a number");
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9' || len > HTTP_REPLY_SIZE_MAX / 10)
                return http_reply__bad(r, "the response's Content-Length is not a number");
            len = len * 10 + (uint64_t)(v[i] - '0');
        }
        if (r->has_length && len != r->length)
            return http_reply__bad(r, "the response has two different Content-Lengths");
        r->has_length = true;
        r->length = len;
    } else if (http_reply__is(s, nl, "transfer-encoding")) {
        /* Nothing asked for a compressed body: chunked is the only coding
         * this reader takes (identity means none). */
        size_t at = 0, len;
        const char *item;
        while (http_reply__list_next(v, vl, &at, &item, &len)) {
            if (http_reply__is(item, len, "chunked"))
                r->chunked = true;
            else if (!http_reply__is(item, len, "identity"))
                return http_reply__bad(r, "the response uses a transfer coding other than chunked");
        }
    } else if (http_reply__is(s, nl, "connection")) {
        if (http_reply__list_has(v, vl, "close"))
            r->keep_alive = false;
        else if (http_reply__list_has(v, vl, "keep-alive"))
            r->keep_alive = true;
    }
    if (r->status >= 200 && r->cb.on_header) r->cb.on_header(r->ud, s, nl, v, vl);
    return HTTP_REPLY_MORE;
}

/* The empty line after the headers: what the body is. */
static int http_reply__headers_end(http_reply *r)
{
    if (r->status < 200) {
        /* An interim response; the final one follows. */
        r->state = HR_STATUS;
        r->status = 0;
        return HTTP_REPLY_MORE;
    }
    if (r->cb.on_status) r->cb.on_status(r->ud, r->status);
    if (r->status == 204 || r->status == 304) {
        r->no_body = true;
        r->state = HR_DONE;
        return HTTP_REPLY_DONE;
    }
    if (r->chunked) {
        /* A length beside chunked framing is ignored, and the connection
         * is not reused after such a message (RFC 9112, 6.3). */
        if (r->has_length) r->keep_alive = false;
        r->state = HR_CHUNK_SIZE;
    } else if (r->has_length) {
        r->left = r->length;
        r->state = r->left ? HR_BODY_LENGTH : HR_DONE;
        if (r->state == HR_DONE) return HTTP_REPLY_DONE;
    } else {
        r->keep_alive = false;
        r->state = HR_BODY_CLOSE;
    }
    return HTTP_REPLY_MORE;
}

/* "HEX [; extensions]" */
static int http_reply__chunk_size(http_reply *r, const char *s, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) break;
        if (size > HTTP_REPLY_SIZE_MAX / 16)
            return http_reply__bad(r, "a chunk of the response is too large");
        size = size * 16 + (uint64_t)d;
    }
    if (i == 0) return http_reply__bad(r, "a chunk size of the response is not a number");
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i < n && s[i] != ';')
        return http_reply__bad(r, "a chunk size of the response is not a number");
    r->left = size;
    r->state = size ? HR_CHUNK_DATA : HR_TRAILERS;
    return HTTP_REPLY_MORE;
}

/* One whole line without its LF (and CR). */
static int http_reply__line(http_reply *r, const char *s, size_t n)
{
    switch (r->state) {
    case HR_STATUS:
        /* Empty lines before a status line are skipped (RFC 9112, 2.2). */
        if (n == 0) return HTTP_REPLY_MORE;
        return http_reply__status_line(r, s, n);
    case HR_HEADERS:
        return n == 0 ? http_reply__headers_end(r) : http_reply__header(r, s, n);
    case HR_CHUNK_SIZE:
        return http_reply__chunk_size(r, s, n);
    case HR_CHUNK_END:
        if (n != 0) return http_reply__bad(r, "a chunk of the response is longer than its size");
        r->state = HR_CHUNK_SIZE;
        return HTTP_REPLY_MORE;
    case HR_TRAILERS:
        if (n != 0) return HTTP_REPLY_MORE;
        r->state = HR_DONE;
        return HTTP_REPLY_DONE;
    default:
        return http_reply__bad(r, "the response parser lost its place");
    }
}

static bool http_reply__in_head(const http_reply *r)
{
    return r->state == HR_STATUS || r->state == HR_HEADERS;
}

/* Takes the line that ends in data (at lf) or keeps what it holds of one. */
static int http_reply__take_line(http_reply *r, const char *data, size_t len, size_t *at)
{
    const char *start = data + *at;
    size_t avail = len - *at;
    const char *lf = memchr(start, '\n', avail);
    size_t piece = lf ? (size_t)(lf - start) + 1 : avail;
    if (http_reply__in_head(r)) {
        r->head_bytes += piece;
        if (r->head_bytes > HTTP_REPLY_HEAD_MAX)
            return http_reply__bad(r, "the response's headers exceed 64 KiB");
    }
    *at += piece;
    if (!lf) {
        if (buf_append(&r->line, start, piece) != 0)
            return http_reply__bad(r, "a line of the response exceeds 8 KiB");
        return HTTP_REPLY_MORE;
    }
    const char *s = start;
    size_t n = piece - 1;
    if (r->line.len) {
        if (buf_append(&r->line, start, n) != 0)
            return http_reply__bad(r, "a line of the response exceeds 8 KiB");
        s = r->line.data;
        n = r->line.len;
    } else if (n >= HTTP_REPLY_LINE_MAX) {
        return http_reply__bad(r, "a line of the response exceeds 8 KiB");
    }
    if (n && s[n - 1] == '\r') n--;
    int rc = http_reply__line(r, s, n);
    buf_reset(&r->line);
    return rc;
}

int http_reply_feed(http_reply *r, const char *data, size_t len, size_t *used)
{
    size_t at = 0;
    int rc = HTTP_REPLY_MORE;
    if (len) r->started = true;
    while (rc == HTTP_REPLY_MORE && at < len) {
        switch (r->state) {
        case HR_BODY_LENGTH:
        case HR_CHUNK_DATA:
        case HR_BODY_CLOSE: {
            size_t n = len - at;
            if (r->state != HR_BODY_CLOSE && n > r->left) n = (size_t)r->left;
            const char *p = data + at;
            at += n;
            if (r->state != HR_BODY_CLOSE) r->left -= n;
            if (r->state == HR_BODY_LENGTH && r->left == 0) r->state = HR_DONE;
            if (r->state == HR_CHUNK_DATA && r->left == 0) r->state = HR_CHUNK_END;
            if (r->cb.on_body && !r->cb.on_body(r->ud, p, n)) {
                r->state = HR_STOPPED;
                rc = HTTP_REPLY_STOPPED;
            } else if (r->state == HR_DONE) {
                rc = HTTP_REPLY_DONE;
            }
            break;
        }
        case HR_DONE:
            rc = HTTP_REPLY_DONE;
            break;
        case HR_STOPPED:
            rc = HTTP_REPLY_STOPPED;
            break;
        case HR_BAD:
            rc = HTTP_REPLY_BAD;
            break;
        default:
            rc = http_reply__take_line(r, data, len, &at);
            break;
        }
    }
    if (rc == HTTP_REPLY_MORE) {
        if (r->state == HR_DONE)
            rc = HTTP_REPLY_DONE;
        else if (r->state == HR_BAD)
            rc = HTTP_REPLY_BAD;
        else if (r->state == HR_STOPPED)
            rc = HTTP_REPLY_STOPPED;
    }
    if (used) *used = at;
    return rc;
}

int http_reply_eof(http_reply *r)
{
    switch (r->state) {
    case HR_DONE:
    case HR_BODY_CLOSE:
        r->state = HR_DONE;
        return HTTP_REPLY_DONE;
    case HR_BAD:
        return HTTP_REPLY_BAD;
    case HR_STATUS:
        if (!r->started)
            return http_reply__bad(r, "the server closed the connection without a response");
        return http_reply__bad(r, "the connection closed in the middle of the response's headers");
    case HR_HEADERS:
        return http_reply__bad(r, "the connection closed in the middle of the response's headers");
    default:
        return http_reply__bad(r, "the connection closed before the response's body ended");
    }
}
