#include "net/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "core/evt.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"
#include "net/route.h"

static void http__count(int status);

#define HTTP__MAX_PARAMS             ROUTE_MAX_PARAMS
#define HTTP__STREAM_WRITE_TIMEOUT_S 60
#define HTTP__STREAM_COPY_MAX        4096 /* stream writes up to this size are copied */

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
    bool peer_gone; /* the connection closed before the owner ended the stream */
    bool ev_owned;  /* evhttp detached the request: freeing it is ours */
    bool chunked;   /* evhttp chose chunked transfer coding for the reply */
    bool is_dirty;  /* linked in srv->dirty */
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

/* ---- rewriting evhttp's own HTML error pages ---- */

static const char http__security_headers[] = "Content-Security-Policy: default-src 'self'\r\n"
                                             "X-Content-Type-Options: nosniff\r\n"
                                             "Referrer-Policy: no-referrer\r\n"
                                             "X-Frame-Options: DENY\r\n";

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
    char body[512];
    int blen = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                        http__code_for(status), msg);
    s->rewriting = 1;
    struct evbuffer *keep = evbuffer_new();
    evbuffer_remove_buffer(out, keep, (size_t)last.pos);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_add_printf(keep,
                        "%s %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n%s\r\n%s",
                        version, status, http_reason(status), blen, http__security_headers, body);
    evbuffer_add_buffer(out, keep);
    evbuffer_free(keep);
    s->rewriting = 0;
    http__count(status);
    LOG(LOG_INFO, "request", "method=- path=- status=%d duration_ms=0.0 request_id=-", status);
out:
    if (thawed) evbuffer_freeze(out, 1);
}

/* Creates each connection's bufferevent so the rewrite can watch it. */
static struct bufferevent *http__bevcb(struct event_base *base, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev) evbuffer_add_cb(bufferevent_get_output(bev), http__rewrite_cb, arg);
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
    if (r->srv->draining) http_reply_header(r, "Connection", "close");
    struct evbuffer *body = evhttp_request_get_output_buffer(r->ev);
    if (len && strcmp(r->method, "HEAD") != 0) evbuffer_add(body, data, len);
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
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(msg));
    json_t *o = json_object();
    json_object_set_new(o, "error", err);
    http_reply_json(r, status, o);
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
    (void)evcon;
    http_req *r = arg;
    if (r->peer_gone) return;
    r->peer_gone = true;
    r->ev_owned = evhttp_request_get_connection(r->ev) == NULL;
    if (r->on_close) r->on_close(r->close_ud);
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
    if (len == 0) {
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
        evhttp_connection_set_closecb(r->evcon, NULL, NULL);
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
        evhttp_connection_set_closecb(r->evcon, NULL, NULL);
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
    evhttp_set_max_headers_size(s->http, 64 * 1024);
    evhttp_set_default_content_type(s->http, NULL);
    /* Read a refused body to its end before answering, so the client is
     * not reset while it still sends and can read the 413. */
    evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
    struct timeval tv = {o->timeout_seconds > 0 ? o->timeout_seconds : 30, 0};
    evhttp_set_timeout_tv(s->http, &tv);
    evhttp_set_bevcb(s->http, http__bevcb, s);
    evhttp_set_gencb(s->http, http__gencb, s);
    s->flush_ev = event_new(base, -1, 0, http__flush_cb, s);
    return s;
}

void http_server_free(http_server *s)
{
    if (!s) return;
    evhttp_free(s->http);
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
    }
    s->draining = true;
}
