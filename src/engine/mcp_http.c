/*
 * mcp_http: Streamable HTTP for the MCP client. One libcurl multi handle
 * per server, driven by the event loop through the multi socket interface.
 *
 * What libcurl hands over inside its callbacks (answer bytes, SSE events)
 * is only queued there, as items; the items are delivered to the server
 * logic once libcurl has returned (mcp_http__drain), which is what lets a
 * callback send, close or free the transport. A close bumps the
 * generation, which tells a drain in progress to stop.
 */
#include "engine/mcp_http.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/sse.h"
#include "engine/mcp.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/redact.h"
#include "lib/xmalloc.h"

#define MCP_HTTP_SESSION_MAX 256 /* bytes of an Mcp-Session-Id */
#define MCP_HTTP_AUTH_MAX    512 /* bytes of a WWW-Authenticate value kept */

typedef struct mcp_http mcp_http;

typedef enum mcp_http__item_kind {
    MCP_HTTP__FRAME,
    MCP_HTTP__TOOBIG,
    MCP_HTTP__EOF,
    MCP_HTTP__CLOSED,
} mcp_http__item_kind;

/* Something to tell the server logic once libcurl has returned. */
typedef struct mcp_http__item {
    mcp_http__item_kind kind;
    char *data; /* FRAME: the message; CLOSED: how */
    size_t len; /* FRAME: its length; TOOBIG: the size seen */
    int64_t id; /* TOOBIG */
    struct mcp_http__item *next;
} mcp_http__item;

typedef enum mcp_http__body {
    MCP_HTTP__UNDECIDED,
    MCP_HTTP__JSON,
    MCP_HTTP__SSE,
    MCP_HTTP__IGNORED,
    MCP_HTTP__ERROR,
} mcp_http__body;

/* One HTTP request: a POSTed message, or the DELETE of a session. */
typedef struct mcp_http__req {
    mcp_http *t;
    CURL *easy;
    struct curl_slist *hdrs;
    char *msg;
    size_t len;
    int64_t id;       /* the message's request id; -1 for a notification or answer */
    bool is_init;     /* the message is initialize */
    bool is_delete;   /* a DELETE: nothing is reported about it */
    bool had_session; /* the request carried a session id */
    bool added;       /* handed to libcurl */
    bool answered;    /* the response to id was seen */
    bool toobig;
    size_t seen; /* bytes of the over-long message seen */
    mcp_http__body body;
    char ctype[64];
    char auth[MCP_HTTP_AUTH_MAX];
    buf in; /* a JSON answer, or the start of an error answer */
    sse_parser sse;
    struct mcp_http__req *next;
} mcp_http__req;

struct mcp_http {
    mcp_transport base; /* first */
    struct event_base *evb;
    CURLM *multi;
    struct event *timer;
    struct event *kick; /* settles and drains from the loop */
    struct event **socks;
    size_t nsocks;
    char *url;
    char *display; /* the url without user, password and query, for messages */
    char **headers;
    bool tls_verify;
    int64_t timeout_ms;

    bool open;
    bool unauthorized;
    int64_t rejected; /* see mcp_http_take_rejected */
    unsigned gen;
    char *session;
    char *version;
    mcp_http__req *reqs;     /* in the order sent */
    mcp_http__req *deleting; /* DELETEs of sessions closed, nothing waits for */
    size_t nactive, nwaiting;
    mcp_http__item *items, **items_tail;
    int depth; /* > 0 while inside curl_multi_socket_action */
};

static const mcp_transport_ops mcp_http__ops;

/* ---- items ---- */

static void mcp_http__push(mcp_http *t, mcp_http__item_kind kind, char *data, size_t len,
                           int64_t id)
{
    mcp_http__item *it = xcalloc(1, sizeof *it);
    it->kind = kind;
    it->data = data;
    it->len = len;
    it->id = id;
    *t->items_tail = it;
    t->items_tail = &it->next;
    event_active(t->kick, 0, 0);
}

static void mcp_http__items_free(mcp_http *t)
{
    while (t->items) {
        mcp_http__item *it = t->items;
        t->items = it->next;
        free(it->data);
        free(it);
    }
    t->items_tail = &t->items;
}

/* A NUL-terminated copy of the len bytes of data, NUL bytes inside kept,
 * so that the length given with it stays true. */
static char *mcp_http__dup(const char *data, size_t len)
{
    char *s = xmalloc(len + 1);
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* An error answer to request id, so that only the call that made it fails. */
static void mcp_http__push_error(mcp_http *t, int64_t id, const char *why)
{
    char *text = xasprintf("the MCP server '%s' %s", t->base.name, why);
    json_t *e = json_pack("{s:s,s:I,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", (json_int_t)id, "error",
                          "code", -32000, "message", text);
    free(text);
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    mcp_http__push(t, MCP_HTTP__FRAME, s, strlen(s), -1);
}

/* Delivers the queued items. Stops when a callback closed the connection. */
static void mcp_http__drain(mcp_http *t)
{
    if (t->depth > 0) return;
    unsigned gen = t->gen;
    while (t->items && t->gen == gen) {
        mcp_http__item *it = t->items;
        t->items = it->next;
        if (!t->items) t->items_tail = &t->items;
        mcp_transport_callbacks *cb = &t->base.cb;
        switch (it->kind) {
        case MCP_HTTP__FRAME:
            cb->on_frame(t->base.ud, it->data, it->len);
            break;
        case MCP_HTTP__TOOBIG:
            cb->on_toobig(t->base.ud, it->len, MCP_LINE_MAX, it->id);
            break;
        case MCP_HTTP__EOF:
            cb->on_eof(t->base.ud);
            break;
        case MCP_HTTP__CLOSED:
            t->gen++; /* nothing of this connection follows */
            cb->on_closed(t->base.ud, it->data);
            break;
        }
        free(it->data);
        free(it);
    }
}

/* ---- requests ---- */

static void mcp_http__req_free(mcp_http__req *r)
{
    if (r->easy) {
        if (r->added) curl_multi_remove_handle(r->t->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    if (r->body == MCP_HTTP__SSE) sse_parser_cleanup(&r->sse);
    buf_cleanup(&r->in);
    free(r->msg);
    free(r);
}

/* Unlinks r from t's list and frees it. */
static void mcp_http__req_drop(mcp_http *t, mcp_http__req *r)
{
    for (mcp_http__req **p = &t->reqs; *p; p = &(*p)->next) {
        if (*p != r) continue;
        *p = r->next;
        break;
    }
    if (r->added)
        t->nactive--;
    else
        t->nwaiting--;
    mcp_http__req_free(r);
}

/* One SSE event of an answer stream: a message, queued for the server. */
static int mcp_http__on_sse(void *ud, const sse_event *ev)
{
    mcp_http__req *r = ud;
    if (ev->data_len == 0 || strcmp(ev->event, "message") != 0) return 0;
    json_t *v = json_loadb(ev->data, ev->data_len, 0, NULL);
    json_t *id = json_object_get(v, "id");
    if (json_is_integer(id) && json_integer_value(id) == r->id &&
        (json_object_get(v, "result") || json_object_get(v, "error")))
        r->answered = true;
    json_decref(v);
    mcp_http__push(r->t, MCP_HTTP__FRAME, mcp_http__dup(ev->data, ev->data_len), ev->data_len, -1);
    return 0;
}

/* Decides what the body of r's answer is from its status and type. */
static void mcp_http__decide(mcp_http__req *r)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        r->body = MCP_HTTP__ERROR;
        buf_init(&r->in, MCP_HTTP_ERROR_BODY);
    } else if (strncasecmp(r->ctype, "text/event-stream", 17) == 0) {
        r->body = MCP_HTTP__SSE;
        sse_parser_init(&r->sse, MCP_LINE_MAX, mcp_http__on_sse, r);
    } else if (strncasecmp(r->ctype, "application/json", 16) == 0) {
        r->body = MCP_HTTP__JSON;
        buf_init(&r->in, MCP_LINE_MAX);
    } else {
        r->body = MCP_HTTP__IGNORED;
    }
}

/* libcurl's write callback; returning less than given ends the transfer. */
static size_t mcp_http__on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    mcp_http__req *r = ud;
    size_t n = size * nmemb;
    if (r->body == MCP_HTTP__UNDECIDED) mcp_http__decide(r);
    switch (r->body) {
    case MCP_HTTP__ERROR: {
        size_t room = r->in.cap - r->in.len;
        buf_append(&r->in, ptr, n < room ? n : room);
        return n;
    }
    case MCP_HTTP__JSON:
        if (buf_append(&r->in, ptr, n) == 0) return n;
        r->seen = r->in.len + n;
        break;
    case MCP_HTTP__SSE:
        if (sse_parser_feed(&r->sse, ptr, n) == 0) return n;
        r->seen = MCP_LINE_MAX + 1;
        break;
    default:
        return n;
    }
    r->toobig = true;
    return 0;
}

/* Copies the n bytes of v to out, capped to outsz - 1, NUL-terminated. */
static void mcp_http__copy(char *out, size_t outsz, const char *v, size_t n)
{
    if (n > outsz - 1) n = outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* libcurl's header callback, once per line "Name: value": the type, the
 * challenge, and initialize's session id, kept at once so that the
 * messages sent after initialize's answer carry it. */
static size_t mcp_http__on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    mcp_http__req *r = ud;
    size_t n = size * nmemb;
    const char *colon = memchr(line, ':', n);
    if (!colon) return n;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
#define MCP_HTTP__IS(name) (name_len == strlen(name) && strncasecmp(line, name, name_len) == 0)
    if (MCP_HTTP__IS("Content-Type")) {
        mcp_http__copy(r->ctype, sizeof r->ctype, v, vlen);
    } else if (MCP_HTTP__IS("WWW-Authenticate")) {
        mcp_http__copy(r->auth, sizeof r->auth, v, vlen);
    } else if (MCP_HTTP__IS("Mcp-Session-Id") && r->is_init && vlen > 0 &&
               vlen < MCP_HTTP_SESSION_MAX) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status <= 299) {
            free(r->t->session);
            r->t->session = xstrndup(v, vlen);
        }
    }
#undef MCP_HTTP__IS
    return n;
}

/* A new easy handle of t for r, with what every request shares. */
static void mcp_http__easy(mcp_http *t, mcp_http__req *r)
{
    CURL *e = curl_easy_init();
    r->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    if (!t->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    for (char **h = t->headers; *h; h++) r->hdrs = curl_slist_append(r->hdrs, *h);
    if (t->session) {
        char *h = xasprintf("Mcp-Session-Id: %s", t->session);
        r->hdrs = curl_slist_append(r->hdrs, h);
        free(h);
        r->had_session = true;
    }
    if (t->version && !r->is_init) {
        char *h = xasprintf("MCP-Protocol-Version: %s", t->version);
        r->hdrs = curl_slist_append(r->hdrs, h);
        free(h);
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, mcp_http__on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mcp_http__on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
}

/* The DELETE that ends t's session; a request nothing waits for. */
static mcp_http__req *mcp_http__delete_req(mcp_http *t)
{
    mcp_http__req *r = xcalloc(1, sizeof *r);
    r->t = t;
    r->id = -1;
    r->is_delete = true;
    mcp_http__easy(t, r);
    curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)MCP_HTTP_DELETE_MS);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
    return r;
}

/* Hands waiting requests to libcurl while fewer than the cap are active.
 * Not inside libcurl. */
static void mcp_http__settle(mcp_http *t)
{
    for (mcp_http__req *r = t->reqs; r && t->nactive < MCP_HTTP_MAX_ACTIVE; r = r->next) {
        if (r->added) continue;
        mcp_http__easy(t, r);
        r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
        r->hdrs = curl_slist_append(r->hdrs, "Accept: application/json, text/event-stream");
        r->hdrs = curl_slist_append(r->hdrs, "Expect:");
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->msg);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->len);
        if (curl_multi_add_handle(t->multi, r->easy) != CURLM_OK) {
            /* Left waiting: the next settle tries again. */
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
            curl_slist_free_all(r->hdrs);
            r->hdrs = NULL;
            break;
        }
        r->added = true;
        t->nwaiting--;
        t->nactive++;
    }
}

/* ---- how a connection ends ---- */

/* Ends the connection: every request is dropped, and the server logic
 * learns how once libcurl has returned. */
static void mcp_http__end(mcp_http *t, const char *how)
{
    while (t->reqs) mcp_http__req_drop(t, t->reqs);
    t->open = false;
    free(t->session);
    t->session = NULL;
    mcp_http__push(t, MCP_HTTP__EOF, NULL, 0, -1);
    mcp_http__push(t, MCP_HTTP__CLOSED, xstrdup(how), 0, -1);
}

/* The start of an error answer, one line, secrets masked, for a message. */
static char *mcp_http__snippet(const buf *in)
{
    size_t n = in->len < 200 ? in->len : 200;
    char *s = redact_string(in->data ? in->data : "", n, NULL);
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    return s;
}

/* What an answer that is not 2xx says, for messages. */
static char *mcp_http__status_text(mcp_http__req *r, long status)
{
    char *snip = mcp_http__snippet(&r->in);
    char *s = xasprintf("answered HTTP %ld at %s%s%s%s", status, r->t->display,
                        status >= 300 && status < 400 ? " (redirects are not followed)" : "",
                        *snip ? ": " : "", snip);
    free(snip);
    return s;
}

/* A transfer has finished: what it means for the connection and its call. */
static void mcp_http__finished(mcp_http *t, mcp_http__req *r, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    char *why = NULL;
    if (r->toobig) {
        mcp_http__push(t, MCP_HTTP__TOOBIG, NULL, r->seen, r->id);
        return;
    }
    if (status == 401) {
        char *auth = redact_string(r->auth, strlen(r->auth), NULL);
        why = xasprintf("refused the request: HTTP 401 Unauthorized%s%s%s",
                        *auth ? " (WWW-Authenticate: " : "", auth, *auth ? ")" : "");
        free(auth);
        t->unauthorized = true;
        mcp_http__end(t, why);
    } else if (status == 404 && r->had_session) {
        t->rejected = r->id;
        mcp_http__end(t, "forgot its session (HTTP 404)");
    } else if (code != CURLE_OK) {
        why = xasprintf("could not be reached at %s: %s", t->display, curl_easy_strerror(code));
    } else if (status < 200 || status > 299) {
        why = mcp_http__status_text(r, status);
    } else if (r->body == MCP_HTTP__JSON && r->in.len > 0) {
        mcp_http__push(t, MCP_HTTP__FRAME, mcp_http__dup(r->in.data, r->in.len), r->in.len, -1);
        return;
    } else if (r->id >= 0 && !r->answered) {
        /* An SSE answer without the response, an empty JSON body, or a
         * body of another type: the call would wait for nothing. */
        why = xasprintf("ended its answer at %s before the response", t->display);
    }
    if (why && t->open) {
        if (r->is_init)
            mcp_http__end(t, why);
        else if (r->id >= 0)
            mcp_http__push_error(t, r->id, why);
        else
            LOG(LOG_WARN, "mcp http message not taken", "server=%s error=\"%s\"", t->base.name,
                why);
    }
    free(why);
}

/* Reports every finished transfer. Not inside libcurl. */
static void mcp_http__check_done(mcp_http *t)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(t->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        mcp_http__req *r = (mcp_http__req *)priv;
        CURLcode code = m->data.result;
        if (r->is_delete) {
            for (mcp_http__req **p = &t->deleting; *p; p = &(*p)->next)
                if (*p == r) {
                    *p = r->next;
                    break;
                }
            mcp_http__req_free(r);
            continue;
        }
        mcp_http__finished(t, r, code);
        /* The connection may have ended, taking r with it. */
        for (mcp_http__req *x = t->reqs; x; x = x->next)
            if (x == r) {
                mcp_http__req_drop(t, r);
                break;
            }
    }
}

/* ---- the loop and libcurl ---- */

static void mcp_http__run(mcp_http *t, curl_socket_t fd, int mask)
{
    int running = 0;
    t->depth++;
    curl_multi_socket_action(t->multi, fd, mask, &running);
    t->depth--;
    mcp_http__check_done(t);
    mcp_http__settle(t);
    mcp_http__drain(t);
}

static void mcp_http__on_sock(evutil_socket_t fd, short what, void *arg)
{
    mcp_http__run(arg, fd,
                  ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                      ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0));
}

static void mcp_http__on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_http__run(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void mcp_http__on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_http__settle(arg);
    mcp_http__drain(arg);
}

/* CURLMOPT_SOCKETFUNCTION: the event of a socket is kept in t->socks and
 * assigned to the socket in libcurl, replaced when what it waits for
 * changes. */
static int mcp_http__watch(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    mcp_http *t = ud;
    struct event *ev = sockp;
    (void)easy;
    if (ev) {
        event_free(ev);
        for (size_t i = 0; i < t->nsocks; i++)
            if (t->socks[i] == ev) t->socks[i] = t->socks[--t->nsocks];
    }
    if (what == CURL_POLL_REMOVE) {
        curl_multi_assign(t->multi, fd, NULL);
        return 0;
    }
    short flags = EV_PERSIST;
    if (what & CURL_POLL_IN) flags |= EV_READ;
    if (what & CURL_POLL_OUT) flags |= EV_WRITE;
    ev = event_new(t->evb, fd, flags, mcp_http__on_sock, t);
    event_add(ev, NULL);
    t->socks = xrealloc(t->socks, (t->nsocks + 1) * sizeof *t->socks);
    t->socks[t->nsocks++] = ev;
    curl_multi_assign(t->multi, fd, ev);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION. */
static int mcp_http__arm(CURLM *multi, long ms, void *ud)
{
    mcp_http *t = ud;
    (void)multi;
    evtimer_del(t->timer);
    if (ms >= 0) {
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        evtimer_add(t->timer, &tv);
    }
    return 0;
}

/* ---- the operations ---- */

static int mcp_http__start(mcp_transport *tr, char *err, size_t errlen)
{
    mcp_http *t = (mcp_http *)tr;
    (void)err;
    (void)errlen;
    t->open = true;
    t->unauthorized = false;
    t->rejected = -1;
    snprintf(t->base.peer, sizeof t->base.peer, "url=%s", t->display);
    return 0;
}

/* The request id and method of an outgoing message, and for a
 * notifications/cancelled the id it cancels (else -1). */
static void mcp_http__inspect(const char *msg, size_t len, int64_t *id, bool *is_init,
                              int64_t *cancels)
{
    json_t *v = json_loadb(msg, len, 0, NULL);
    json_t *jid = json_object_get(v, "id");
    const char *method = json_string_value(json_object_get(v, "method"));
    *id = method && json_is_integer(jid) ? json_integer_value(jid) : -1;
    *is_init = method && strcmp(method, "initialize") == 0;
    json_t *rid = json_object_get(json_object_get(v, "params"), "requestId");
    *cancels = method && strcmp(method, "notifications/cancelled") == 0 && json_is_integer(rid)
                   ? json_integer_value(rid)
                   : -1;
    json_decref(v);
}

static int mcp_http__send(mcp_transport *tr, const char *msg, size_t len)
{
    mcp_http *t = (mcp_http *)tr;
    if (!t->open || t->nwaiting >= MCP_HTTP_MAX_WAITING) return -1;
    mcp_http__req *r = xcalloc(1, sizeof *r);
    r->t = t;
    r->msg = xstrndup(msg, len);
    r->len = len;
    int64_t cancels;
    mcp_http__inspect(msg, len, &r->id, &r->is_init, &cancels);
    /* A cancelled request's answer is of no use: its transfer ends now. */
    for (mcp_http__req *x = t->reqs; x && cancels >= 0; x = x->next)
        if (x->id == cancels) {
            mcp_http__req_drop(t, x);
            break;
        }
    mcp_http__req **p = &t->reqs;
    while (*p) p = &(*p)->next;
    *p = r;
    t->nwaiting++;
    if (t->depth == 0)
        mcp_http__settle(t);
    else
        event_active(t->kick, 0, 0);
    return 0;
}

static void mcp_http__close(mcp_transport *tr)
{
    mcp_http *t = (mcp_http *)tr;
    while (t->reqs) mcp_http__req_drop(t, t->reqs);
    mcp_http__items_free(t);
    if (t->session && t->open) {
        /* Best effort: the server may free the session now. */
        mcp_http__req *d = mcp_http__delete_req(t);
        if (curl_multi_add_handle(t->multi, d->easy) == CURLM_OK) {
            d->added = true;
            d->next = t->deleting;
            t->deleting = d;
        } else {
            mcp_http__req_free(d);
        }
    }
    free(t->session);
    t->session = NULL;
    free(t->version);
    t->version = NULL;
    t->open = false;
    t->gen++;
    t->base.peer[0] = '\0';
}

static void mcp_http__negotiated(mcp_transport *tr, const char *version)
{
    mcp_http *t = (mcp_http *)tr;
    free(t->version);
    t->version = xstrdup(version);
}

/* DELETEs the open sessions of ts together, waiting MCP_HTTP_DELETE_MS at
 * most, then closes them. */
static void mcp_http__stop_all(mcp_transport **ts, size_t n)
{
    CURLM *m = curl_multi_init();
    mcp_http__req **dels = xcalloc(n + 1, sizeof *dels);
    for (size_t i = 0; i < n; i++) {
        mcp_http *t = (mcp_http *)ts[i];
        if (!t->open || !t->session) continue;
        dels[i] = mcp_http__delete_req(t);
        curl_multi_add_handle(m, dels[i]->easy);
        free(t->session);
        t->session = NULL;
    }
    int running = 1;
    for (int waited = 0; running > 0 && waited < MCP_HTTP_DELETE_MS; waited += 50) {
        curl_multi_perform(m, &running);
        if (running > 0) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (dels[i]) {
            curl_multi_remove_handle(m, dels[i]->easy);
            mcp_http__req_free(dels[i]);
        }
        mcp_http__close(ts[i]);
    }
    free(dels);
    curl_multi_cleanup(m);
}

static void mcp_http__free(mcp_transport *tr)
{
    mcp_http *t = (mcp_http *)tr;
    free(t->session); /* no DELETE now: nothing would carry it */
    t->session = NULL;
    mcp_http__close(tr);
    while (t->deleting) {
        mcp_http__req *d = t->deleting;
        t->deleting = d->next;
        mcp_http__req_free(d);
    }
    curl_multi_cleanup(t->multi);
    for (size_t i = 0; i < t->nsocks; i++) event_free(t->socks[i]);
    free(t->socks);
    event_free(t->timer);
    event_free(t->kick);
    free(t->url);
    free(t->display);
    for (char **h = t->headers; *h; h++) free(*h);
    free(t->headers);
    free(t);
}

static const mcp_transport_ops mcp_http__ops = {
    .start = mcp_http__start,
    .send = mcp_http__send,
    .close = mcp_http__close,
    .negotiated = mcp_http__negotiated,
    .stop_all = mcp_http__stop_all,
    .free = mcp_http__free,
};

/* scheme://host/path of url: no user, password, query or fragment. */
static char *mcp_http__display(const char *url)
{
    const char *host = strstr(url, "://") + 3;
    const char *end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *q = host; q < end; q++)
        if (*q == '@') at = q;
    const char *path_end = end + strcspn(end, "?#");
    return xasprintf("%.*s%.*s", (int)(host - url), url, (int)(path_end - (at ? at + 1 : host)),
                     at ? at + 1 : host);
}

mcp_transport *mcp_http_new(struct event_base *base, const mcp_server_config *cfg)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    mcp_http *t = xcalloc(1, sizeof *t);
    t->base.ops = &mcp_http__ops;
    t->evb = base;
    t->url = xstrdup(cfg->url);
    t->display = mcp_http__display(cfg->url);
    size_t nh = 0;
    while (cfg->headers && cfg->headers[nh]) nh++;
    t->headers = xcalloc(nh + 1, sizeof *t->headers);
    for (size_t i = 0; i < nh; i++) t->headers[i] = xstrdup(cfg->headers[i]);
    t->tls_verify = cfg->tls_verify;
    t->timeout_ms = cfg->timeout_ms;
    t->items_tail = &t->items;
    t->rejected = -1;
    t->timer = evtimer_new(base, mcp_http__on_timer, t);
    t->kick = event_new(base, -1, 0, mcp_http__on_kick, t);
    t->multi = curl_multi_init();
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, mcp_http__watch);
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, mcp_http__arm);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
    if (!t->tls_verify)
        LOG(LOG_WARN, "mcp server certificate not verified", "server=%s url=%s", cfg->name,
            t->display);
    return &t->base;
}

int64_t mcp_http_take_rejected(mcp_transport *tr)
{
    if (tr->ops != &mcp_http__ops) return -1;
    mcp_http *t = (mcp_http *)tr;
    int64_t id = t->rejected;
    t->rejected = -1;
    return id;
}

bool mcp_http_unauthorized(const mcp_transport *t)
{
    return t->ops == &mcp_http__ops && ((const mcp_http *)t)->unauthorized;
}
