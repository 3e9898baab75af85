/*
 * http_int: what the http*.c files share and nothing else uses (the public
 * side is net/http.h). The module is split by concept: http.c holds the
 * server object, routing, requests and replies; http_conn.c the
 * connections (their count, the paused listener, the framing checks on
 * raw bytes); http_stream.c streamed answers; http_error.c error bodies
 * and the rewrite of evhttp's own error pages.
 */
#ifndef CHATPLANE_HTTP_INT_H
#define CHATPLANE_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/util.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>

#include "net/http.h"
#include "net/route.h"

struct evconnlistener;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;

#define HTTP__MAX_PARAMS  ROUTE_MAX_PARAMS
#define HTTP__HEADERS_MAX (64 * 1024) /* evhttp's cap on a request's headers */

/* One connection (http_conn.c), from its creation by evhttp to its close. */
typedef struct http__conn http__conn;
/* A route's target in the table (http.c). */
typedef struct http__route http__route;

struct http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    route_table *table;
    http__route *routes; /* the targets, freed with the server */
    http_handler fallback;
    void *fallback_ud;
    http_guard guard;
    void *guard_ud;
    http_options opts;
    bool draining;
    int rewriting; /* guards the error rewrite against its own callback */
    /* Streams with frames waiting in their own buffer, written together
     * by flush_ev once the current callbacks of the loop have run. */
    struct event *flush_ev;
    http_req *dirty;
    size_t ndirty; /* streams on the dirty list */
    /* Connections: created by evhttp (pending until their evhttp
     * connection is known), counted until they close. */
    http__conn *conns, *pending;
    struct event *adopt_ev;
    size_t nconns;
    /* Accepting pauses at the connection cap and when accept fails for
     * want of descriptors; resume_ev retries after a moment. */
    struct evconnlistener *lev;
    struct event *resume_ev;
    bool paused;
    int64_t pause_logged_ms;
    unsigned long accept_failures; /* since the last line about them */
    bool freeing;
    http_server *next_server; /* in the list http_conn.c keeps */
};

struct http_req {
    http_server *srv;
    struct evhttp_request *ev;
    struct evhttp_connection *evcon;
    char method[8];
    char *path;
    char *param_names[HTTP__MAX_PARAMS];
    char *param_values[HTTP__MAX_PARAMS];
    int nparams;
    struct evkeyvalq query;
    char id[65];
    int64_t start_ns; /* the monotonic clock when the request arrived */
    int status;
    /* Set by the guard. */
    bool auth_on, admin;
    char *owner;
    /* Streams. */
    bool streaming;
    bool peer_gone;   /* the connection closed before the owner ended the stream */
    bool ev_owned;    /* evhttp detached the request: freeing it is ours */
    bool chunked;     /* evhttp chose chunked transfer coding for the reply */
    bool is_dirty;    /* linked in srv->dirty */
    bool close;       /* the answer closes the connection */
    bool head;        /* a HEAD request: no body is ever sent */
    http__conn *conn; /* NULL when the connection was not adopted */
    http_req *dirty_prev, *dirty_next;
    http_close_cb on_close;
    void *close_ud;
    struct evbuffer *scratch; /* framed bytes not yet handed to the connection */
};

/* ---- http.c ---- */

/* Counts a response of this status on /metrics. */
void http__count(int status);
/* Writes the access log line of r and counts its response. */
void http__log(http_req *r);
/* Adds the request id and the security headers to r's answer. */
void http__common_headers(http_req *r);
/* Frees r (not its evhttp request), taking it off the dirty list. */
void http__req_free(http_req *r);

/* ---- http_conn.c ---- */

/* Sets up the connection count of a new server: evhttp's hook that
 * creates each connection, the events that adopt connections and resume
 * accepting, and the server's place in the list the listener's error
 * callback searches. */
void http__conns_init(http_server *s);
/* Forgets every connection left once evhttp is freed, and undoes
 * http__conns_init. */
void http__conns_free(http_server *s);
/* Watches the listener of s->sock, just bound, for failed accepts. */
void http__conns_listen(http_server *s);
/* The counted connection of evcon, or NULL when it was not adopted. */
http__conn *http__conn_find(http_server *s, struct evhttp_connection *evcon);
/* evhttp has read a whole request on c: the framing checks on raw bytes
 * start again with the next request, unless it is here already. */
void http__conn_request_read(http__conn *c);
/* The close callback of a counted connection (arg: its http__conn). */
void http__conn_closed(struct evhttp_connection *evcon, void *arg);

/* ---- http_stream.c ---- */

/* Takes r off the list of streams waiting for the flush. */
void http__undirty(http_req *r);
/* The flush event's callback (arg: the server): writes every dirty stream. */
void http__flush_cb(evutil_socket_t fd, short what, void *arg);

/* ---- http_error.c ---- */

/* {"error":{"code","message"}} as compact JSON, the message cleaned to
 * UTF-8; the caller frees it. */
char *http__error_json(const char *code, const char *msg);
/* Adds a whole JSON error response that closes the connection, for the
 * answers given outside evhttp's own request handling. */
void http__error_response(struct evbuffer *out, const char *version, int status, const char *code,
                          const char *msg);
/* The output buffer callback (arg: the server) that rewrites evhttp's own
 * HTML error pages into JSON errors. */
void http__rewrite_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg);

#endif
