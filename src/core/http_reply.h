/*
 * http_reply: an incremental parser of one HTTP/1.1 response, as a client
 * reads it (docs/providers.md, The model connection).
 *
 * Bytes go in as they arrive, in pieces of any size; the parser reports
 * the final status (1xx interim responses are skipped), every header of
 * the final response, and the body with its framing taken off (chunked,
 * Content-Length, or up to the end of the connection). It keeps no more
 * than one line that a piece split, capped at HTTP_REPLY_LINE_MAX, and
 * reads at most HTTP_REPLY_HEAD_MAX bytes of status line and headers.
 * No I/O: engine/llm_plain.c owns the socket.
 */
#ifndef CHATPLANE_HTTP_REPLY_H
#define CHATPLANE_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define HTTP_REPLY_LINE_MAX 8192
#define HTTP_REPLY_HEAD_MAX (64 * 1024)

/* What http_reply_feed and http_reply_eof return. */
#define HTTP_REPLY_MORE    0  /* every byte was taken; the response goes on */
#define HTTP_REPLY_DONE    1  /* the response ended (*used says where) */
#define HTTP_REPLY_STOPPED 2  /* on_body asked to stop */
#define HTTP_REPLY_BAD     -1 /* not a valid response: error says why */

typedef struct http_reply_cb {
    /* The status of the final response. */
    void (*on_status)(void *ud, int status);
    /* One header of the final response; neither string is NUL-terminated. */
    void (*on_header)(void *ud, const char *name, size_t name_len, const char *value,
                      size_t value_len);
    /* Body bytes; false stops the parse (HTTP_REPLY_STOPPED). */
    bool (*on_body)(void *ud, const char *data, size_t len);
} http_reply_cb;

typedef struct http_reply {
    http_reply_cb cb;
    void *ud;
    int state;
    int status;        /* of the final response, 0 before it */
    bool started;      /* a byte came */
    bool keep_alive;   /* the connection may carry another request afterwards */
    bool chunked;      /* Transfer-Encoding: chunked */
    bool has_length;   /* Content-Length came */
    bool no_body;      /* 204 or 304 */
    uint64_t length;   /* Content-Length */
    uint64_t left;     /* bytes left of the body or of the chunk */
    size_t head_bytes; /* of status lines and headers so far */
    buf line;          /* a line split between two pieces */
    const char *error; /* why HTTP_REPLY_BAD, a static string */
} http_reply;

void http_reply_init(http_reply *r, const http_reply_cb *cb, void *ud);
void http_reply_cleanup(http_reply *r);

/*
 * Parses len more bytes. Returns HTTP_REPLY_MORE when all were taken and
 * the response goes on, HTTP_REPLY_DONE when it ended (then *used bytes
 * were taken; bytes after them belong to no response), HTTP_REPLY_STOPPED
 * when on_body said stop, HTTP_REPLY_BAD when the bytes are not a response
 * (r->error). Once it returned anything but MORE it returns the same.
 */
int http_reply_feed(http_reply *r, const char *data, size_t len, size_t *used);
/* The connection ended: HTTP_REPLY_DONE when that ends the response (a body
 * read to the end of the connection, or one that had already ended), else
 * HTTP_REPLY_BAD with r->error saying what was missing. */
int http_reply_eof(http_reply *r);

#endif
