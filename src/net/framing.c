#include "net/framing.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The trailer section after the last chunk is read but never used; this
 * bounds it. */
#define FRAMING__TRAILER_MAX 8192

static bool framing__is(const framing_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static bool framing__value_is(const framing_header *h, const char *want)
{
    size_t n = strlen(want);
    return h->value_len == n && strncasecmp(h->value, want, n) == 0;
}

static void framing__refuse(framing_verdict *v, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void framing__refuse(framing_verdict *v, int status, const char *code, const char *fmt, ...)
{
    v->status = status;
    v->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
}

/* At most this many bytes of a value are quoted back in a message. */
static int framing__shown(size_t n)
{
    return n > 60 ? 60 : (int)n;
}

/* The value of a Content-Length of digits only, or -1 for anything else
 * and -2 for digits past 2^63 - 1. */
static int64_t framing__length(const framing_header *h)
{
    if (h->value_len == 0) return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        char c = h->value[i];
        if (c < '0' || c > '9') return -1;
        if (n > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(c - '0')) / 10) return -2;
        n = n * 10 + (uint64_t)(c - '0');
    }
    return (int64_t)n;
}

void framing_check(const framing_header *h, int n, uint64_t body_limit, framing_verdict *v)
{
    memset(v, 0, sizeof *v);
    int hosts = 0, lengths = 0, codings = 0;
    const framing_header *cl = NULL, *te = NULL;
    for (int i = 0; i < n; i++) {
        if (framing__is(&h[i], "Host")) hosts++;
        if (framing__is(&h[i], "Transfer-Encoding") && codings++ == 0) te = &h[i];
        if (!framing__is(&h[i], "Content-Length")) continue;
        int64_t len = framing__length(&h[i]);
        if (len == -1) {
            framing__refuse(v, 400, "bad_request",
                            "Content-Length must be digits only, not \"%.*s\"",
                            framing__shown(h[i].value_len), h[i].value);
            return;
        }
        if (lengths++ > 0 && (cl->value_len != h[i].value_len ||
                              memcmp(cl->value, h[i].value, h[i].value_len) != 0)) {
            framing__refuse(v, 400, "bad_request",
                            "the request has Content-Length headers that differ");
            return;
        }
        if (!cl) cl = &h[i];
    }
    if (hosts > 1) {
        framing__refuse(v, 400, "bad_request",
                        "the request has %d Host headers; exactly one is allowed", hosts);
        return;
    }
    if (codings > 1) {
        framing__refuse(v, 501, "not_implemented",
                        "the request has more than one Transfer-Encoding header; only a single "
                        "\"chunked\" is supported");
        return;
    }
    if (te && !framing__value_is(te, "chunked")) {
        framing__refuse(v, 501, "not_implemented",
                        "Transfer-Encoding \"%.*s\" is not supported; only chunked is",
                        framing__shown(te->value_len), te->value);
        return;
    }
    if (te && cl) {
        framing__refuse(v, 400, "bad_request",
                        "the request has both Transfer-Encoding and Content-Length");
        return;
    }
    if (cl) {
        int64_t len = framing__length(cl);
        if (len == -2 || (uint64_t)len > body_limit) {
            framing__refuse(v, 413, "payload_too_large",
                            "the request is larger than the server accepts");
            return;
        }
    }
    v->chunked = te != NULL;
}

/* The end of the line starting at p: the offset after its LF, or 0. */
static size_t framing__line_end(const char *p, size_t len)
{
    const char *lf = memchr(p, '\n', len);
    return lf ? (size_t)(lf - p) + 1 : 0;
}

/* True when the line [p, p + n) (with its LF) is empty. */
static bool framing__blank(const char *p, size_t n)
{
    return n == 1 || (n == 2 && p[0] == '\r');
}

size_t framing_head_end(const char *p, size_t len, size_t from)
{
    /* The first LF ends the request line; any later LF followed by an
     * empty line ends the head. An end that straddles from starts at most
     * two bytes before it. */
    size_t i = from > 2 ? from - 2 : 0;
    for (; i < len; i++) {
        if (p[i] != '\n') continue;
        if (i + 1 < len && p[i + 1] == '\n') return i + 2;
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static bool framing__space(char c)
{
    return c == ' ' || c == '\t';
}

int framing_split(const char *head, size_t len, framing_header *h, int max)
{
    size_t at = framing__line_end(head, len);
    int n = 0;
    while (at < len) {
        size_t ll = framing__line_end(head + at, len - at);
        if (ll == 0 || framing__blank(head + at, ll)) break;
        const char *line = head + at;
        size_t end = ll - 1;
        if (end > 0 && line[end - 1] == '\r') end--;
        at += ll;
        /* A folded continuation line belongs to the header before it,
         * whose value the framing rules then no longer read as a whole:
         * keep the first part, which is what decides. */
        if (framing__space(line[0])) continue;
        const char *colon = memchr(line, ':', end);
        if (!colon) return -1;
        if (n == max) return -1;
        size_t vs = (size_t)(colon - line) + 1, ve = end;
        while (vs < ve && framing__space(line[vs])) vs++;
        while (ve > vs && framing__space(line[ve - 1])) ve--;
        h[n].name = line;
        h[n].name_len = (size_t)(colon - line);
        h[n].value = line + vs;
        h[n].value_len = ve - vs;
        n++;
    }
    return n;
}

/* ---- chunked bodies ---- */

enum {
    FRAMING__SIZE,    /* reading the size's hex digits */
    FRAMING__SIZE_WS, /* spaces after the size */
    FRAMING__SIZE_LF, /* CR seen after the size */
    FRAMING__DATA,    /* the chunk's data */
    FRAMING__DATA_CR, /* the CR (or LF) after the data */
    FRAMING__DATA_LF, /* the LF after the data's CR */
    FRAMING__TRAILER, /* a trailer line, or the empty line that ends the body */
    FRAMING__TRAILER_LF,
    FRAMING__END
};

void framing_chunks_init(framing_chunks *c, uint64_t limit)
{
    memset(c, 0, sizeof *c);
    c->limit = limit;
}

static int framing__hex(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int framing__bad(char *err, size_t errlen, const char *what, char ch)
{
    if ((unsigned char)ch >= 0x21 && (unsigned char)ch < 0x7f)
        snprintf(err, errlen, "the chunked body is malformed: %s, not '%c'", what, ch);
    else
        snprintf(err, errlen, "the chunked body is malformed: %s, not byte 0x%02x", what,
                 (unsigned char)ch);
    return FRAMING_BAD;
}

/* The size line ended: the chunk's data follows, or the trailers. */
static void framing__size_done(framing_chunks *c)
{
    c->state = c->left ? FRAMING__DATA : FRAMING__TRAILER;
    c->line = 0;
}

int framing_chunks_feed(framing_chunks *c, const char *p, size_t len, size_t *used, char *err,
                        size_t errlen)
{
    size_t i = 0;
    while (i < len) {
        char ch = p[i];
        switch (c->state) {
        case FRAMING__SIZE: {
            int d = framing__hex(ch);
            if (d >= 0) {
                if (c->digits == 16) return FRAMING_TOO_LARGE;
                c->left = c->left << 4 | (uint64_t)d;
                c->digits++;
                i++;
                break;
            }
            if (c->digits == 0)
                return framing__bad(err, errlen, "a chunk size must be hex digits", ch);
            if (c->left > c->limit || c->total + c->left > c->limit) return FRAMING_TOO_LARGE;
            c->total += c->left;
            if (ch == ';')
                return framing__bad(err, errlen, "chunk extensions are not accepted after a size",
                                    ch);
            c->state = FRAMING__SIZE_WS;
            break;
        }
        case FRAMING__SIZE_WS:
            if (framing__space(ch)) {
                i++;
            } else if (ch == '\r') {
                c->state = FRAMING__SIZE_LF;
                i++;
            } else if (ch == '\n') {
                framing__size_done(c);
                i++;
            } else {
                return framing__bad(err, errlen, "a chunk size must end the line", ch);
            }
            break;
        case FRAMING__SIZE_LF:
            if (ch != '\n')
                return framing__bad(err, errlen, "a chunk size line must end in CRLF", ch);
            framing__size_done(c);
            i++;
            break;
        case FRAMING__DATA: {
            size_t take = len - i < c->left ? len - i : (size_t)c->left;
            c->left -= take;
            i += take;
            if (c->left == 0) c->state = FRAMING__DATA_CR;
            break;
        }
        case FRAMING__DATA_CR:
            if (ch == '\r') {
                c->state = FRAMING__DATA_LF;
            } else if (ch == '\n') {
                c->state = FRAMING__SIZE;
                c->digits = 0;
            } else {
                return framing__bad(err, errlen, "a chunk's data must be followed by CRLF", ch);
            }
            i++;
            break;
        case FRAMING__DATA_LF:
            if (ch != '\n')
                return framing__bad(err, errlen, "a chunk's data must be followed by CRLF", ch);
            c->state = FRAMING__SIZE;
            c->digits = 0;
            i++;
            break;
        case FRAMING__TRAILER:
            i++;
            if (ch == '\n') {
                if (c->line == 0) {
                    *used = i;
                    c->state = FRAMING__END;
                    return FRAMING_DONE;
                }
                c->line = 0;
            } else if (ch == '\r' && c->line == 0) {
                c->state = FRAMING__TRAILER_LF;
            } else if (++c->total > c->limit + FRAMING__TRAILER_MAX) {
                return FRAMING_TOO_LARGE;
            } else {
                c->line++;
            }
            break;
        case FRAMING__TRAILER_LF:
            if (ch != '\n') return framing__bad(err, errlen, "the body must end with CRLF", ch);
            *used = i + 1;
            c->state = FRAMING__END;
            return FRAMING_DONE;
        default:
            *used = 0;
            return FRAMING_DONE;
        }
    }
    *used = len;
    return FRAMING_MORE;
}
