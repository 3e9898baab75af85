/*
 * http: the HTTP server object, routing and dispatch, requests and the
 * replies to them. Connections are in http_conn.c, streamed answers in
 * http_stream.c, error bodies in http_error.c.
 */
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

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#include "core/evt.h"
#include "core/jsonw.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/loopprio.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"
#include "net/framing.h"
#include "net/http_int.h"
#include "net/route.h"

/* A route's target in the table: its handler. */
struct http__route {
    http_handler h;
    void *ud;
    struct http__route *next;
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

void http__req_free(http_req *r)
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

void http__count(int status)
{
    char v[BUF_I64_LEN];
    buf_i64_text(v, status);
    metrics_add(http__responses, v, 1);
}

void http__log(http_req *r)
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

void http__common_headers(http_req *r)
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
    char *text = jsonw_dumps(body, EVT_JSON_FLAGS);
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
        id_random_pooled(rnd, sizeof rnd);
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 8; i++) {
            r->id[2 * i] = hex[rnd[i] >> 4];
            r->id[2 * i + 1] = hex[rnd[i] & 15];
        }
        r->id[16] = '\0';
    }
    r->head = strcmp(r->method, "HEAD") == 0;
    r->conn = http__conn_find(s, r->evcon);
    if (r->conn) http__conn_request_read(r->conn);
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
    http__conns_init(s);
    evhttp_set_gencb(s->http, http__gencb, s);
    s->flush_ev = event_new(base, -1, 0, http__flush_cb, s);
    (void)event_priority_set(s->flush_ev, LOOPPRIO_STREAM); /* lib/loopprio.h */
    return s;
}

void http_server_free(http_server *s)
{
    if (!s) return;
    s->freeing = true;
    /* Every open connection's close callback runs here. */
    evhttp_free(s->http);
    http__conns_free(s);
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
    http__conns_listen(s);
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
