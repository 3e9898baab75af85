/*
 * sse: Server-Sent Events framing (docs/events.md, The stream) and an
 * incremental parser that reads a stream as browsers do (docs/events.md,
 * Reading the stream), used by the model client and by tests.
 */
#ifndef CHATPLANE_SSE_H
#define CHATPLANE_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/*
 * Appends one event framed exactly as
 *   "id: <id>\nevent: <type>\ndata: <data>\n\n"
 * data must be one line (no CR or LF); the caller guarantees it. Returns 0 or
 * BUF_TOOBIG.
 */
int sse_frame(buf *out, int64_t id, const char *type, const char *data, size_t data_len);
/* The length of the frame sse_frame appends. */
size_t sse_frame_size(int64_t id, const char *type, size_t data_len);
/* The most bytes a frame has besides its type and its data (the longest id
 * is INT64_MIN's): room enough for any frame, without formatting its id
 * twice to size it first. */
#define SSE_FRAME_OVERHEAD_MAX (sizeof "id: \nevent: \ndata: \n\n" - 1 + BUF_I64_LEN - 1)
/* Writes that frame to out, which has room for its sse_frame_size bytes
 * and a NUL after them; returns its length. For a frame kept in a block of
 * its own, written in place rather than copied from a buf. */
size_t sse_frame_write(char *out, int64_t id, const char *type, const char *data, size_t data_len);
/* Appends "retry: <ms>\n\n". */
int sse_frame_retry(buf *out, int64_t retry_ms);
/* Appends ": <text>\n" and a blank line (": ping\n\n" for text "ping"). */
int sse_frame_comment(buf *out, const char *text);

/* A dispatched event. Strings are NUL-terminated and valid only during the
 * callback. event is "message" when the stream named none. id is the last
 * event id seen so far (it persists across events, as in browsers). */
typedef struct sse_event {
    const char *event;
    const char *data;
    size_t data_len;
    const char *id;
} sse_event;

/* Returns 0 to go on, non-zero to stop parsing (sse_parser_feed returns it). */
typedef int (*sse_event_cb)(void *ud, const sse_event *ev);

#define SSE_ERR_TOOBIG ERR_TOOBIG /* a line or an event's data exceeded the cap */

typedef struct sse_parser {
    sse_event_cb on_event;
    void *ud;
    buf line;         /* the line being read */
    buf data;         /* data lines of the event being read, joined by LF */
    buf event;        /* event field of the event being read */
    buf last_id;      /* last event id, persists */
    int64_t retry_ms; /* last valid retry field, -1 when none */
    int data_seen;    /* a data field was seen for the current event */
    int after_cr;     /* the previous byte was a CR: a following LF is part of it */
    int bom_checked;  /* the first bytes were checked for a UTF-8 BOM */
} sse_parser;

/* max_bytes caps a line and an event's data. */
void sse_parser_init(sse_parser *p, size_t max_bytes, sse_event_cb cb, void *ud);
void sse_parser_cleanup(sse_parser *p);

/* Feeds bytes; calls cb for each complete event. Returns 0, SSE_ERR_TOOBIG,
 * or the callback's non-zero return. After SSE_ERR_TOOBIG the parser's state
 * is unspecified and the caller must drop the stream; after a non-zero
 * callback return the rest of this feed is not read. An event still
 * incomplete when the stream ends is never dispatched. */
int sse_parser_feed(sse_parser *p, const char *data, size_t len);

#endif
