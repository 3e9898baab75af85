/*
 * llm_plain: see llm_plain.h.
 *
 * A connection is a socket and one persistent event on the loop. While a
 * call holds it, the event waits for room to write until the request is
 * sent, then for bytes to read; while it is idle, the event waits for the
 * server to close it (or to send what no request asked for), and then the
 * connection is closed. No call does I/O from llm_plain_post: the first
 * write happens when the loop finds the socket writable, so every callback
 * runs from the loop.
 */
#define _GNU_SOURCE /* getenv, strncasecmp */
#include "engine/llm_plain.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/http_reply.h"
#include "lib/loopprio.h"
#include "lib/xmalloc.h"

#define PLAIN_ADDRS_MAX 2

typedef struct plain__conn {
    llm_plain *owner;
    int fd;
    int err; /* a connect that failed at once, reported from the loop */
    bool connected;
    struct event *ev;
    llm_plain_call *call;            /* NULL while idle */
    struct plain__conn *prev, *next; /* on the idle list */
} plain__conn;

struct llm_plain_call {
    llm_plain *owner;
    plain__conn *conn;
    char *req; /* freed once the first byte of the answer came */
    size_t req_len, sent;
    http_reply reply;
    llm_plain_cb cb;
    void *ud, *owner_ud;
    int addr;        /* the address being tried */
    int first_err;   /* why the first address refused, reported if none takes it */
    bool reused;     /* the connection was idle before this call */
    bool retried;    /* a new connection replaced an idle one that had closed */
    int busy;        /* > 0 while a callback of this call runs */
    bool cancelled;  /* cancelled from inside a callback: freed once it returns */
    bool ended;      /* on_end ran */
    bool got_body;   /* the parser handed over body bytes */
    bool read_first; /* the first piece of the body was read */
    struct event *pause_ev;
    llm_plain_call *prev, *next;
};

struct llm_plain {
    struct event_base *base;
    struct sockaddr_storage addrs[PLAIN_ADDRS_MAX];
    socklen_t addr_lens[PLAIN_ADDRS_MAX];
    int naddrs;
    char *host;
    plain__conn *idle;
    size_t nidle;
    llm_plain_call *calls;
};

static void plain__on_event(evutil_socket_t fd, short what, void *arg);
static void plain__begin(llm_plain_call *c);

/* ---- URLs ---- */

static bool plain__proxy_set(void)
{
    static const char *const names[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return true;
    }
    return false;
}

static bool plain__add_addr(llm_plain *p, int family, const char *text, unsigned port)
{
    struct sockaddr_storage *ss = &p->addrs[p->naddrs];
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, text, &a->sin_addr) != 1) return false;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        p->addr_lens[p->naddrs++] = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, text, &a->sin6_addr) != 1) return false;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        p->addr_lens[p->naddrs++] = sizeof *a;
    }
    return true;
}

/* Fills p's addresses and host from url; *path gets the request target. */
static bool plain__parse_url(llm_plain *p, const char *url, char **path)
{
    if (strncasecmp(url, "http://", 7) != 0) return false;
    const char *auth = url + 7;
    const char *end = auth + strcspn(auth, "/?#");
    for (const char *q = url; *q; q++) {
        /* What a URL must escape, and fragments, are left to libcurl. */
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || *q == '#') return false;
    }
    if (end == auth || memchr(auth, '@', (size_t)(end - auth))) return false;

    char host[64];
    const char *port_at;
    int family;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        if (!close || (size_t)(close - auth - 1) >= sizeof host) return false;
        memcpy(host, auth + 1, (size_t)(close - auth - 1));
        host[close - auth - 1] = '\0';
        family = AF_INET6;
        port_at = close + 1;
    } else {
        const char *colon = memchr(auth, ':', (size_t)(end - auth));
        const char *hend = colon ? colon : end;
        if ((size_t)(hend - auth) >= sizeof host) return false;
        memcpy(host, auth, (size_t)(hend - auth));
        host[hend - auth] = '\0';
        family = AF_INET;
        port_at = hend;
    }
    unsigned port = 80;
    if (port_at < end) {
        if (*port_at != ':' || port_at + 1 == end) return false;
        port = 0;
        for (const char *q = port_at + 1; q < end; q++) {
            if (*q < '0' || *q > '9') return false;
            port = port * 10 + (unsigned)(*q - '0');
            if (port > 65535) return false;
        }
        if (port == 0) return false;
    }
    if (family == AF_INET && strcasecmp(host, "localhost") == 0) {
        /* As libcurl does, without a lookup: IPv4 first, then IPv6. */
        plain__add_addr(p, AF_INET, "127.0.0.1", port);
        plain__add_addr(p, AF_INET6, "::1", port);
    } else if (!plain__add_addr(p, family, host, port)) {
        return false;
    }
    p->host = xstrndup(auth, (size_t)(end - auth));
    *path = *end == '/' ? xstrdup(end) : xasprintf("/%s", end);
    return true;
}

llm_plain *llm_plain_new(struct event_base *base, const char *url, char **path_out)
{
    /* CHATPLANE_LLM_TRANSPORT=curl sends every call through libcurl. */
    const char *only = getenv("CHATPLANE_LLM_TRANSPORT");
    if ((only && strcmp(only, "curl") == 0) || plain__proxy_set()) return NULL;
    llm_plain *p = xcalloc(1, sizeof *p);
    char *path = NULL;
    if (!plain__parse_url(p, url, &path)) {
        free(p->host);
        free(p);
        return NULL;
    }
    p->base = base;
    if (path_out)
        *path_out = path;
    else
        free(path);
    return p;
}

const char *llm_plain_host(const llm_plain *p)
{
    return p->host;
}

/* ---- connections ---- */

static void plain__idle_unlink(llm_plain *p, plain__conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        p->idle = k->next;
    if (k->next) k->next->prev = k->prev;
    k->prev = k->next = NULL;
    p->nidle--;
}

static void plain__conn_close(plain__conn *k)
{
    if (k->ev) event_free(k->ev);
    if (k->fd >= 0) close(k->fd);
    free(k);
}

/* The loop priority of a connection's event: a call waiting for its first
 * piece of body is a run's start, one past it a stream at work, an idle
 * connection neither (lib/loopprio.h). */
static int plain__priority(const plain__conn *k)
{
    if (!k->call) return LOOPPRIO_DEFAULT;
    return k->call->got_body ? LOOPPRIO_STREAM : LOOPPRIO_START;
}

/* Points the connection's event at what it waits for now. On a loop with
 * fewer priorities (a test's) a priority it lacks is refused and the event
 * keeps the default. */
static void plain__watch(plain__conn *k, short what)
{
    /* Reads are edge-triggered: the kernel reports the socket once per
     * arrival, not again at every look while it stays readable, and
     * plain__read asks for another turn itself when a read may have left
     * bytes behind (docs/architecture.md, One loop, two kinds of database
     * threads). EV_CLOSED has the report say when the peer's close is
     * among what arrived, which a short read leaves behind the bytes. */
    short flags = what | EV_PERSIST | (what == EV_READ ? EV_ET | EV_CLOSED : 0);
    /* Already waiting for just that. A delete and an add would cost an
     * epoll_ctl even so: libevent's change list makes an add after a
     * delete a change of the descriptor's events, also when they stay the
     * same (two a run, at the call's start and end: docs/benchmarks.md,
     * fix 60). */
    if (k->ev && event_get_events(k->ev) == flags && event_pending(k->ev, what, NULL) == what) {
        (void)event_priority_set(k->ev, plain__priority(k));
        return;
    }
    if (k->ev) event_del(k->ev);
    if (!k->ev)
        k->ev = event_new(k->owner->base, k->fd, flags, plain__on_event, k);
    else
        event_assign(k->ev, k->owner->base, k->fd, flags, plain__on_event, k);
    (void)event_priority_set(k->ev, plain__priority(k));
    event_add(k->ev, NULL);
}

/* Reports a connection's failure from the loop: its event becomes a timer
 * that fires at once, so no callback runs inside the function that made
 * the call. */
static void plain__fail_later(plain__conn *k, int err)
{
    if (k->ev) event_free(k->ev);
    if (k->fd >= 0) close(k->fd);
    k->fd = -1;
    k->err = err;
    k->ev = event_new(k->owner->base, -1, 0, plain__on_event, k);
    static const struct timeval now = {0, 0};
    event_add(k->ev, &now);
}

/* A new connection to address i, opening; plain__begin sends on it. */
static plain__conn *plain__connect(llm_plain *p, int i)
{
    plain__conn *k = xcalloc(1, sizeof *k);
    k->owner = p;
    k->fd = -1;
    const struct sockaddr *sa = (const struct sockaddr *)&p->addrs[i];
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        plain__fail_later(k, errno);
        return k;
    }
    k->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, sa, p->addr_lens[i]) == 0)
        k->connected = true;
    else if (errno != EINPROGRESS)
        plain__fail_later(k, errno);
    return k;
}

/* ---- calls ---- */

static void plain__call_free(llm_plain_call *c)
{
    llm_plain *p = c->owner;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->pause_ev) event_free(c->pause_ev);
    if (c->conn) plain__conn_close(c->conn);
    http_reply_cleanup(&c->reply);
    free(c->req);
    free(c);
}

/* The call's last callback; the connection goes back to the idle list
 * when the response ended cleanly and the server keeps it open. */
static void plain__end(llm_plain_call *c, int code, const char *why, bool reuse)
{
    llm_plain *p = c->owner;
    plain__conn *k = c->conn;
    if (k && reuse && p->nidle < LLM_PLAIN_IDLE_MAX) {
        c->conn = NULL;
        k->call = NULL;
        k->next = p->idle;
        k->prev = NULL;
        if (p->idle) p->idle->prev = k;
        p->idle = k;
        p->nidle++;
        plain__watch(k, EV_READ);
    }
    c->ended = true;
    c->busy++;
    c->cb.on_end(c->ud, code, why);
    c->busy--;
}

/* An idle connection closed before any byte of the answer: the request
 * goes again on a new one, once (it may not have reached the server). */
static bool plain__retry(llm_plain_call *c)
{
    if (!c->reused || c->retried || c->reply.started || !c->req) return false;
    c->retried = true;
    c->reused = false;
    plain__conn_close(c->conn);
    c->sent = 0;
    c->addr = 0;
    c->conn = plain__connect(c->owner, 0);
    c->conn->call = c;
    plain__begin(c);
    return true;
}

static void plain__fail(llm_plain_call *c, int code, const char *why)
{
    plain__end(c, code, why, false);
}

static const char *plain__errno_text(int err)
{
    return err == ECONNREFUSED ? "connection refused" : strerror(err);
}

/* The connection to address c->addr failed to open: the next address, or
 * the end. */
static void plain__connect_failed(llm_plain_call *c, int err)
{
    if (c->addr == 0) c->first_err = err;
    if (c->addr + 1 < c->owner->naddrs) {
        plain__conn_close(c->conn);
        c->addr++;
        c->conn = plain__connect(c->owner, c->addr);
        c->conn->call = c;
        plain__begin(c);
        return;
    }
    /* localhost's first address is the one a model usually listens on;
     * its reason says more than that of ::1 on a machine without IPv6. */
    plain__fail(c, LLM_PLAIN_CONNECT, plain__errno_text(c->first_err));
}

static bool plain__on_body(void *ud, const char *data, size_t len)
{
    llm_plain_call *c = ud;
    c->got_body = true;
    return c->cb.on_body(c->ud, data, len) && !c->cancelled;
}

static void plain__on_status(void *ud, int status)
{
    llm_plain_call *c = ud;
    if (c->cb.on_status) c->cb.on_status(c->ud, status);
}

static void plain__on_header(void *ud, const char *name, size_t nl, const char *value, size_t vl)
{
    llm_plain_call *c = ud;
    if (c->cb.on_header) c->cb.on_header(c->ud, name, nl, value, vl);
}

/* Writes what is left of the request; false when the call ended. */
static bool plain__send(llm_plain_call *c)
{
    plain__conn *k = c->conn;
    while (c->sent < c->req_len) {
        ssize_t n = send(k->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        int err = errno;
        if (plain__retry(c)) return true;
        plain__fail(c, LLM_PLAIN_BROKEN, plain__errno_text(err));
        return false;
    }
    plain__watch(k, EV_READ);
    return true;
}

/*
 * Starts the call on its connection: the request goes out at once when the
 * socket takes it, else once the socket is writable. Sending now rather
 * than from the loop's next turn matters under load, when a turn lasts
 * tens of milliseconds and the model starts its answer only once the
 * request has arrived (docs/benchmarks.md, fix 50). A connection whose
 * opening failed has its timer already; a send that fails on a connection
 * still opening took the connect's error, which goes to the loop with it.
 * Any other failure meets the loop's own send again.
 */
static void plain__begin(llm_plain_call *c)
{
    plain__conn *k = c->conn;
    if (k->err) return;
    ssize_t n = send(k->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
        k->connected = true;
        c->sent += (size_t)n;
        plain__watch(k, c->sent == c->req_len ? EV_READ : EV_WRITE);
        return;
    }
    if (n < 0 && !k->connected && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        plain__fail_later(k, errno);
        return;
    }
    plain__watch(k, EV_WRITE);
}

static void plain__on_pause_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    llm_plain_call *c = arg;
    if (c->conn) plain__watch(c->conn, EV_READ);
}

/* Has the connection's callback run again at the loop's next look, for
 * bytes a read left in the socket: an edge-triggered watch does not
 * report them again. */
static void plain__again(plain__conn *k)
{
    if (k && k->ev) event_active(k->ev, EV_READ, 0);
}

/* Leaves the connection unread for LLM_PLAIN_FIRST_PAUSE_US after the
 * first piece of a body that came as a burst: the rest waits in the
 * socket while the first token is stored. A call ended meanwhile frees
 * the timer with itself. */
static void plain__pause(llm_plain_call *c)
{
    if (!c->conn || !c->conn->ev) return;
    c->pause_ev = evtimer_new(c->owner->base, plain__on_pause_end, c);
    if (!c->pause_ev) return;
    struct timeval tv = {0, LLM_PLAIN_FIRST_PAUSE_US};
    event_del(c->conn->ev);
    evtimer_add(c->pause_ev, &tv);
}

/* Reads one piece (at most LLM_PLAIN_READ_MAX bytes) and parses it; what
 * is what the loop reported for the connection. */
static void plain__read(llm_plain_call *c, short what)
{
    char piece[LLM_PLAIN_READ_MAX];
    ssize_t n = recv(c->conn->fd, piece, sizeof piece, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) {
            plain__again(c->conn);
            return;
        }
        int err = errno;
        if (plain__retry(c)) return;
        plain__fail(c, LLM_PLAIN_BROKEN, plain__errno_text(err));
        return;
    }
    if (n == 0) {
        if (plain__retry(c)) return;
        if (http_reply_eof(&c->reply) == HTTP_REPLY_DONE)
            plain__end(c, LLM_PLAIN_OK, NULL, false);
        else
            plain__fail(c, LLM_PLAIN_BROKEN, c->reply.error);
        return;
    }
    if (c->req) {
        /* An answer came: the request will not be sent again. */
        free(c->req);
        c->req = NULL;
    }
    size_t used = 0;
    c->busy++;
    int rc = http_reply_feed(&c->reply, piece, (size_t)n, &used);
    c->busy--;
    if (c->cancelled) return;
    /* The first piece of the body came: from now on the call is a stream
     * at work. Its event is not active while its own callback runs, so the
     * priority can change without taking it off the loop. */
    if (c->got_body && c->conn && c->conn->ev && event_get_priority(c->conn->ev) == LOOPPRIO_START)
        (void)event_priority_set(c->conn->ev, LOOPPRIO_STREAM);
    switch (rc) {
    case HTTP_REPLY_MORE:
        /* More bytes waiting behind the first piece: a burst. */
        if (c->got_body && !c->read_first) {
            c->read_first = true;
            int avail = 0;
            if (c->conn && ioctl(c->conn->fd, FIONREAD, &avail) == 0 && avail > 0) {
                plain__pause(c);
                return;
            }
        }
        /* A full read may have left bytes in the socket, which the edge
         * that was reported covers: the next piece is read at the next
         * turn, as a level-triggered watch would have. A short read
         * emptied the socket of bytes (TCP copies all it holds, up to the
         * size asked), but not of a close that came with them: no edge
         * will report that one again, so the next turn reads it. */
        if (n == (ssize_t)sizeof piece || (what & EV_CLOSED)) plain__again(c->conn);
        return;
    case HTTP_REPLY_DONE:
        /* After a full read the socket may hold more than the answer,
         * which no edge will report on an idle connection: it is not kept. */
        plain__end(c, LLM_PLAIN_OK, NULL,
                   c->reply.keep_alive && used == (size_t)n && n < (ssize_t)sizeof piece);
        return;
    case HTTP_REPLY_STOPPED:
        plain__fail(c, LLM_PLAIN_STOPPED, "stopped");
        return;
    default:
        plain__fail(c, LLM_PLAIN_BAD, c->reply.error);
        return;
    }
}

static void plain__on_event(evutil_socket_t fd, short what, void *arg)
{
    plain__conn *k = arg;
    llm_plain *p = k->owner;
    llm_plain_call *c = k->call;
    (void)fd;

    if (!c) {
        /* Idle: the server closed it, or sent what nobody asked for. */
        plain__idle_unlink(p, k);
        plain__conn_close(k);
        return;
    }
    void *owner_ud = c->owner_ud;
    if (c->cb.enter) c->cb.enter(owner_ud);
    if (k->err) {
        plain__connect_failed(c, k->err);
    } else if (!k->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err) {
            plain__connect_failed(c, err);
        } else {
            k->connected = true;
            plain__send(c);
        }
    } else if (c->sent < c->req_len && c->req) {
        plain__send(c);
    } else if (what & (EV_READ | EV_CLOSED)) {
        plain__read(c, what);
    }
    void (*leave)(void *) = c->cb.leave;
    if (c->ended || c->cancelled) plain__call_free(c);
    if (leave) leave(owner_ud);
}

llm_plain_call *llm_plain_post(llm_plain *p, char *req, size_t req_len, const llm_plain_cb *cb,
                               void *ud, void *owner_ud)
{
    llm_plain_call *c = xcalloc(1, sizeof *c);
    c->owner = p;
    c->req = req;
    c->req_len = req_len;
    c->cb = *cb;
    c->ud = ud;
    c->owner_ud = owner_ud;
    http_reply_cb rcb = {
        .on_status = plain__on_status, .on_header = plain__on_header, .on_body = plain__on_body};
    http_reply_init(&c->reply, &rcb, c);
    c->next = p->calls;
    if (p->calls) p->calls->prev = c;
    p->calls = c;

    plain__conn *k = p->idle;
    if (k) {
        plain__idle_unlink(p, k);
        c->reused = true;
    } else {
        k = plain__connect(p, 0);
    }
    k->call = c;
    c->conn = k;
    plain__begin(c);
    return c;
}

void llm_plain_cancel(llm_plain_call *c)
{
    if (!c) return;
    if (c->busy > 0) {
        c->cancelled = true;
        return;
    }
    plain__call_free(c);
}

void llm_plain_free(llm_plain *p)
{
    if (!p) return;
    while (p->calls) plain__call_free(p->calls);
    while (p->idle) {
        plain__conn *k = p->idle;
        plain__idle_unlink(p, k);
        plain__conn_close(k);
    }
    free(p->host);
    free(p);
}
