/*
 * mcp_http: the HTTP transports of the MCP client, Streamable HTTP and the
 * older HTTP+SSE. One libcurl multi handle per server, driven by the event
 * loop through the multi socket interface.
 *
 * Every transfer is a request (mcp_http__req) of one of four kinds: a
 * POSTed message; the GET that resumes a POST's answer stream cut before
 * its response (Last-Event-ID); the GET of the server's own event stream
 * (Streamable HTTP's optional one, or the HTTP+SSE transport's one stream
 * that every answer comes on); the DELETE of a session. A resume or a
 * reopened event stream waits its delay with its transfer gone and its
 * request kept.
 *
 * What libcurl hands over inside its callbacks (answer bytes, SSE events)
 * is only queued there, as items; the items are delivered to the server
 * logic once libcurl has returned (mcp_http__drain), which is what lets a
 * callback send, close or free the transport. A close bumps the
 * generation, which tells a drain in progress to stop.
 */
#include "engine/mcp_http.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/sse.h"
#include "engine/mcp.h"
#include "engine/mcp_int.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/redact.h"
#include "lib/xmalloc.h"

#define MCP_HTTP_SESSION_MAX  256  /* bytes of an Mcp-Session-Id */
#define MCP_HTTP_AUTH_MAX     512  /* bytes of a WWW-Authenticate value kept */
#define MCP_HTTP_EVENT_ID_MAX 1024 /* bytes of a Last-Event-ID sent back */

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

typedef enum mcp_http__kind {
    MCP_HTTP__POST,   /* a message */
    MCP_HTTP__RESUME, /* GET: the rest of a POST's answer stream */
    MCP_HTTP__LISTEN, /* GET: the server's own event stream */
    MCP_HTTP__DELETE, /* the end of a session; nothing is reported about it */
} mcp_http__kind;

/* One HTTP request (see the top of the file). */
typedef struct mcp_http__req {
    mcp_http *t;
    mcp_http__kind kind;
    CURL *easy;
    struct curl_slist *hdrs;
    char *msg;
    size_t len;
    int64_t id;       /* the message's request id; -1 for a notification or answer */
    bool is_init;     /* the message is initialize */
    bool had_session; /* the request carried a session id */
    bool added;       /* handed to libcurl */
    bool delayed;     /* waiting for wait to fire before its next transfer */
    bool answered;    /* the response to id was seen */
    bool toobig;
    size_t seen;      /* bytes of the over-long message seen */
    char *last_id;    /* the id of the last SSE event seen, for a resume; or NULL */
    int64_t retry_ms; /* the server's last retry field; -1 when none */
    int attempts;     /* transfers in a row that brought no event */
    struct event *wait;
    char *why; /* what made this request end its own transfer */
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
    bool legacy; /* the HTTP+SSE transport: POSTs go to the endpoint it names */
    int64_t timeout_ms;
    char *endpoint;        /* HTTP+SSE: where messages are POSTed, once known */
    mcp_http__req *listen; /* the server's event stream, if open */

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

/* Ends r's transfer and forgets what it read, keeping the request. */
static void mcp_http__reset(mcp_http__req *r)
{
    if (r->easy) {
        if (r->added) curl_multi_remove_handle(r->t->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    if (r->body == MCP_HTTP__SSE) sse_parser_cleanup(&r->sse);
    buf_cleanup(&r->in);
    r->body = MCP_HTTP__UNDECIDED;
    r->ctype[0] = r->auth[0] = '\0';
    r->toobig = false;
}

static void mcp_http__req_free(mcp_http__req *r)
{
    mcp_http__reset(r);
    if (r->wait) event_free(r->wait);
    free(r->last_id);
    free(r->why);
    free(r->msg);
    free(r);
}

/* A new request of t of kind for request id; not queued yet. */
static mcp_http__req *mcp_http__req_new(mcp_http *t, mcp_http__kind kind, int64_t id)
{
    mcp_http__req *r = xcalloc(1, sizeof *r);
    r->t = t;
    r->kind = kind;
    r->id = id;
    r->retry_ms = -1;
    return r;
}

/* Queues r after the others of t: the next settle hands it to libcurl. */
static void mcp_http__enqueue(mcp_http *t, mcp_http__req *r)
{
    mcp_http__req **p = &t->reqs;
    while (*p) p = &(*p)->next;
    *p = r;
    t->nwaiting++;
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
    if (t->listen == r) t->listen = NULL;
    mcp_http__req_free(r);
}

/* The "endpoint" event of the HTTP+SSE transport: where to POST from now
 * on. A second one replaces the first. Returns non-zero, with r->why set,
 * when it cannot be used, which ends the event stream. */
static int mcp_http__on_endpoint(mcp_http__req *r, const sse_event *ev)
{
    char err[256];
    char *url = mcp_http_endpoint(r->t->url, ev->data, ev->data_len, err, sizeof err);
    if (!url) {
        r->why = xasprintf("sent an endpoint that cannot be used: %s", err);
        return 1;
    }
    free(r->t->endpoint);
    r->t->endpoint = url;
    return 0;
}

/* One SSE event of an answer or event stream: a message, queued for the
 * server; on the HTTP+SSE stream also the endpoint. */
static int mcp_http__on_sse(void *ud, const sse_event *ev)
{
    mcp_http__req *r = ud;
    r->attempts = 0; /* the stream brought something: it is not failing */
    if (r->t->legacy && r->kind == MCP_HTTP__LISTEN && strcmp(ev->event, "endpoint") == 0)
        return mcp_http__on_endpoint(r, ev);
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
    } else if (r->t->legacy && r->kind == MCP_HTTP__POST) {
        r->body = MCP_HTTP__IGNORED; /* the answer comes on the event stream */
    } else if (strncasecmp(r->ctype, "text/event-stream", 17) == 0) {
        r->body = MCP_HTTP__SSE;
        sse_parser_init(&r->sse, MCP_LINE_MAX, mcp_http__on_sse, r);
    } else if (strncasecmp(r->ctype, "application/json", 16) == 0 && r->kind == MCP_HTTP__POST) {
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
    case MCP_HTTP__SSE: {
        int rc = sse_parser_feed(&r->sse, ptr, n);
        if (rc == 0) return n;
        if (rc != SSE_ERR_TOOBIG) return 0; /* r->why says why */
        r->seen = MCP_LINE_MAX + 1;
        break;
    }
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
    } else if (MCP_HTTP__IS("Mcp-Session-Id") && r->is_init && !r->t->legacy && vlen > 0 &&
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

/* Appends the header line "name: value" to r's list. */
static void mcp_http__header(mcp_http__req *r, const char *name, const char *value)
{
    char *h = xasprintf("%s: %s", name, value);
    r->hdrs = curl_slist_append(r->hdrs, h);
    free(h);
}

/* The headers of a request by kind, after the configured ones: what a
 * POST carries, and what a GET asks for. */
static const char *const mcp_http__kind_headers[][4] = {
    [MCP_HTTP__POST] = {"Content-Type: application/json",
                        "Accept: application/json, text/event-stream", "Expect:", NULL},
    [MCP_HTTP__RESUME] = {"Accept: text/event-stream", NULL},
    [MCP_HTTP__LISTEN] = {"Accept: text/event-stream", NULL},
    [MCP_HTTP__DELETE] = {NULL},
};

/* A new easy handle of t for r, ready for libcurl. */
static void mcp_http__easy(mcp_http *t, mcp_http__req *r)
{
    CURL *e = curl_easy_init();
    r->easy = e;
    bool post = r->kind == MCP_HTTP__POST;
    curl_easy_setopt(e, CURLOPT_URL, post && t->legacy ? t->endpoint : t->url);
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
        mcp_http__header(r, "Mcp-Session-Id", t->session);
        r->had_session = true;
    }
    r->had_session |= post && t->legacy; /* the endpoint names the session */
    if (t->version && !r->is_init && !t->legacy)
        mcp_http__header(r, "MCP-Protocol-Version", t->version);
    for (const char *const *h = mcp_http__kind_headers[r->kind]; *h; h++)
        r->hdrs = curl_slist_append(r->hdrs, *h);
    if (r->last_id) mcp_http__header(r, "Last-Event-ID", r->last_id);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    if (post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->msg);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->len);
    } else if (r->kind == MCP_HTTP__DELETE) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)MCP_HTTP_DELETE_MS);
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, mcp_http__on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mcp_http__on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
}

/* The DELETE that ends t's session; a request nothing waits for. */
static mcp_http__req *mcp_http__delete_req(mcp_http *t)
{
    mcp_http__req *r = mcp_http__req_new(t, MCP_HTTP__DELETE, -1);
    mcp_http__easy(t, r);
    return r;
}

/* Whether r may be handed to libcurl now: not waiting for its delay, and
 * for a POST of the HTTP+SSE transport, the endpoint known. */
static bool mcp_http__ready(const mcp_http__req *r)
{
    return !r->added && !r->delayed &&
           !(r->kind == MCP_HTTP__POST && r->t->legacy && !r->t->endpoint);
}

/* Hands waiting requests to libcurl while fewer than the cap are active.
 * Not inside libcurl. */
static void mcp_http__settle(mcp_http *t)
{
    for (mcp_http__req *r = t->reqs; r && t->nactive < MCP_HTTP_MAX_ACTIVE; r = r->next) {
        if (!mcp_http__ready(r)) continue;
        mcp_http__easy(t, r);
        if (curl_multi_add_handle(t->multi, r->easy) != CURLM_OK) {
            /* Left waiting: the next settle tries again. */
            mcp_http__reset(r);
            break;
        }
        r->added = true;
        t->nwaiting--;
        t->nactive++;
    }
}

/* The delay of a resume is over: the next settle sends it. */
static void mcp_http__on_wait(evutil_socket_t fd, short what, void *arg)
{
    mcp_http__req *r = arg;
    (void)fd;
    (void)what;
    r->delayed = false;
    event_active(r->t->kick, 0, 0);
}

/* Whether r's stream, which ended before what it was for, may be tried
 * again: it named an event to resume from (or is the server's own event
 * stream, which may simply be opened again) and has not failed
 * MCP_HTTP_RESUME_MAX times in a row. If so, its transfer is ended and its
 * next one waits for the delay the server asked for. Inside check_done. */
static bool mcp_http__again(mcp_http *t, mcp_http__req *r)
{
    if (r->body == MCP_HTTP__SSE) {
        const char *id = r->sse.last_id.data;
        size_t n = r->sse.last_id.len;
        if (n > 0 && n <= MCP_HTTP_EVENT_ID_MAX) {
            free(r->last_id);
            r->last_id = xstrndup(id, n);
        }
        if (r->sse.retry_ms >= 0) r->retry_ms = r->sse.retry_ms;
    }
    if (!r->last_id && r->kind != MCP_HTTP__LISTEN) return false;
    if (++r->attempts > MCP_HTTP_RESUME_MAX) return false;
    mcp_http__reset(r);
    r->added = false;
    t->nactive--;
    t->nwaiting++;
    if (r->kind == MCP_HTTP__POST) r->kind = MCP_HTTP__RESUME;
    if (!r->wait) r->wait = evtimer_new(t->evb, mcp_http__on_wait, r);
    r->delayed = true;
    int64_t delay = mcp_http_retry_delay(r->retry_ms, r->attempts);
    mcp__timer(r->wait, delay);
    LOG(LOG_DEBUG, "mcp http stream to be opened again",
        "server=%s id=%" PRId64 " attempt=%d delay_ms=%" PRId64, t->base.name, r->id, r->attempts,
        delay);
    return true;
}

/* Opens the server's event stream: at start for HTTP+SSE, after the
 * handshake for Streamable HTTP. */
static void mcp_http__listen(mcp_http *t)
{
    if (t->listen) return;
    t->listen = mcp_http__req_new(t, MCP_HTTP__LISTEN, -1);
    mcp_http__enqueue(t, t->listen);
    event_active(t->kick, 0, 0);
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

/* What the end of the server's own event stream r means. Streamable HTTP:
 * the stream is optional, so a refusal only ends the listening (404 and
 * 405 say the server offers none) and an end opens it again after the
 * delay; HTTP+SSE: every answer comes on it, so the connection is over.
 * Returns whether r is kept. */
static bool mcp_http__listen_ended(mcp_http *t, mcp_http__req *r, CURLcode code, long status)
{
    bool failed = status < 200 || status > 299;
    char *why = r->why                        ? xstrdup(r->why)
                : code != CURLE_OK && !status ? xasprintf("could not be reached at %s: %s",
                                                          t->display, curl_easy_strerror(code))
                : failed                      ? mcp_http__status_text(r, status)
                         : xasprintf("closed its event stream at %s", t->display);
    bool kept = false;
    if (t->legacy)
        mcp_http__end(t, why);
    else if (!failed || !status)
        kept = mcp_http__again(t, r);
    if (!t->legacy && !kept) {
        if (status == 404 || status == 405)
            LOG(LOG_DEBUG, "mcp server offers no event stream", "server=%s", t->base.name);
        else
            LOG(LOG_WARN, "mcp server event stream given up", "server=%s error=\"%s\"",
                t->base.name, why);
    }
    free(why);
    return kept;
}

/* A transfer has finished: what it means for the connection and its call.
 * Returns whether r is kept (for another transfer). */
static bool mcp_http__finished(mcp_http *t, mcp_http__req *r, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    bool ok = status >= 200 && status <= 299;
    bool waits = r->id >= 0 && !r->answered && !t->legacy; /* for the response on this stream */
    char *why = NULL;
    if (r->toobig) {
        mcp_http__push(t, MCP_HTTP__TOOBIG, NULL, r->seen, r->id);
        if (r->kind == MCP_HTTP__LISTEN && t->legacy)
            mcp_http__end(t, "sent a message over the cap on its event stream");
        return false;
    }
    if (status == 401) {
        char *auth = redact_string(r->auth, strlen(r->auth), NULL);
        why = xasprintf("refused the request: HTTP 401 Unauthorized%s%s%s",
                        *auth ? " (WWW-Authenticate: " : "", auth, *auth ? ")" : "");
        free(auth);
        t->unauthorized = true;
        mcp_http__end(t, why);
    } else if (r->kind == MCP_HTTP__LISTEN) {
        return mcp_http__listen_ended(t, r, code, status);
    } else if (status == 404 && r->had_session && r->kind == MCP_HTTP__POST) {
        t->rejected = r->id;
        mcp_http__end(t, "forgot its session (HTTP 404)");
    } else if (r->body == MCP_HTTP__JSON && r->in.len > 0) {
        mcp_http__push(t, MCP_HTTP__FRAME, mcp_http__dup(r->in.data, r->in.len), r->in.len, -1);
        return false;
    } else if (waits && (ok || !status) && mcp_http__again(t, r)) {
        return true;
    } else if (code != CURLE_OK && !status) {
        why = xasprintf("could not be reached at %s: %s", t->display, curl_easy_strerror(code));
    } else if (!ok) {
        why = mcp_http__status_text(r, status);
    } else if (waits) {
        /* An SSE answer without the response, an empty JSON body, or a
         * body of another type: the call would wait for nothing. */
        why = xasprintf("ended its answer at %s before the response", t->display);
    }
    /* An ended connection took r with it. */
    if (why && t->open) {
        if (r->kind == MCP_HTTP__RESUME) {
            char *resumed = r->attempts > MCP_HTTP_RESUME_MAX
                                ? xasprintf("%s; %d attempts to resume it brought nothing", why,
                                            MCP_HTTP_RESUME_MAX)
                                : xasprintf("could not resume its answer: %s", why);
            free(why);
            why = resumed;
        }
        if (r->is_init)
            mcp_http__end(t, why);
        else if (r->id >= 0)
            mcp_http__push_error(t, r->id, why);
        else
            LOG(LOG_WARN, "mcp http message not taken", "server=%s error=\"%s\"", t->base.name,
                why);
    }
    free(why);
    return false;
}

/* One transfer of t has finished with code: reported, and its request
 * dropped unless it is kept for another transfer. */
static void mcp_http__done(mcp_http *t, CURL *easy, CURLcode code)
{
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    mcp_http__req *r = (mcp_http__req *)priv;
    mcp_http__req **p = r->kind == MCP_HTTP__DELETE ? &t->deleting : NULL;
    if (p) {
        while (*p && *p != r) p = &(*p)->next;
        if (*p) *p = r->next;
        mcp_http__req_free(r);
        return;
    }
    if (mcp_http__finished(t, r, code)) return;
    /* The connection may have ended, taking r with it. */
    for (mcp_http__req *x = t->reqs; x; x = x->next)
        if (x == r) {
            mcp_http__req_drop(t, r);
            break;
        }
}

/* Reports every finished transfer. Not inside libcurl. */
static void mcp_http__check_done(mcp_http *t)
{
    int left;
    for (CURLMsg *m; (m = curl_multi_info_read(t->multi, &left));)
        if (m->msg == CURLMSG_DONE) mcp_http__done(t, m->easy_handle, m->data.result);
}

/* ---- the loop and libcurl ---- */

/* What follows libcurl's work, or a kick: the finished transfers, the
 * waiting requests, the items queued. Not inside libcurl. */
static void mcp_http__pump(mcp_http *t)
{
    mcp_http__check_done(t);
    mcp_http__settle(t);
    mcp_http__drain(t);
}

/* A socket of libcurl's is ready, or its timer fired: an event without a
 * descriptor passes -1, which is CURL_SOCKET_TIMEOUT. */
static void mcp_http__on_sock(evutil_socket_t fd, short what, void *arg)
{
    mcp_http *t = arg;
    int mask =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    t->depth++;
    curl_multi_socket_action(t->multi, fd < 0 ? CURL_SOCKET_TIMEOUT : fd, mask, &running);
    t->depth--;
    mcp_http__pump(t);
}

static void mcp_http__on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_http__pump(arg);
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
    if (ms >= 0) mcp__timer(t->timer, ms);
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
    if (t->legacy) mcp_http__listen(t);
    return 0;
}

/* What the transport needs to know of an outgoing message. */
typedef struct mcp_http__outgoing {
    int64_t id;       /* a request's id, else -1 */
    bool is_init;     /* initialize */
    bool initialized; /* notifications/initialized: the handshake is over */
    int64_t cancels;  /* notifications/cancelled: the id it cancels, else -1 */
} mcp_http__outgoing;

static mcp_http__outgoing mcp_http__inspect(const char *msg, size_t len)
{
    json_t *v = json_loadb(msg, len, 0, NULL);
    json_t *jid = json_object_get(v, "id");
    const char *method = json_string_value(json_object_get(v, "method"));
    if (!method) method = "";
    json_t *rid = json_object_get(json_object_get(v, "params"), "requestId");
    mcp_http__outgoing o = {
        .id = *method && json_is_integer(jid) ? json_integer_value(jid) : -1,
        .is_init = strcmp(method, "initialize") == 0,
        .initialized = strcmp(method, "notifications/initialized") == 0,
        .cancels = strcmp(method, "notifications/cancelled") == 0 && json_is_integer(rid)
                       ? json_integer_value(rid)
                       : -1,
    };
    json_decref(v);
    return o;
}

static int mcp_http__send(mcp_transport *tr, const char *msg, size_t len)
{
    mcp_http *t = (mcp_http *)tr;
    if (!t->open || t->nwaiting >= MCP_HTTP_MAX_WAITING) return -1;
    mcp_http__outgoing o = mcp_http__inspect(msg, len);
    mcp_http__req *r = mcp_http__req_new(t, MCP_HTTP__POST, o.id);
    r->msg = xstrndup(msg, len);
    r->len = len;
    r->is_init = o.is_init;
    /* A cancelled request's answer is of no use: its transfer ends now. */
    for (mcp_http__req *x = t->reqs; x && o.cancels >= 0; x = x->next)
        if (x->id == o.cancels) {
            mcp_http__req_drop(t, x);
            break;
        }
    mcp_http__enqueue(t, r);
    if (o.initialized && !t->legacy) mcp_http__listen(t);
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
    /* What belonged to this connection only. */
    char **owned[] = {&t->session, &t->version, &t->endpoint};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        free(*owned[i]);
        *owned[i] = NULL;
    }
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

/* Whether libcurl has written all of r's message: the server has it, and
 * only the answer, which a notice does not need, is left. */
static bool mcp_http__sent(const mcp_http__req *r)
{
    curl_off_t up = 0;
    return r->added && curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK &&
           up >= (curl_off_t)r->len;
}

/* Moves the notices t has not sent yet (a stop's notifications/cancelled,
 * an answer to the server) from t to m, on new transfers, and links them
 * on *out. Returns how many. */
static size_t mcp_http__take_notices(mcp_http *t, CURLM *m, mcp_http__req **out)
{
    size_t n = 0;
    for (mcp_http__req **p = &t->reqs; *p;) {
        mcp_http__req *r = *p;
        bool notice = r->kind == MCP_HTTP__POST && r->id < 0 && !mcp_http__sent(r) &&
                      !(t->legacy && !t->endpoint);
        if (!notice) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        if (r->added)
            t->nactive--;
        else
            t->nwaiting--;
        mcp_http__reset(r);
        r->added = false;
        mcp_http__easy(t, r);
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)MCP_HTTP_DELETE_MS);
        if (curl_multi_add_handle(m, r->easy) != CURLM_OK) {
            mcp_http__req_free(r);
            continue;
        }
        r->next = *out;
        *out = r;
        n++;
    }
    return n;
}

/* Runs m's transfers until none is left or deadline (clock_mono_ms) has
 * passed. */
static void mcp_http__run_until(CURLM *m, int64_t deadline)
{
    int running = 1;
    while (running > 0) {
        curl_multi_perform(m, &running);
        int64_t left = deadline - clock_mono_ms();
        if (running == 0 || left <= 0) break;
        curl_multi_poll(m, NULL, 0, left < 50 ? (int)left : 50, NULL);
    }
}

/* Ends the open sessions of ts together, in MCP_HTTP_DELETE_MS at most:
 * first the notices not sent yet go out, since the DELETE that follows
 * ends the session they belong to; then the DELETEs; then each connection
 * is closed. */
static void mcp_http__stop_all(mcp_transport **ts, size_t n)
{
    int64_t deadline = clock_mono_ms() + MCP_HTTP_DELETE_MS;
    CURLM *m = curl_multi_init();
    mcp_http__req *notices = NULL;
    size_t nnotices = 0;
    for (size_t i = 0; i < n; i++) {
        mcp_http *t = (mcp_http *)ts[i];
        if (t->open) nnotices += mcp_http__take_notices(t, m, &notices);
    }
    if (nnotices > 0) mcp_http__run_until(m, deadline);
    while (notices) {
        mcp_http__req *r = notices;
        notices = r->next;
        curl_multi_remove_handle(m, r->easy);
        mcp_http__req_free(r);
    }

    mcp_http__req **dels = xcalloc(n + 1, sizeof *dels);
    size_t ndels = 0;
    for (size_t i = 0; i < n; i++) {
        mcp_http *t = (mcp_http *)ts[i];
        if (!t->open || !t->session) continue;
        dels[i] = mcp_http__delete_req(t);
        curl_multi_add_handle(m, dels[i]->easy);
        ndels++;
        free(t->session);
        t->session = NULL;
    }
    if (ndels > 0) mcp_http__run_until(m, deadline);
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

/* The table read across, as one list of what this transport does. */
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
    t->legacy = cfg->transport == MCP_TRANSPORT_SSE;
    t->timeout_ms = cfg->timeout_ms;
    t->items_tail = &t->items;
    t->rejected = -1;
    t->timer = evtimer_new(base, mcp_http__on_sock, t);
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

int64_t mcp_http_retry_delay(int64_t server_ms, int attempt)
{
    int64_t ms = server_ms;
    if (ms < 0)
        for (ms = MCP_HTTP_RETRY_DEFAULT_MS; attempt > 1 && ms < MCP_HTTP_RETRY_CAP_MS; attempt--)
            ms *= 2;
    return ms < MCP_HTTP_RETRY_MIN_MS   ? MCP_HTTP_RETRY_MIN_MS
           : ms > MCP_HTTP_RETRY_CAP_MS ? MCP_HTTP_RETRY_CAP_MS
                                        : ms;
}

/* Part what of the URL in u as a new string (flags: curl_url_get's); NULL
 * when the URL has none. */
static char *mcp_http__part(CURLU *u, CURLUPart what, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(u, what, &v, flags) != CURLUE_OK) return NULL;
    char *s = xstrdup(v);
    curl_free(v);
    return s;
}

char *mcp_http_endpoint(const char *base, const char *ref, size_t len, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "it is empty");
        return NULL;
    }
    if (len > MCP_HTTP_ENDPOINT_MAX) {
        snprintf(err, errlen, "it is longer than %d bytes", MCP_HTTP_ENDPOINT_MAX);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)ref[i] <= ' ' || ref[i] == 0x7f) {
            snprintf(err, errlen, "it has a space or a control character");
            return NULL;
        }
    char *copy = xstrndup(ref, len), *url = NULL;
    CURLU *b = curl_url(), *u = curl_url();
    CURLUcode rc = curl_url_set(b, CURLUPART_URL, base, 0);
    if (rc == CURLUE_OK) {
        curl_url_set(u, CURLUPART_URL, base, 0);
        rc = curl_url_set(u, CURLUPART_URL, copy, 0);
    }
    if (rc != CURLUE_OK) {
        snprintf(err, errlen, "it is not a URL (%s)", curl_url_strerror(rc));
        goto out;
    }
    /* Same origin: the same scheme, host and port as the event stream. */
    const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    bool same = true;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        /* The port made explicit when the scheme implies it. */
        char *x = mcp_http__part(b, parts[i], CURLU_DEFAULT_PORT);
        char *y = mcp_http__part(u, parts[i], CURLU_DEFAULT_PORT);
        same = same && x && y && strcasecmp(x, y) == 0;
        free(x);
        free(y);
    }
    char *full = mcp_http__part(u, CURLUPART_URL, 0);
    if (!same) {
        char *shown = mcp_http__display(full), *origin = mcp_http__display(base);
        snprintf(err, errlen, "%s is not on the origin of the event stream %s", shown, origin);
        free(shown);
        free(origin);
        free(full);
        goto out;
    }
    url = full;
out:
    curl_url_cleanup(u);
    curl_url_cleanup(b);
    free(copy);
    return url;
}
