/*
 * http: the HTTP server on libevent's evhttp, on the loop thread.
 *
 * A router (route.h) maps a method and a path pattern
 * ("/api/sessions/{id}/runs") to a handler; a path that exists with other methods answers 405 with
 * an Allow header, an unknown one 404, both as JSON errors (docs/api.md, Errors). Every response
 * carries the security headers of docs/api.md, Responses, and the request id (an incoming
 * X-Request-Id of sane form, else a new one), is counted for /metrics and written to the access
 * log as one line:
 *   level=info msg="request" method=GET path=/api/x status=200 duration_ms=1.2 request_id=…
 *
 * Errors that evhttp produces by itself (a body over the limit, a header it
 * cannot parse) would be HTML pages; the server rewrites them into the same
 * JSON error form before they leave.
 *
 * Every byte a connection receives is seen before evhttp parses it, so the
 * framing rules (framing.h) refuse a request before its body is read: the
 * answer goes straight to the socket and the connection ends. The same
 * rules run on the parsed headers of every request. Connections are counted
 * from creation to close; at http_options.max_connections, and while accept
 * fails for want of descriptors, the listener pauses instead of spinning.
 *
 * A handler owns its request until it answers it with one of the reply
 * functions (at once or later, from a callback); answering frees it. A
 * streamed reply (SSE) starts with http_stream_start and ends with
 * http_stream_end or http_stream_abort; when the peer goes away first, the
 * stream's close callback runs and the owner must still end the stream.
 */
#ifndef CHATPLANE_HTTP_H
#define CHATPLANE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct http_server http_server;
typedef struct http_req http_req;
typedef void (*http_handler)(http_req *r, void *ud);

typedef struct http_options {
    size_t body_bytes;      /* the largest request body (limits.body_bytes) */
    int timeout_seconds;    /* a request sender idle this long is dropped */
    size_t max_connections; /* accepting pauses at this many open connections; 0: no cap */
} http_options;

http_server *http_server_new(struct event_base *base, const http_options *o);
/* Frees the server and closes every connection still open. */
void http_server_free(http_server *s);
/* Registers the response counter on /metrics. Call before threads start. */
void http_metrics_register(void);

/* Registers a route. method is "GET", "POST", "PUT", "PATCH" or "DELETE"
 * (a GET route answers HEAD too); a pattern segment "{name}" matches one
 * non-empty segment, read with http_req_param. */
void http_route(http_server *s, const char *method, const char *pattern, http_handler h, void *ud);
/* The handler of GET and HEAD requests outside /api/ that no route
 * matches (the page and its files). Without one they answer 404. */
void http_set_fallback(http_server *s, http_handler h, void *ud);

/*
 * A guard runs before every route's handler and before the fallback (not
 * before the 404 and 405 answers, which reveal nothing). It either answers
 * r itself (refused) or calls next(r, next_ud), at once or later from a
 * callback; authentication and ownership checks live there.
 */
typedef void (*http_guard)(http_req *r, http_handler next, void *next_ud, void *ud);
void http_set_guard(http_server *s, http_guard g, void *ud);

/*
 * Binds host:port (port 0: any free port, written to *bound_port). Returns
 * 0, or -1 with err naming the address and the reason.
 */
int http_listen(http_server *s, const char *host, int port, int *bound_port, char *err,
                size_t errlen);
/* Stops accepting connections; requests on open ones answer 503. */
void http_stop_accepting(http_server *s);

/* ---- the request ---- */
const char *http_req_method(const http_req *r); /* "GET", … */
const char *http_req_path(const http_req *r);   /* as sent, without the query */
/* A pattern parameter, percent-decoded; NULL when the route has none. */
const char *http_req_param(const http_req *r, const char *name);
/* A query parameter, decoded; NULL when absent. */
const char *http_req_query(const http_req *r, const char *name);
const char *http_req_header(const http_req *r, const char *name);
const char *http_req_id(const http_req *r);
/* What the guard found out about the sender: whether authentication is
 * on, the name of the token used (the owner of what the request makes
 * and the only one who may see it; NULL when authentication is off) and
 * whether that token is an admin token. owner is copied. */
void http_req_set_auth(http_req *r, bool on, const char *owner, bool admin);
bool http_req_auth_on(const http_req *r);
const char *http_req_owner(const http_req *r);
bool http_req_admin(const http_req *r);
/* True when the Accept header names the media type (e.g. "text/event-stream"). */
bool http_req_accepts(const http_req *r, const char *media_type);

/*
 * Reads the request body as JSON. An empty body gives an empty object. A
 * non-empty body must be sent as application/json (else 415) and be valid
 * JSON (else 400 invalid_json naming line and column); one over the body
 * limit answers 413. Returns 0 and a new reference in *out, or -1 after
 * answering the request (which is then freed).
 */
int http_req_json_body(http_req *r, json_t **out);

/* ---- answers; each frees the request ---- */
/* Adds a response header before the answer. */
void http_reply_header(http_req *r, const char *name, const char *value);
/* Answers status with body dumped as compact JSON (reference stolen). */
void http_reply_json(http_req *r, int status, json_t *body);
/* Answers status with a JSON text already encoded. */
void http_reply_json_text(http_req *r, int status, const char *text, size_t len);
void http_reply(http_req *r, int status, const char *content_type, const void *data, size_t len);
/* Answers {"error":{"code","message"}}. */
void http_reply_error(http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers 204 with no body. */
void http_reply_no_content(http_req *r);

/* ---- streamed answers (SSE) ---- */
typedef void (*http_close_cb)(void *ud);
/*
 * Answers 200 with Content-Type content_type, Cache-Control: no-cache and
 * X-Accel-Buffering: no, and keeps the response open. The read time-out no
 * longer applies to this connection; a peer that takes nothing for a long
 * time is dropped by the write time-out. on_close runs once when the peer
 * goes away before the owner ends the stream.
 */
void http_stream_start(http_req *r, const char *content_type, http_close_cb on_close, void *ud);
/* Sends bytes (copied). Returns 0, or -1 when the peer is gone. */
int http_stream_write(http_req *r, const void *data, size_t len);
/* Sends bytes by reference: release(data, len, arg) runs once they are
 * written or dropped (at once for small writes, which are copied). Returns
 * 0, or -1 (release not called) when the peer is gone. */
int http_stream_write_ref(http_req *r, const void *data, size_t len,
                          void (*release)(const void *data, size_t len, void *arg), void *arg);
/* Bytes accepted but not yet handed to the kernel. */
size_t http_stream_pending(const http_req *r);
/* Ends the response after what was sent, and frees the request. */
void http_stream_end(http_req *r);
/* Drops the connection at once, unsent bytes included, and frees the
 * request. */
void http_stream_abort(http_req *r);

/* The HTTP reason phrase of a status ("Not Found"). */
const char *http_reason(int status);

/* True when the Content-Type value is application/json, parameters
 * allowed. */
bool http_is_json_type(const char *content_type);

#endif
