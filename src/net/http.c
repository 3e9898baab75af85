#include "net/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "core/evt.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"
#include "net/framing.h"
#include "net/route.h"

static void http__count(int status);

#define HTTP__MAX_PARAMS             ROUTE_MAX_PARAMS
#define HTTP__STREAM_WRITE_TIMEOUT_S 60
#define HTTP__STREAM_COPY_MAX        4096        /* stream writes up to this size are copied */
#define HTTP__HEADERS_MAX            (64 * 1024) /* evhttp's cap on a request's headers */
#define HTTP__HEAD_COPY_MAX          (HTTP__HEADERS_MAX + 8192) /* with the request line */
#define HTTP__DRAIN_MAX              (16u << 20) /* bytes discarded after an early refusal */
#define HTTP__RESUME_MS              250   /* accepting is retried this long after a failure */
#define HTTP__PAUSE_LOG_MS           10000 /* at most one line about pausing per interval */

/*
 * Where a connection's input stands, as seen by the framing checks that
 * run on every byte evhttp receives (see http__input_cb).
 */
typedef enum http__phase {
    HTTP__HEAD,   /* the next bytes start a request: its head is copied and checked */
    HTTP__CHUNKS, /* a chunked body's framing is being checked */
    HTTP__WAIT,   /* the body is evhttp's to read; the next request waits for the answer */
    HTTP__OFF,    /* pipelined requests: only the checks on parsed headers apply */
    HTTP__DRAIN   /* refused early: input is discarded until the peer closes */
} http__phase;

/* One connection, from its creation by evhttp to its close. */
typedef struct http__conn http__conn;
struct http__conn {
    http_server *srv;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until adopted */
    struct evbuffer_cb_entry *in_cb;
    http__conn *prev, *next; /* in srv->conns, or srv->pending before adoption */
    http__phase phase;
    buf head; /* the request head being received, in HTTP__HEAD */
    framing_chunks chunks;
    size_t drained;
};

/* A route's target in the table: its handler. */
typedef struct http__route {
    http_handler h;
    void *ud;
    struct http__route *next;
} http__route;

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
    http_server *next_server; /* in http__servers */
};

/* The servers that exist, to find one from its evhttp in the listener's
 * error callback (whose argument is evhttp's). Loop thread only. */
static http_server *http__servers;

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

static double http__ms_since(int64_t start_ns)
{
    return (double)(clock_mono_ns() - start_ns) / 1e6;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* The error code (docs/api.md, Errors) for a status evhttp chose by itself. */
static const char *http__code_for(int status)
{
    switch (status) {
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 501:
        return "not_implemented";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "bad_request";
    }
}

bool http_is_json_type(const char *ct)
{
    if (!ct) return false;
    while (*ct == ' ' || *ct == '\t') ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof want - 1) != 0) return false;
    ct += sizeof want - 1;
    while (*ct == ' ' || *ct == '\t') ct++;
    return *ct == '\0' || *ct == ';';
}

/* ---- error bodies ---- */

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t http__utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return len;
}

/*
 * Copies src into dst (cap bytes, NUL-terminated) with every byte that does
 * not start a valid UTF-8 sequence replaced by U+FFFD. Messages quote
 * paths, ids and header values as sent, and a JSON string must be UTF-8:
 * jansson refuses anything else, which would leave the error without its
 * message.
 */
static void http__utf8_clean(char *dst, size_t cap, const char *src)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t n = strlen(src), o = 0;
    while (n > 0) {
        size_t len = http__utf8_len(p, n);
        const char *from = len ? (const char *)p : "\xef\xbf\xbd";
        size_t out = len ? len : 3;
        if (o + out >= cap) break;
        memcpy(dst + o, from, out);
        o += out;
        p += len ? len : 1;
        n -= len ? len : 1;
    }
    dst[o] = '\0';
}

/* {"error":{"code","message"}} as compact JSON; the caller frees it. */
static char *http__error_json(const char *code, const char *msg)
{
    char clean[3 * 1024 + 1];
    http__utf8_clean(clean, sizeof clean, msg);
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(clean));
    json_t *o = json_object();
    json_object_set_new(o, "error", err);
    char *text = json_dumps(o, EVT_JSON_FLAGS);
    json_decref(o);
    return text;
}

static const char http__security_headers[] = "Content-Security-Policy: default-src 'self'\r\n"
                                             "X-Content-Type-Options: nosniff\r\n"
                                             "Referrer-Policy: no-referrer\r\n"
                                             "X-Frame-Options: DENY\r\n";

/* Adds a whole JSON error response that closes the connection, for the
 * answers given outside evhttp's own request handling. */
static void http__error_response(struct evbuffer *out, const char *version, int status,
                                 const char *code, const char *msg)
{
    char *body = http__error_json(code, msg);
    evbuffer_add_printf(out,
                        "%s %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n%s\r\n%s",
                        version, status, http_reason(status), strlen(body), http__security_headers,
                        body);
    free(body);
}

/* ---- rewriting evhttp's own HTML error pages ---- */

/*
 * evhttp answers some failures itself (a body over max_body_size, a request
 * it cannot parse) with an HTML page, before any handler runs. This output
 * buffer callback spots such a page as it is added (evhttp adds the body in
 * one piece after the header lines, and nothing leaves before the next
 * write event) and replaces the whole response with a JSON error of the
 * same status. The status line is the last "HTTP/1." before the page.
 */
static void http__rewrite_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    http_server *s = arg;
    static const char page[] = "<HTML><HEAD>\n<TITLE>";
    if (s->rewriting || info->n_added < sizeof page - 1) return;
    if (info->orig_size + info->n_added != evbuffer_get_length(out)) return;
    /* A socket bufferevent keeps the start of its output frozen between
     * writes; the rewrite lifts that for as long as it works. */
    char head[sizeof page - 1 + 3];
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(out, &at, info->orig_size, EVBUFFER_PTR_SET) != 0) return;
    bool thawed = false;
    if (evbuffer_copyout_from(out, &at, head, sizeof head) < 0) {
        evbuffer_unfreeze(out, 1);
        thawed = true;
        evbuffer_ptr_set(out, &at, info->orig_size, EVBUFFER_PTR_SET);
        if (evbuffer_copyout_from(out, &at, head, sizeof head) != (ev_ssize_t)sizeof head) goto out;
    }
    if (memcmp(head, page, sizeof page - 1) != 0) goto out;
    int status = (head[20] - '0') * 100 + (head[21] - '0') * 10 + (head[22] - '0');
    if (status < 400 || status > 599) goto out;

    /* Find the status line of this response. */
    size_t from = info->orig_size > 4096 ? info->orig_size - 4096 : 0;
    struct evbuffer_ptr p, last;
    last.pos = -1;
    evbuffer_ptr_set(out, &p, from, EVBUFFER_PTR_SET);
    for (;;) {
        struct evbuffer_ptr f = evbuffer_search(out, "HTTP/1.", 7, &p);
        if (f.pos < 0 || (size_t)f.pos >= info->orig_size) break;
        last = f;
        if (evbuffer_ptr_set(out, &p, (size_t)f.pos + 1, EVBUFFER_PTR_SET) != 0) break;
    }
    if (last.pos < 0) goto out;
    char version[9] = "HTTP/1.1";
    evbuffer_copyout_from(out, &last, version, 8);

    const char *msg = status == 413 ? "the request is larger than the server accepts"
                                    : "the request could not be read as HTTP";
    s->rewriting = 1;
    struct evbuffer *keep = evbuffer_new();
    evbuffer_remove_buffer(out, keep, (size_t)last.pos);
    evbuffer_drain(out, evbuffer_get_length(out));
    http__error_response(keep, version, status, http__code_for(status), msg);
    evbuffer_add_buffer(out, keep);
    evbuffer_free(keep);
    s->rewriting = 0;
    http__count(status);
    LOG(LOG_INFO, "request", "method=- path=- status=%d duration_ms=0.0 request_id=-", status);
out:
    if (thawed) evbuffer_freeze(out, 1);
}

/* ---- connections ---- */

static void http__conn_link(http__conn **head, http__conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

static void http__conn_unlink(http__conn **head, http__conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Writes the line about paused accepting at most once per interval,
 * with the failures counted since the last one. */
static void http__log_pause(http_server *s, const char *reason)
{
    int64_t now = clock_mono_ms();
    if (s->pause_logged_ms && now - s->pause_logged_ms < HTTP__PAUSE_LOG_MS) return;
    s->pause_logged_ms = now;
    LOG(LOG_WARN, "accepting connections paused",
        "reason=\"%s\" connections=%zu limit=%zu failures=%lu", reason, s->nconns,
        s->opts.max_connections, s->accept_failures);
    s->accept_failures = 0;
}

static void http__pause(http_server *s)
{
    if (s->paused || !s->lev) return;
    evconnlistener_disable(s->lev);
    s->paused = true;
}

/* Accepts again unless the server is at its connection cap. */
static void http__resume(http_server *s)
{
    if (!s->paused || !s->lev || s->freeing) return;
    if (s->opts.max_connections && s->nconns >= s->opts.max_connections) return;
    evconnlistener_enable(s->lev);
    s->paused = false;
    event_del(s->resume_ev);
}

static void http__resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http__resume(arg);
}

/*
 * accept failed with an error libevent does not retry by itself. Out of
 * descriptors (EMFILE, ENFILE) or memory, the pending connection stays in
 * the kernel's queue and the listening socket stays readable, so the loop
 * would call accept again at once, forever: the listener pauses instead,
 * until a connection closes or a short timer runs out.
 */
static void http__accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    http_server *s = http__servers;
    while (s && s->lev != lev) s = s->next_server;
    if (!s) return;
    s->accept_failures++;
    http__pause(s);
    struct timeval tv = {0, HTTP__RESUME_MS * 1000};
    event_add(s->resume_ev, &tv);
    http__log_pause(s, evutil_socket_error_to_string(e));
}

/* Forgets a connection; with_bev when its bufferevent still exists. */
static void http__conn_free(http__conn *c, bool with_bev)
{
    http_server *s = c->srv;
    if (with_bev) evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    buf_cleanup(&c->head);
    free(c);
    s->nconns--;
    http__resume(s);
}

/* evhttp is freeing the connection. */
static void http__conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    http__conn *c = arg;
    http__conn_unlink(&c->srv->conns, c);
    http__conn_free(c, true);
}

/*
 * Runs once the accept callback that created connections has returned,
 * when evhttp has set each one up: its bufferevent's callbacks then carry
 * the evhttp connection, whose close callback ends the count. A connection
 * evhttp freed meanwhile has had its callbacks cleared.
 */
static void http__adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_server *s = arg;
    while (s->pending) {
        http__conn *c = s->pending;
        http__conn_unlink(&s->pending, c);
        struct bufferevent *bev = c->bev;
        bufferevent_event_cb ecb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, NULL, NULL, &ecb, &cbarg);
        if (ecb && cbarg) {
            c->evcon = cbarg;
            evhttp_connection_set_closecb(c->evcon, http__conn_closed, c);
            http__conn_link(&s->conns, c);
        } else {
            http__conn_free(c, true);
        }
        bufferevent_decref(bev);
    }
}

static http__conn *http__conn_find(http_server *s, struct evhttp_connection *evcon)
{
    for (http__conn *c = s->conns; c; c = c->next)
        if (c->evcon == evcon) return c;
    return NULL;
}

static void http__head_reset(http__conn *c)
{
    buf_cleanup(&c->head);
    buf_init(&c->head, HTTP__HEAD_COPY_MAX);
}

/* Discards what the peer sent after an early refusal; past the cap the
 * read side is shut, which the loop sees as the peer's end. */
static void http__drain(http__conn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    c->drained += n;
    evbuffer_drain(in, n);
    if (c->drained > HTTP__DRAIN_MAX) shutdown(bufferevent_getfd(c->bev), SHUT_RD);
}

/*
 * Answers a request refused before evhttp read it, and ends the
 * connection: the answer is written straight to the socket (evhttp, still
 * reading the request, has nothing queued), the write side is shut so the
 * peer reads the answer and then the end, and whatever else arrives is
 * discarded until the peer closes, so that it is not reset while it still
 * sends and can read the answer. evhttp frees the connection on that end
 * or at its idle time-out.
 */
static void http__refuse(http__conn *c, int status, const char *code, const char *msg)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    c->phase = HTTP__DRAIN;
    http__head_reset(c);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        struct evbuffer *resp = evbuffer_new();
        http__error_response(resp, "HTTP/1.1", status, code, msg);
        size_t len = evbuffer_get_length(resp);
        const char *data = (const char *)evbuffer_pullup(resp, -1);
        size_t sent = 0;
        while (sent < len) {
            ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            sent += (size_t)w;
        }
        evbuffer_free(resp);
    }
    shutdown(fd, SHUT_WR);
    http__count(status);
    LOG(LOG_INFO, "request", "method=- path=- status=%d duration_ms=0.0 request_id=-", status);
    http__drain(c, in);
}

static void http__feed(http__conn *c, const char *p, size_t n);

/* The head of a request is complete in c->head: applies the framing rules
 * before evhttp reads any of the body. */
static void http__head_done(http__conn *c, size_t end)
{
    size_t lines = 0;
    for (size_t i = 0; i < end; i++) lines += c->head.data[i] == '\n';
    framing_header *h = xmalloc((lines + 1) * sizeof *h);
    int n = framing_split(c->head.data, end, h, (int)lines + 1);
    framing_verdict v = {0};
    if (n >= 0) framing_check(h, n, c->srv->opts.body_bytes, &v);
    free(h);
    if (v.status) {
        http__refuse(c, v.status, v.code, v.message);
        return;
    }
    /* A head evhttp cannot split is evhttp's to refuse. */
    c->phase = n >= 0 && v.chunked ? HTTP__CHUNKS : HTTP__WAIT;
    if (c->phase == HTTP__CHUNKS) framing_chunks_init(&c->chunks, c->srv->opts.body_bytes);
    buf rest = c->head;
    buf_init(&c->head, HTTP__HEAD_COPY_MAX);
    if (c->phase == HTTP__CHUNKS && rest.len > end) http__feed(c, rest.data + end, rest.len - end);
    buf_cleanup(&rest);
}

/* Reads n bytes of the connection's input in the order they arrived. */
static void http__feed(http__conn *c, const char *p, size_t n)
{
    if (c->phase == HTTP__HEAD) {
        size_t before = c->head.len;
        if (buf_append(&c->head, p, n) != 0) {
            /* Longer than evhttp accepts: evhttp refuses it. */
            http__head_reset(c);
            c->phase = HTTP__OFF;
            return;
        }
        size_t end = framing_head_end(c->head.data, c->head.len, before);
        if (end) http__head_done(c, end);
        return;
    }
    if (c->phase != HTTP__CHUNKS) return;
    size_t used;
    char err[160];
    int rc = framing_chunks_feed(&c->chunks, p, n, &used, err, sizeof err);
    if (rc == FRAMING_DONE)
        c->phase = HTTP__WAIT;
    else if (rc == FRAMING_BAD)
        http__refuse(c, 400, "bad_request", err);
    else if (rc == FRAMING_TOO_LARGE)
        http__refuse(c, 413, "payload_too_large", "the request is larger than the server accepts");
}

/*
 * Sees every byte a connection receives as it is added to the input
 * buffer, before evhttp's read callback parses it: evhttp offers no hook
 * between a request's headers and its body, and decides by itself how
 * long a body is. The bytes just added are the buffer's last n_added.
 */
static void http__input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    http__conn *c = arg;
    if (info->n_added == 0) return;
    if (c->phase == HTTP__DRAIN) {
        http__drain(c, in);
        return;
    }
    size_t len = evbuffer_get_length(in), left = info->n_added;
    if (left > len) left = len;
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(in, &at, len - left, EVBUFFER_PTR_SET) != 0) return;
    char chunk[4096];
    while (left > 0 && (c->phase == HTTP__HEAD || c->phase == HTTP__CHUNKS)) {
        size_t k = left < sizeof chunk ? left : sizeof chunk;
        if (evbuffer_copyout_from(in, &at, chunk, k) != (ev_ssize_t)k) return;
        evbuffer_ptr_set(in, &at, k, EVBUFFER_PTR_ADD);
        left -= k;
        http__feed(c, chunk, k);
    }
}

/* Creates each connection's bufferevent, watched by the rewrite and the
 * framing checks, and counts the connection. */
static struct bufferevent *http__bevcb(struct event_base *base, void *arg)
{
    http_server *s = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) return NULL;
    evbuffer_add_cb(bufferevent_get_output(bev), http__rewrite_cb, s);
    http__conn *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->bev = bev;
    c->phase = HTTP__HEAD;
    buf_init(&c->head, HTTP__HEAD_COPY_MAX);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), http__input_cb, c);
    /* Held until adoption, so a connection evhttp frees first is seen. */
    bufferevent_incref(bev);
    http__conn_link(&s->pending, c);
    event_active(s->adopt_ev, EV_TIMEOUT, 1);
    s->nconns++;
    if (s->opts.max_connections && s->nconns >= s->opts.max_connections) {
        http__pause(s);
        http__log_pause(s, "limits.connections reached");
    }
    return bev;
}

/* ---- requests ---- */

static const char *http__method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "UNKNOWN";
}

/* True for 1..64 characters of [A-Za-z0-9._:-]. */
static bool http__sane_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
        if (n >= 64) return false;
    }
    return n > 0;
}

static void http__undirty(http_req *r);

static void http__req_free(http_req *r)
{
    http__undirty(r);
    free(r->path);
    free(r->owner);
    for (int i = 0; i < r->nparams; i++) {
        free(r->param_names[i]);
        free(r->param_values[i]);
    }
    evhttp_clear_headers(&r->query);
    if (r->scratch) evbuffer_free(r->scratch);
    free(r);
}

/* Responses by status on /metrics; NULL until http_metrics_register. */
static metrics_family *http__responses;

void http_metrics_register(void)
{
    http__responses = metrics_counter_new("chatplane_http_requests_total",
                                          "HTTP responses sent, by status code.", "code");
}

static void http__count(int status)
{
    char v[BUF_I64_LEN];
    buf_i64_text(v, status);
    metrics_add(http__responses, v, 1);
}

/* Writes the access log line and counts the response. */
static void http__log(http_req *r)
{
    char path[256];
    size_t n = 0;
    for (const char *p = r->path; *p && n < sizeof path - 1; p++)
        path[n++] = (*p > ' ' && *p != '"' && (unsigned char)*p < 0x7f) ? *p : '?';
    path[n] = '\0';
    http__count(r->status);
    LOG(LOG_INFO, "request", "method=%s path=%s status=%d duration_ms=%.1f request_id=%s",
        r->method, path, r->status, http__ms_since(r->start_ns), r->id);
}

static void http__common_headers(http_req *r)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "X-Request-Id", r->id);
    evhttp_add_header(h, "Content-Security-Policy", "default-src 'self'");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
}

void http_reply_header(http_req *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

void http_reply(http_req *r, int status, const char *content_type, const void *data, size_t len)
{
    r->status = status;
    http__common_headers(r);
    if (content_type) http_reply_header(r, "Content-Type", content_type);
    if (r->srv->draining || r->close) http_reply_header(r, "Connection", "close");
    struct evbuffer *body = evhttp_request_get_output_buffer(r->ev);
    if (len && !r->head) evbuffer_add(body, data, len);
    evhttp_send_reply(r->ev, status, http_reason(status), NULL);
    http__log(r);
    http__req_free(r);
}

void http_reply_json_text(http_req *r, int status, const char *text, size_t len)
{
    http_reply(r, status, "application/json", text, len);
}

void http_reply_json(http_req *r, int status, json_t *body)
{
    char *text = json_dumps(body, EVT_JSON_FLAGS);
    json_decref(body);
    http_reply_json_text(r, status, text, strlen(text));
    free(text);
}

void http_reply_error(http_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *text = http__error_json(code, msg);
    http_reply_json_text(r, status, text, strlen(text));
    free(text);
}

void http_reply_no_content(http_req *r)
{
    http_reply(r, 204, NULL, NULL, 0);
}

const char *http_req_method(const http_req *r)
{
    return r->method;
}

const char *http_req_path(const http_req *r)
{
    return r->path;
}

const char *http_req_param(const http_req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->param_names[i], name) == 0) return r->param_values[i];
    return NULL;
}

const char *http_req_query(const http_req *r, const char *name)
{
    return evhttp_find_header(&r->query, name);
}

const char *http_req_header(const http_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

const char *http_req_id(const http_req *r)
{
    return r->id;
}

void http_req_set_auth(http_req *r, bool on, const char *owner, bool admin)
{
    r->auth_on = on;
    free(r->owner);
    r->owner = owner ? xstrdup(owner) : NULL;
    r->admin = admin;
}

bool http_req_auth_on(const http_req *r)
{
    return r->auth_on;
}

const char *http_req_owner(const http_req *r)
{
    return r->owner;
}

bool http_req_admin(const http_req *r)
{
    return r->admin;
}

bool http_req_accepts(const http_req *r, const char *media_type)
{
    const char *a = http_req_header(r, "Accept");
    if (!a) return false;
    size_t n = strlen(media_type);
    for (const char *p = a; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (strncasecmp(p, media_type, n) == 0) {
            char c = p[n];
            if (c == '\0' || c == ',' || c == ';' || c == ' ' || c == '\t') return true;
        }
        p = strchr(p, ',');
        if (!p) break;
    }
    return false;
}

int http_req_json_body(http_req *r, json_t **out)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t len = evbuffer_get_length(in);
    if (len > r->srv->opts.body_bytes) {
        http_reply_error(r, 413, "payload_too_large", "the request body is larger than %zu bytes",
                         r->srv->opts.body_bytes);
        return -1;
    }
    if (len == 0) {
        *out = json_object();
        return 0;
    }
    const char *ct = http_req_header(r, "Content-Type");
    if (!http_is_json_type(ct)) {
        http_reply_error(r, 415, "unsupported_media_type",
                         "the body must be sent as application/json, not %.100s",
                         ct ? ct : "without a Content-Type");
        return -1;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t je;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        http_reply_error(r, 400, "invalid_json", "invalid JSON at line %d, column %d: %s", je.line,
                         je.column, je.text);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- streams ---- */

/* The peer closed (or the connection failed) before the owner ended the
 * stream. evhttp has detached the request when it failed on its own; when
 * the whole server is being freed it has not, and frees it itself. */
static void http__stream_closed(struct evhttp_connection *evcon, void *arg)
{
    http_req *r = arg;
    if (r->conn) {
        /* The connection is going down: its count ends here. */
        http__conn_closed(evcon, r->conn);
        r->conn = NULL;
    }
    if (r->peer_gone) return;
    r->peer_gone = true;
    r->ev_owned = evhttp_request_get_connection(r->ev) == NULL;
    if (r->on_close) r->on_close(r->close_ud);
}

/* Gives the connection's close callback back to its count. */
static void http__stream_release_close(http_req *r)
{
    if (r->conn)
        evhttp_connection_set_closecb(r->evcon, http__conn_closed, r->conn);
    else
        evhttp_connection_set_closecb(r->evcon, NULL, NULL);
}

void http_stream_start(http_req *r, const char *content_type, http_close_cb on_close, void *ud)
{
    r->status = 200;
    r->streaming = true;
    r->on_close = on_close;
    r->close_ud = ud;
    r->scratch = evbuffer_new();
    http__common_headers(r);
    http_reply_header(r, "Content-Type", content_type);
    http_reply_header(r, "Cache-Control", "no-cache");
    http_reply_header(r, "X-Accel-Buffering", "no");
    /* A stream is the connection's last response, so the changed time-outs
     * below never apply to a later request. */
    http_reply_header(r, "Connection", "close");
    evhttp_send_reply_start(r->ev, 200, "OK");
    const char *te =
        evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Transfer-Encoding");
    r->chunked = te && strcasecmp(te, "chunked") == 0;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
    /* No error page of evhttp's can follow on this connection, and the
     * rewrite's look at every write would cost a walk over the whole
     * output buffer per frame, quadratic in a backlog. */
    evbuffer_remove_cb(bufferevent_get_output(bev), http__rewrite_cb, r->srv);
    /* Each event must leave at once, not wait for the ACK of the previous
     * one (Nagle), which a delayed ACK can hold back by tens of ms. */
    int one = 1;
    setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval wtv = {HTTP__STREAM_WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(bev, NULL, &wtv);
    evhttp_connection_set_closecb(r->evcon, http__stream_closed, r);
}

/*
 * Stream frames are not handed to evhttp one by one. Each write frames the
 * data (chunked when evhttp chose that coding) into the request's own
 * buffer and marks the stream dirty; once the loop has run the callbacks
 * that are due (typically the publication of one committed batch), one
 * flush writes each dirty stream's frames with a single writev straight to
 * its socket. Handing every frame to the bufferevent instead would cost a
 * loop iteration and two epoll_ctl calls per frame (the write event is
 * armed when data arrives and disarmed once it is written), and one
 * syscall per frame where a batch holds several. Only what the socket does
 * not take at once goes to the bufferevent, which then writes it with its
 * write time-out as before; frames never overtake it, since the direct
 * write happens only while its output is empty.
 */
static void http__undirty(http_req *r)
{
    if (!r->is_dirty) return;
    if (r->dirty_prev) {
        r->dirty_prev->dirty_next = r->dirty_next;
    } else {
        r->srv->dirty = r->dirty_next;
    }
    if (r->dirty_next) r->dirty_next->dirty_prev = r->dirty_prev;
    r->dirty_prev = r->dirty_next = NULL;
    r->is_dirty = false;
}

static void http__mark_dirty(http_req *r)
{
    if (r->is_dirty) return;
    http_server *s = r->srv;
    if (!s->dirty) event_active(s->flush_ev, EV_WRITE, 0);
    r->dirty_prev = NULL;
    r->dirty_next = s->dirty;
    if (s->dirty) s->dirty->dirty_prev = r;
    s->dirty = r;
    r->is_dirty = true;
}

/* Moves the stream's framed bytes towards its socket (see above). */
static void http__stream_push(http_req *r)
{
    http__undirty(r);
    if (evbuffer_get_length(r->scratch) == 0) return;
    if (r->peer_gone) {
        evbuffer_drain(r->scratch, evbuffer_get_length(r->scratch));
        return;
    }
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
    struct evbuffer *out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0) {
        /* A failure other than EAGAIN leaves the bytes in place; the
         * bufferevent meets the same error on its own write and reports
         * the closed connection through evhttp as usual. */
        (void)evbuffer_write(r->scratch, bufferevent_getfd(bev));
        if (evbuffer_get_length(r->scratch) == 0) return;
    }
    evbuffer_add_buffer(out, r->scratch);
    if (!(bufferevent_get_enabled(bev) & EV_WRITE)) bufferevent_enable(bev, EV_WRITE);
}

static void http__flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_server *s = arg;
    while (s->dirty) http__stream_push(s->dirty);
}

/* Frames data into the stream's buffer: by reference when release is set
 * and the frame is large, else as a copy (a small copy costs less than a
 * reference's bookkeeping). */
static int http__stream_frame(http_req *r, const void *data, size_t len,
                              void (*release)(const void *, size_t, void *), void *arg)
{
    if (r->peer_gone) return -1;
    if (len == 0 || r->head) {
        if (release) release(data, len, arg);
        return 0;
    }
    if (r->chunked) evbuffer_add_printf(r->scratch, "%zx\r\n", len);
    if (release && len > HTTP__STREAM_COPY_MAX) {
        evbuffer_add_reference(r->scratch, data, len, release, arg);
    } else {
        evbuffer_add(r->scratch, data, len);
        if (release) release(data, len, arg);
    }
    if (r->chunked) evbuffer_add(r->scratch, "\r\n", 2);
    http__mark_dirty(r);
    return 0;
}

int http_stream_write(http_req *r, const void *data, size_t len)
{
    return http__stream_frame(r, data, len, NULL, NULL);
}

int http_stream_write_ref(http_req *r, const void *data, size_t len,
                          void (*release)(const void *data, size_t len, void *arg), void *arg)
{
    return http__stream_frame(r, data, len, release, arg);
}

size_t http_stream_pending(const http_req *r)
{
    if (r->peer_gone) return 0;
    return evbuffer_get_length(r->scratch) +
           evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(r->evcon)));
}

void http_stream_end(http_req *r)
{
    http__stream_push(r);
    if (!r->peer_gone) {
        http__stream_release_close(r);
        evhttp_send_reply_end(r->ev);
    } else if (r->ev_owned) {
        /* Detached: this frees the request. */
        evhttp_send_reply_end(r->ev);
    }
    http__log(r);
    http__req_free(r);
}

void http_stream_abort(http_req *r)
{
    if (!r->peer_gone) {
        http__stream_release_close(r);
        evhttp_connection_free(r->evcon);
    } else if (r->ev_owned) {
        evhttp_send_reply_end(r->ev);
    }
    http__log(r);
    http__req_free(r);
}

/* ---- routing ---- */

void http_route(http_server *s, const char *method, const char *pattern, http_handler h, void *ud)
{
    http__route *rt = xcalloc(1, sizeof *rt);
    rt->h = h;
    rt->ud = ud;
    rt->next = s->routes;
    s->routes = rt;
    if (route_add(s->table, method, pattern, rt) != 0) {
        LOG(LOG_ERROR, "a route pattern is malformed", "method=%s pattern=%s", method, pattern);
        abort();
    }
}

void http_set_fallback(http_server *s, http_handler h, void *ud)
{
    s->fallback = h;
    s->fallback_ud = ud;
}

void http_set_guard(http_server *s, http_guard g, void *ud)
{
    s->guard = g;
    s->guard_ud = ud;
}

/* Runs a handler, behind the guard when there is one. */
static void http__run(http_server *s, http_req *r, http_handler h, void *ud)
{
    if (s->guard)
        s->guard(r, h, ud, s->guard_ud);
    else
        h(r, ud);
}

/* Finds the route for r and runs it, or answers 404/405. */
static void http__dispatch(http_server *s, http_req *r)
{
    route_match m;
    route_find(s->table, r->method, r->path, &m);
    if (m.target) {
        for (int i = 0; i < m.nparams; i++) {
            r->param_names[i] = m.names[i];
            r->param_values[i] = m.values[i];
        }
        r->nparams = m.nparams;
        m.nparams = 0;
        http__route *rt = m.target;
        http__run(s, r, rt->h, rt->ud);
        return;
    }
    if (m.allow[0]) {
        http_reply_header(r, "Allow", m.allow);
        http_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s; allowed: %s",
                         r->method, r->path, m.allow);
        return;
    }
    bool page = strncmp(r->path, "/api/", 5) != 0 && strcmp(r->path, "/api") != 0;
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    if (page && s->fallback && get) {
        http__run(s, r, s->fallback, s->fallback_ud);
        return;
    }
    if (page && s->fallback) {
        http_reply_header(r, "Allow", "GET, HEAD");
        http_reply_error(r, 405, "method_not_allowed",
                         "%s is not allowed on %s; allowed: GET, HEAD", r->method, r->path);
        return;
    }
    http_reply_error(r, 404, "not_found", "no route for %s %s", r->method, r->path);
}

/*
 * The framing rules again, on the headers evhttp parsed: the checks on the
 * raw head do not see pipelined requests. Refused: answers and returns -1;
 * the connection closes, since its input can no longer be trusted to
 * start at a request.
 */
static int http__check_parsed(http_req *r)
{
    struct evkeyvalq *hs = evhttp_request_get_input_headers(r->ev);
    struct evkeyval *kv;
    int n = 0;
    TAILQ_FOREACH(kv, hs, next) n++;
    framing_header *h = xmalloc(((size_t)n + 1) * sizeof *h);
    n = 0;
    TAILQ_FOREACH(kv, hs, next)
    {
        h[n].name = kv->key;
        h[n].name_len = strlen(kv->key);
        h[n].value = kv->value;
        h[n].value_len = strlen(kv->value);
        n++;
    }
    framing_verdict v;
    framing_check(h, n, r->srv->opts.body_bytes, &v);
    free(h);
    if (!v.status) return 0;
    r->close = true;
    http_reply_error(r, v.status, v.code, "%s", v.message);
    return -1;
}

/* evhttp's one callback: builds the request context and routes it. */
static void http__gencb(struct evhttp_request *ev, void *arg)
{
    http_server *s = arg;
    http_req *r = xcalloc(1, sizeof *r);
    r->start_ns = clock_mono_ns();
    r->srv = s;
    r->ev = ev;
    r->evcon = evhttp_request_get_connection(ev);
    snprintf(r->method, sizeof r->method, "%s", http__method_name(evhttp_request_get_command(ev)));
    TAILQ_INIT(&r->query);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    r->path = xstrdup(path && *path ? path : "/");
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q) evhttp_parse_query_str(q, &r->query);
    const char *rid = evhttp_find_header(evhttp_request_get_input_headers(ev), "X-Request-Id");
    if (rid && http__sane_id(rid)) {
        snprintf(r->id, sizeof r->id, "%s", rid);
    } else {
        unsigned char rnd[8];
        id_random_bytes(rnd, sizeof rnd);
        for (int i = 0; i < 8; i++) snprintf(r->id + 2 * i, 3, "%02x", rnd[i]);
    }
    r->head = strcmp(r->method, "HEAD") == 0;
    r->conn = http__conn_find(s, r->evcon);
    if (r->conn && r->conn->phase != HTTP__DRAIN) {
        /* The request is read; the next one starts with the connection's
         * next bytes, unless some are here already (pipelined), which
         * evhttp reads without a callback in between. */
        bool pipelined = evbuffer_get_length(bufferevent_get_input(r->conn->bev)) > 0;
        r->conn->phase = pipelined ? HTTP__OFF : HTTP__HEAD;
        http__head_reset(r->conn);
    }
    if (http__check_parsed(r) != 0) return;
    if (s->draining) {
        http_reply_error(r, 503, "unavailable", "the server is shutting down");
        return;
    }
    http__dispatch(s, r);
}

http_server *http_server_new(struct event_base *base, const http_options *o)
{
    http_server *s = xcalloc(1, sizeof *s);
    s->base = base;
    s->opts = *o;
    s->table = route_table_new();
    s->http = evhttp_new(base);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)o->body_bytes);
    evhttp_set_max_headers_size(s->http, HTTP__HEADERS_MAX);
    evhttp_set_default_content_type(s->http, NULL);
    /* A body over the limit that the framing checks did not see first (a
     * pipelined request's) is read to its end before evhttp answers, so
     * the client is not reset while it still sends and can read the 413. */
    evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
    struct timeval tv = {o->timeout_seconds > 0 ? o->timeout_seconds : 30, 0};
    evhttp_set_timeout_tv(s->http, &tv);
    evhttp_set_bevcb(s->http, http__bevcb, s);
    evhttp_set_gencb(s->http, http__gencb, s);
    s->flush_ev = event_new(base, -1, 0, http__flush_cb, s);
    s->adopt_ev = event_new(base, -1, 0, http__adopt_cb, s);
    s->resume_ev = evtimer_new(base, http__resume_cb, s);
    s->next_server = http__servers;
    http__servers = s;
    return s;
}

void http_server_free(http_server *s)
{
    if (!s) return;
    s->freeing = true;
    /* Every open connection's close callback runs here. */
    evhttp_free(s->http);
    while (s->pending) {
        http__conn *c = s->pending;
        struct bufferevent *bev = c->bev;
        http__conn_unlink(&s->pending, c);
        http__conn_free(c, true);
        bufferevent_decref(bev);
    }
    while (s->conns) {
        http__conn *c = s->conns;
        http__conn_unlink(&s->conns, c);
        http__conn_free(c, false);
    }
    for (http_server **p = &http__servers; *p; p = &(*p)->next_server)
        if (*p == s) {
            *p = s->next_server;
            break;
        }
    event_free(s->adopt_ev);
    event_free(s->resume_ev);
    event_free(s->flush_ev);
    route_table_free(s->table);
    http__route *rt = s->routes;
    while (rt) {
        http__route *next = rt->next;
        free(rt);
        rt = next;
    }
    free(s);
}

int http_listen(http_server *s, const char *host, int port, int *bound_port, char *err,
                size_t errlen)
{
    errno = 0;
    s->sock = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (!s->sock) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
                 e ? evutil_socket_error_to_string(e) : "the address could not be bound");
        return -1;
    }
    s->lev = evhttp_bound_socket_get_listener(s->sock);
    evconnlistener_set_error_cb(s->lev, http__accept_error);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->sock);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

void http_stop_accepting(http_server *s)
{
    if (s->sock) {
        evhttp_del_accept_socket(s->http, s->sock);
        s->sock = NULL;
        s->lev = NULL;
        s->paused = false;
        event_del(s->resume_ev);
    }
    s->draining = true;
}
