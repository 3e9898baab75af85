/*
 * buf: a growable byte buffer with a hard cap.
 *
 * Every buffer that grows from outside input (HTTP bodies, SSE lines,
 * JSON-RPC frames, model streams) is a buf with a cap, so a hostile or broken
 * peer can never make chatplane grow without bound. Appending past the cap
 * fails with BUF_TOOBIG and leaves the contents unchanged. The data is always
 * NUL-terminated (the NUL is not counted in len), so it can be passed to
 * string functions directly.
 */
#ifndef CHATPLANE_BUF_H
#define CHATPLANE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/err.h"

#define BUF_TOOBIG  ERR_TOOBIG
#define BUF_I64_LEN 21 /* "-9223372036854775808" and its NUL */

typedef struct buf {
    char *data;   /* NULL until the first append; owned */
    size_t len;   /* bytes used, not counting the trailing NUL */
    size_t alloc; /* bytes allocated */
    size_t cap;   /* most bytes len may reach */
} buf;

/* Initializes an empty buffer that may hold at most cap bytes. */
void buf_init(buf *b, size_t cap);
/* Frees the contents; the buffer may be reused after buf_init. */
void buf_cleanup(buf *b);
/* Empties the buffer, keeping its allocation. */
void buf_reset(buf *b);

/* The appends' way when the buffer must grow (or refuse): not called
 * directly. */
int buf__append_grow(buf *b, const void *data, size_t len);

/*
 * Each returns 0, or BUF_TOOBIG when the result would exceed the cap.
 * They are inline because every event and frame is written a few bytes at
 * a time: with room already there, an append is a copy, without a call
 * (docs/benchmarks.md, fix 87).
 */
static inline int buf_append(buf *b, const void *data, size_t len)
{
    /* Room for len more bytes and the NUL, within the cap: b->len <= b->cap
     * always holds, and b->alloc > b->len once anything is allocated. */
    if (b->alloc - b->len > len && len <= b->cap - b->len) {
        if (len) memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf__append_grow(b, data, len);
}

/* With a string literal, the compiler counts its length. */
static inline int buf_append_str(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

static inline int buf_append_char(buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Makes room for extra more bytes at once, so that a result of a known
 * size is built without growing step by step. */
int buf_reserve(buf *b, size_t extra);
/* Appends v in decimal. */
int buf_append_i64(buf *b, int64_t v);
/* Writes v in decimal to out, NUL-terminated; returns its length. Faster
 * than snprintf, which dominated encoding events. */
size_t buf_i64_text(char out[BUF_I64_LEN], int64_t v);

/* Removes the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);

/* Hands the contents to the caller (who frees them) and empties the buffer.
 * Returns an empty string rather than NULL for an empty buffer. */
char *buf_detach(buf *b, size_t *len);

#endif
