#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

void buf_init(buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void buf_cleanup(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

/* Makes room for extra more bytes plus the NUL, growing geometrically. */
static int buf__reserve(buf *b, size_t extra)
{
    if (extra > b->cap || b->len > b->cap - extra) return BUF_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc) return 0;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need) n *= 2;
    if (n > b->cap + 1) n = b->cap + 1;
    b->data = xrealloc(b->data, n);
    b->alloc = n;
    return 0;
}

int buf_reserve(buf *b, size_t extra)
{
    return buf__reserve(b, extra);
}

size_t buf_i64_text(char out[BUF_I64_LEN], int64_t v)
{
    char tmp[BUF_I64_LEN];
    size_t n = 0;
    /* Digits of the magnitude, taken as unsigned so INT64_MIN works. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

int buf_append_i64(buf *b, int64_t v)
{
    char t[BUF_I64_LEN];
    size_t n = buf_i64_text(t, v);
    return buf_append(b, t, n);
}

/* An append that must grow the buffer first, or refuse past the cap. */
int buf__append_grow(buf *b, const void *data, size_t len)
{
    if (buf__reserve(b, len) != 0) return BUF_TOOBIG;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf__reserve(b, (size_t)n) != 0) return BUF_TOOBIG;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *buf_detach(buf *b, size_t *len)
{
    char *p = b->data ? b->data : xstrdup("");
    if (len) *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}
