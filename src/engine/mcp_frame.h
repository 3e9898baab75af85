/*
 * mcp_frame: the pure part of the MCP stdio client (docs/mcp.md, Protocol).
 *
 * - A line reader with a hard cap: one JSON-RPC message per line. A line
 *   longer than the cap is reported as an error and skipped up to the next
 *   newline without being buffered; only its first and last bytes are kept,
 *   to find the id of the request it answers.
 * - Classification of a received message: a response (result or error) to
 *   one of our requests, a request from the server, or a notification.
 * - Encoding of what the client sends: requests, notifications, and the
 *   answers to the server's own requests (ping gets an empty result,
 *   anything else -32601).
 * - The text of a tools/call result, as the model and the timeline see it.
 *
 * No I/O, no clock: everything here is unit tested and fuzzed.
 */
#ifndef CHATPLANE_MCP_FRAME_H
#define CHATPLANE_MCP_FRAME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define MCP_FRAME_SNIFF 256 /* bytes kept from each end of an over-long line */

/* ---- line reader ---- */

typedef struct mcp_line {
    /* The line without its LF (and without a CR just before it),
     * NUL-terminated; NULL for an over-long line. Valid during the callback. */
    const char *data;
    size_t len; /* its length; for an over-long line, how long it was */
    bool toobig;
    /* Over-long lines only: the top-level integer "id" found in the line's
     * first or last MCP_FRAME_SNIFF bytes, else -1; and the first bytes, for
     * the log. */
    int64_t id;
    const char *head;
    size_t head_len;
} mcp_line;

/* Returns 0 to go on; anything else stops the feed, which returns it. */
typedef int (*mcp_line_fn)(void *ud, const mcp_line *line);

typedef struct mcp_reader {
    buf line; /* the line being read, at most cap bytes */
    size_t cap;
    bool skipping; /* inside an over-long line: drop bytes up to the LF */
    size_t skipped;
    char head[MCP_FRAME_SNIFF];
    size_t head_len;
    char tail[MCP_FRAME_SNIFF];
    size_t tail_len;
} mcp_reader;

/* A reader for lines of at most cap bytes (the LF not counted). */
void mcp_reader_init(mcp_reader *r, size_t cap);
void mcp_reader_cleanup(mcp_reader *r);
/*
 * Feeds bytes; calls fn for every complete line, empty lines left out. A
 * partial line at the end waits for the next feed. Returns 0 or the first
 * non-zero value fn returned; the bytes after that line are then dropped
 * (the caller is abandoning the stream).
 */
int mcp_reader_feed(mcp_reader *r, const char *data, size_t len, mcp_line_fn fn, void *ud);

/*
 * The id of a JSON-RPC message seen only by its first bytes (head) and its
 * last bytes (tail): an integer "id" member of the top-level object, found
 * by reading the head's members from the front, or the last one or two
 * members (an "id" possibly followed by "jsonrpc":"2.0") from the back of
 * the tail. Returns -1 when neither shows one.
 */
int64_t mcp_frame_sniff_id(const char *head, size_t head_len, const char *tail, size_t tail_len);

/* ---- messages ---- */

typedef enum mcp_msg_kind {
    MCP_MSG_INVALID,      /* not JSON, not an object, or not JSON-RPC */
    MCP_MSG_RESULT,       /* a response with a result */
    MCP_MSG_ERROR,        /* a response with an error */
    MCP_MSG_REQUEST,      /* a request from the server (method and id) */
    MCP_MSG_NOTIFICATION, /* method and no id */
} mcp_msg_kind;

typedef struct mcp_msg {
    mcp_msg_kind kind;
    json_t *root; /* owned; NULL when the line was not JSON */
    json_t *id;   /* borrowed from root; NULL for notifications */
    bool id_is_int;
    int64_t id_int;            /* when id_is_int */
    const char *method;        /* requests and notifications */
    json_t *params;            /* borrowed; may be NULL */
    json_t *result;            /* MCP_MSG_RESULT */
    int64_t error_code;        /* MCP_MSG_ERROR */
    const char *error_message; /* MCP_MSG_ERROR; "" when the server gave none */
} mcp_msg;

/*
 * Parses and classifies one line. Always fills *m (kind MCP_MSG_INVALID with
 * why in err when the line is not a JSON-RPC message); returns 0 or -1.
 * mcp_msg_cleanup must be called either way.
 */
int mcp_msg_parse(const char *line, size_t len, mcp_msg *m, char *err, size_t errlen);
void mcp_msg_cleanup(mcp_msg *m);

/* "JSON-RPC error -32602: <message>" for an error response; caller frees. */
char *mcp_msg_error_text(const mcp_msg *m);

/* ---- encoding; every one returns a new string ending in LF; caller frees ---- */

/* {"jsonrpc":"2.0","id":<id>,"method":…,"params":…}; params is stolen (NULL: none). */
char *mcp_frame_request(int64_t id, const char *method, json_t *params, size_t *len);
/* {"jsonrpc":"2.0","method":…,"params":…}; params is stolen (NULL: none). */
char *mcp_frame_notification(const char *method, json_t *params, size_t *len);
/* The answer to a request from the server: ping gets {"result":{}}, any
 * other method error -32601 "Method not found: <method>". */
char *mcp_frame_answer(const mcp_msg *request, size_t *len);

/* The answer to a server's request id (borrowed): {"result": result}
 * (stolen), or an error with code and message. */
char *mcp_frame_result(const json_t *id, json_t *result, size_t *len);
char *mcp_frame_error(const json_t *id, int64_t code, const char *message, size_t *len);

/* ---- tools ---- */

/*
 * The text of a tools/call result, appended to out up to its cap (a longer
 * text is cut): the text parts of "content" joined with LF, other parts as a
 * short placeholder ("[image: image/png]", "[resource: file:///x]"); when
 * no part gives any text, "structuredContent" as compact JSON. Returns true
 * when the result says isError.
 */
bool mcp_frame_result_text(const json_t *result, buf *out);

#endif
