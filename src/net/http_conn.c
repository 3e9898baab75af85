/*
 * http_conn: the connections of the HTTP server. Each is counted from its
 * creation by evhttp to its close; at the connection cap, and while accept
 * fails for want of descriptors, the listener pauses. Every byte a
 * connection receives is seen before evhttp parses it, so the framing rules
 * (framing.h) refuse a request before its body is read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/loopprio.h"
#include "lib/xmalloc.h"
#include "net/framing.h"
#include "net/http_int.h"

#define HTTP_CONN__HEAD_COPY_MAX (HTTP__HEADERS_MAX + 8192) /* with the request line */
#define HTTP_CONN__DRAIN_MAX     (16u << 20) /* bytes discarded after an early refusal */
#define HTTP_CONN__RESUME_MS     250         /* accepting is retried this long after a failure */
#define HTTP_CONN__PAUSE_LOG_MS  10000       /* at most one line about pausing per interval */

/*
 * Where a connection's input stands, as seen by the framing checks that
 * run on every byte evhttp receives (see http_conn__input_cb).
 */
typedef enum http_conn__phase {
    HTTP_CONN__HEAD,   /* the next bytes start a request: its head is copied and checked */
    HTTP_CONN__CHUNKS, /* a chunked body's framing is being checked */
    HTTP_CONN__WAIT,   /* the body is evhttp's to read; the next request waits for the answer */
    HTTP_CONN__OFF,    /* pipelined requests: only the checks on parsed headers apply */
    HTTP_CONN__DRAIN   /* refused early: input is discarded until the peer closes */
} http_conn__phase;

struct http__conn {
    http_server *srv;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until adopted */
    struct evbuffer_cb_entry *in_cb;
    http__conn *prev, *next; /* in srv->conns, or srv->pending before adoption */
    http_conn__phase phase;
    buf head; /* the request head being received, in HTTP_CONN__HEAD */
    framing_chunks chunks;
    size_t drained;
};

/* The servers that exist, to find one from its evhttp in the listener's
 * error callback (whose argument is evhttp's). Loop thread only. */
static http_server *http_conn__servers;

static void http_conn__link(http__conn **head, http__conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

static void http_conn__unlink(http__conn **head, http__conn *c)
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
static void http_conn__log_pause(http_server *s, const char *reason)
{
    int64_t now = clock_mono_ms();
    if (s->pause_logged_ms && now - s->pause_logged_ms < HTTP_CONN__PAUSE_LOG_MS) return;
    s->pause_logged_ms = now;
    LOG(LOG_WARN, "accepting connections paused",
        "reason=\"%s\" connections=%zu limit=%zu failures=%lu", reason, s->nconns,
        s->opts.max_connections, s->accept_failures);
    s->accept_failures = 0;
}

static void http_conn__pause(http_server *s)
{
    if (s->paused || !s->lev) return;
    evconnlistener_disable(s->lev);
    s->paused = true;
}

/* Accepts again unless the server is at its connection cap. */
static void http_conn__resume(http_server *s)
{
    if (!s->paused || !s->lev || s->freeing) return;
    if (s->opts.max_connections && s->nconns >= s->opts.max_connections) return;
    evconnlistener_enable(s->lev);
    s->paused = false;
    event_del(s->resume_ev);
}

static void http_conn__resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_conn__resume(arg);
}

/*
 * accept failed with an error libevent does not retry by itself. Out of
 * descriptors (EMFILE, ENFILE) or memory, the pending connection stays in
 * the kernel's queue and the listening socket stays readable, so the loop
 * would call accept again at once, forever: the listener pauses instead,
 * until a connection closes or a short timer runs out.
 */
static void http_conn__accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    http_server *s = http_conn__servers;
    while (s && s->lev != lev) s = s->next_server;
    if (!s) return;
    s->accept_failures++;
    http_conn__pause(s);
    struct timeval tv = {0, HTTP_CONN__RESUME_MS * 1000};
    event_add(s->resume_ev, &tv);
    http_conn__log_pause(s, evutil_socket_error_to_string(e));
}

/* Forgets a connection; with_bev when its bufferevent still exists. */
static void http_conn__free(http__conn *c, bool with_bev)
{
    http_server *s = c->srv;
    if (with_bev) evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    buf_cleanup(&c->head);
    free(c);
    s->nconns--;
    http_conn__resume(s);
}

/* evhttp is freeing the connection. */
void http__conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    http__conn *c = arg;
    http_conn__unlink(&c->srv->conns, c);
    http_conn__free(c, true);
}

/*
 * Runs once the accept callback that created connections has returned,
 * when evhttp has set each one up: its bufferevent's callbacks then carry
 * the evhttp connection, whose close callback ends the count. A connection
 * evhttp freed meanwhile has had its callbacks cleared.
 */
static void http_conn__adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_server *s = arg;
    while (s->pending) {
        http__conn *c = s->pending;
        http_conn__unlink(&s->pending, c);
        struct bufferevent *bev = c->bev;
        bufferevent_event_cb ecb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, NULL, NULL, &ecb, &cbarg);
        if (ecb && cbarg) {
            c->evcon = cbarg;
            evhttp_connection_set_closecb(c->evcon, http__conn_closed, c);
            http_conn__link(&s->conns, c);
        } else {
            http_conn__free(c, true);
        }
        bufferevent_decref(bev);
    }
}

http__conn *http__conn_find(http_server *s, struct evhttp_connection *evcon)
{
    for (http__conn *c = s->conns; c; c = c->next)
        if (c->evcon == evcon) return c;
    return NULL;
}

static void http_conn__head_reset(http__conn *c)
{
    buf_cleanup(&c->head);
    buf_init(&c->head, HTTP_CONN__HEAD_COPY_MAX);
}

/* Discards what the peer sent after an early refusal; past the cap the
 * read side is shut, which the loop sees as the peer's end. */
static void http_conn__drain(http__conn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    c->drained += n;
    evbuffer_drain(in, n);
    if (c->drained > HTTP_CONN__DRAIN_MAX) shutdown(bufferevent_getfd(c->bev), SHUT_RD);
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
static void http_conn__refuse(http__conn *c, int status, const char *code, const char *msg)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    c->phase = HTTP_CONN__DRAIN;
    http_conn__head_reset(c);
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
    http_conn__drain(c, in);
}

static void http_conn__feed(http__conn *c, const char *p, size_t n);

/* The head of a request is complete in c->head: applies the framing rules
 * before evhttp reads any of the body. */
static void http_conn__head_done(http__conn *c, size_t end)
{
    size_t lines = 0;
    for (size_t i = 0; i < end; i++) lines += c->head.data[i] == '\n';
    framing_header *h = xmalloc((lines + 1) * sizeof *h);
    int n = framing_split(c->head.data, end, h, (int)lines + 1);
    framing_verdict v = {0};
    if (n >= 0) framing_check(h, n, c->srv->opts.body_bytes, &v);
    free(h);
    if (v.status) {
        http_conn__refuse(c, v.status, v.code, v.message);
        return;
    }
    /* A head evhttp cannot split is evhttp's to refuse. */
    c->phase = n >= 0 && v.chunked ? HTTP_CONN__CHUNKS : HTTP_CONN__WAIT;
    if (c->phase == HTTP_CONN__CHUNKS) framing_chunks_init(&c->chunks, c->srv->opts.body_bytes);
    buf rest = c->head;
    buf_init(&c->head, HTTP_CONN__HEAD_COPY_MAX);
    if (c->phase == HTTP_CONN__CHUNKS && rest.len > end)
        http_conn__feed(c, rest.data + end, rest.len - end);
    buf_cleanup(&rest);
}

/* Reads n bytes of the connection's input in the order they arrived. */
static void http_conn__feed(http__conn *c, const char *p, size_t n)
{
    if (c->phase == HTTP_CONN__HEAD) {
        size_t before = c->head.len;
        if (buf_append(&c->head, p, n) != 0) {
            /* Longer than evhttp accepts: evhttp refuses it. */
            http_conn__head_reset(c);
            c->phase = HTTP_CONN__OFF;
            return;
        }
        size_t end = framing_head_end(c->head.data, c->head.len, before);
        if (end) http_conn__head_done(c, end);
        return;
    }
    if (c->phase != HTTP_CONN__CHUNKS) return;
    size_t used;
    char err[160];
    int rc = framing_chunks_feed(&c->chunks, p, n, &used, err, sizeof err);
    if (rc == FRAMING_DONE)
        c->phase = HTTP_CONN__WAIT;
    else if (rc == FRAMING_BAD)
        http_conn__refuse(c, 400, "bad_request", err);
    else if (rc == FRAMING_TOO_LARGE)
        http_conn__refuse(c, 413, "payload_too_large",
                          "the request is larger than the server accepts");
}

/*
 * Sees every byte a connection receives as it is added to the input
 * buffer, before evhttp's read callback parses it: evhttp offers no hook
 * between a request's headers and its body, and decides by itself how
 * long a body is. The bytes just added are the buffer's last n_added.
 */
static void http_conn__input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    http__conn *c = arg;
    if (info->n_added == 0) return;
    if (c->phase == HTTP_CONN__DRAIN) {
        http_conn__drain(c, in);
        return;
    }
    size_t len = evbuffer_get_length(in), left = info->n_added;
    if (left > len) left = len;
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(in, &at, len - left, EVBUFFER_PTR_SET) != 0) return;
    char chunk[4096];
    while (left > 0 && (c->phase == HTTP_CONN__HEAD || c->phase == HTTP_CONN__CHUNKS)) {
        size_t k = left < sizeof chunk ? left : sizeof chunk;
        if (evbuffer_copyout_from(in, &at, chunk, k) != (ev_ssize_t)k) return;
        evbuffer_ptr_set(in, &at, k, EVBUFFER_PTR_ADD);
        left -= k;
        http_conn__feed(c, chunk, k);
    }
}

/* Creates each connection's bufferevent, watched by the rewrite and the
 * framing checks, and counts the connection. */
static struct bufferevent *http_conn__bevcb(struct event_base *base, void *arg)
{
    http_server *s = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) return NULL;
    /* A request is read before the streams at work are relayed: it may be
     * a run's start (lib/loopprio.h). A stream's writes go through
     * http_stream's flush, at the streams' priority. */
    (void)bufferevent_priority_set(bev, LOOPPRIO_START);
    evbuffer_add_cb(bufferevent_get_output(bev), http__rewrite_cb, s);
    http__conn *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->bev = bev;
    c->phase = HTTP_CONN__HEAD;
    buf_init(&c->head, HTTP_CONN__HEAD_COPY_MAX);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), http_conn__input_cb, c);
    /* Held until adoption, so a connection evhttp frees first is seen. */
    bufferevent_incref(bev);
    http_conn__link(&s->pending, c);
    event_active(s->adopt_ev, EV_TIMEOUT, 1);
    s->nconns++;
    if (s->opts.max_connections && s->nconns >= s->opts.max_connections) {
        http_conn__pause(s);
        http_conn__log_pause(s, "limits.connections reached");
    }
    return bev;
}

void http__conns_init(http_server *s)
{
    evhttp_set_bevcb(s->http, http_conn__bevcb, s);
    s->adopt_ev = event_new(s->base, -1, 0, http_conn__adopt_cb, s);
    s->resume_ev = evtimer_new(s->base, http_conn__resume_cb, s);
    s->next_server = http_conn__servers;
    http_conn__servers = s;
}

void http__conns_free(http_server *s)
{
    while (s->pending) {
        http__conn *c = s->pending;
        struct bufferevent *bev = c->bev;
        http_conn__unlink(&s->pending, c);
        http_conn__free(c, true);
        bufferevent_decref(bev);
    }
    while (s->conns) {
        http__conn *c = s->conns;
        http_conn__unlink(&s->conns, c);
        http_conn__free(c, false);
    }
    for (http_server **p = &http_conn__servers; *p; p = &(*p)->next_server)
        if (*p == s) {
            *p = s->next_server;
            break;
        }
    event_free(s->adopt_ev);
    event_free(s->resume_ev);
}

void http__conns_listen(http_server *s)
{
    s->lev = evhttp_bound_socket_get_listener(s->sock);
    evconnlistener_set_error_cb(s->lev, http_conn__accept_error);
}

void http__conn_request_read(http__conn *c)
{
    if (c->phase == HTTP_CONN__DRAIN) return;
    /* The request is read; the next one starts with the connection's next
     * bytes, unless some are here already (pipelined), which evhttp reads
     * without a callback in between. */
    bool pipelined = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
    c->phase = pipelined ? HTTP_CONN__OFF : HTTP_CONN__HEAD;
    http_conn__head_reset(c);
}
