/*
 * framing: the rules for how a request says where it ends, applied before
 * the server reads a body and again to the headers it parsed.
 *
 * evhttp reads a body by the first Content-Length it finds, takes any
 * Transfer-Encoding other than "chunked" as no body, reads a "+2" length
 * and waits for a body of any declared size before refusing it. Two
 * readers of one stream that disagree on where a request ends (a proxy in
 * front and this server) let a client hide a request inside another, so
 * everything ambiguous is refused here: more than one Host, differing or
 * non-digit Content-Length values, Content-Length next to Transfer-
 * Encoding, any coding but chunked. A declared length over the body limit
 * is refused before a byte of the body is read.
 *
 * The chunk reader checks a chunked body's framing as its bytes arrive:
 * sizes of hex digits only (no sign, no "0x", no extensions), each chunk's
 * data followed by CRLF, the running total within the limit.
 */
#ifndef CHATPLANE_FRAMING_H
#define CHATPLANE_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A header as sent: pointers into the request, not NUL-terminated. */
typedef struct framing_header {
    const char *name;
    size_t name_len;
    const char *value; /* without the spaces around it */
    size_t value_len;
} framing_header;

/* The decision about one request's head. status 0: acceptable. */
typedef struct framing_verdict {
    int status;        /* 0, 400, 413 or 501 */
    const char *code;  /* "bad_request", "payload_too_large", "not_implemented" */
    char message[256]; /* may hold bytes of the request, not always UTF-8 */
    bool chunked;      /* the body is chunked */
} framing_verdict;

/* Applies the rules above to n headers; body_limit is limits.body_bytes. */
void framing_check(const framing_header *h, int n, uint64_t body_limit, framing_verdict *v);

/*
 * The length of the head at p (request line, header lines and the empty
 * line that ends them; lines end in CRLF or LF), or 0 while it is not
 * complete in len bytes. from: the length of an earlier call's p that
 * had no end, so the search resumes there (0 for a full search).
 */
size_t framing_head_end(const char *p, size_t len, size_t from);

/*
 * Splits a complete head (framing_head_end bytes) into its header lines,
 * skipping the request line; at most max are kept. Returns the count, or
 * -1 when there are more than max or a line has no colon.
 */
int framing_split(const char *head, size_t len, framing_header *h, int max);

/* The incremental reader of a chunked body. */
typedef struct framing_chunks {
    int state;
    int digits;     /* hex digits of the size read so far */
    uint64_t left;  /* bytes of the current chunk's data still to come */
    uint64_t total; /* the sum of the sizes so far */
    uint64_t limit; /* the largest total accepted */
    size_t line;    /* length of the trailer line being read */
} framing_chunks;

enum { FRAMING_MORE = 0, FRAMING_DONE = 1, FRAMING_BAD = -1, FRAMING_TOO_LARGE = -2 };

void framing_chunks_init(framing_chunks *c, uint64_t limit);
/*
 * Reads len more bytes of the body. Returns FRAMING_MORE when all were
 * taken and more are expected, FRAMING_DONE when the body ended (*used:
 * the bytes that belonged to it), FRAMING_BAD with err naming the problem,
 * or FRAMING_TOO_LARGE when the sizes add up to more than the limit.
 */
int framing_chunks_feed(framing_chunks *c, const char *p, size_t len, size_t *used, char *err,
                        size_t errlen);

#endif
