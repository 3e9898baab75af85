/*
 * Authentication and isolation (docs/security.md): the
 * guard that runs before every route, POST /api/login and POST
 * /api/logout.
 *
 * Authentication is on when an unrevoked token exists or the server
 * listens on a non-loopback address (unless --insecure-no-auth with no
 * token). Tokens are looked up on the read pool, never on the loop. A
 * presented token is looked up on every request, so a revoked token stops
 * working at once; only the token count, which says whether a request
 * without a token may pass, is remembered, for API__TOKENS_TTL_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "net/auth.h"

#define API__TOKENS_TTL_MS 1000
#define API__SWEEP_MS      1000

/* One guard check on the read pool. */
typedef struct api__guard_job {
    api *a;
    http_req *r;
    http_handler next;
    void *next_ud;
    bool presented, via_cookie;
    char hash[SHA256_HEX_LEN + 1];
    char *session_id, *run_id; /* ownership to check, or NULL */
    /* Results. */
    int tokens; /* negative: the database failed */
    bool found, owned, admin;
    char *name;
} api__guard_job;

static void api__guard_job_free(api__guard_job *g)
{
    free(g->session_id);
    free(g->run_id);
    free(g->name);
    free(g);
}

void api__too_many_subscribers(http_req *r)
{
    http_reply_header(r, "Retry-After", "5");
    http_reply_error(r, 429, "too_many_subscribers",
                     "this session or this token already has its limit of open event streams");
}

static bool api__auth_on(const api *a, int tokens)
{
    return tokens > 0 || (a->public_listen && !a->insecure_no_auth);
}

/* The presented token, from the Authorization header, else the cookie.
 * Returns false when neither carries one. */
static bool api__presented(http_req *r, char *tok, size_t len, bool *via_cookie)
{
    *via_cookie = false;
    const char *authz = http_req_header(r, "Authorization");
    if (authz) return auth_bearer(authz, tok, len) == 0;
    if (auth_cookie(http_req_header(r, "Cookie"), AUTH_COOKIE, tok, len) == 0) {
        *via_cookie = true;
        return true;
    }
    return false;
}

/* Looks the token up (and the ownership of the path's session or run)
 * with the pool thread's connection. */
static void api__guard_work(store *st, void *arg)
{
    api__guard_job *g = arg;
    g->tokens = store_token_count(st);
    if (g->tokens < 0 || !g->presented) return;
    store_token t = {0};
    int rc = store_token_find(st, g->hash, &t);
    if (rc < 0 && rc != STORE_NOT_FOUND) {
        g->tokens = rc;
        return;
    }
    /* The database found the row by its hash; the comparison here does
     * not depend on where two hashes differ. */
    g->found = rc == 0 && sha256_equal_const(t.token_sha256, g->hash);
    if (g->found) {
        g->name = xstrdup(t.name);
        g->admin = t.admin;
    }
    store_token_cleanup(&t);
    if (!g->found) return;
    g->owned = true;
    char *sid = g->session_id ? xstrdup(g->session_id) : NULL;
    if (g->run_id) {
        store_run run = {0};
        rc = store_queue_run_get(st, g->run_id, &run);
        if (rc == 0) sid = xstrdup(run.session_id);
        store_run_cleanup(&run);
        if (rc < 0) {
            if (rc != STORE_NOT_FOUND) g->tokens = rc;
            g->owned = false;
            return;
        }
    }
    if (sid) {
        store_session ses = {0};
        rc = store_session_get(st, sid, g->name, &ses);
        store_session_cleanup(&ses);
        if (rc < 0) {
            if (rc != STORE_NOT_FOUND) g->tokens = rc;
            g->owned = false;
        }
        free(sid);
    }
}

/*
 * Lets a request through with authentication off. On a loopback server
 * open because no token exists, an API request must also name a loopback
 * host: a page elsewhere that rebinds its own name to 127.0.0.1 could
 * otherwise drive this server from a visitor's browser.
 */
static void api__pass_open(api *a, http_req *r, http_handler next, void *next_ud)
{
    if (!a->public_listen && auth_path_needs_token(http_req_path(r)) &&
        !auth_host_is_loopback(http_req_header(r, "Host"))) {
        http_reply_error(r, 403, "forbidden",
                         "this server has no tokens, so it answers only requests to a loopback "
                         "host name; create a token to reach it under another name");
        return;
    }
    http_req_set_auth(r, false, NULL, false);
    next(r, next_ud);
}

static void api__unauthorized(http_req *r)
{
    http_reply_header(r, "WWW-Authenticate", "Bearer realm=\"chatplane\"");
    http_reply_error(r, 401, "unauthorized",
                     "a valid token is needed: send Authorization: Bearer TOKEN or log in");
}

static void api__guard_done(void *arg)
{
    api__guard_job *g = arg;
    api *a = g->a;
    http_req *r = g->r;
    if (a->stopping) {
        http_reply_error(r, 503, "unavailable", "the server is shutting down");
    } else if (g->tokens < 0) {
        http_reply_error(r, 503, "unavailable", "the database did not answer");
    } else {
        a->tokens = g->tokens;
        a->tokens_seen_ms = clock_mono_ms();
        if (!api__auth_on(a, g->tokens)) {
            api__pass_open(a, r, g->next, g->next_ud);
        } else if (!g->found) {
            api__unauthorized(r);
        } else if (g->via_cookie && auth_method_writes(http_req_method(r)) &&
                   !http_req_header(r, "Origin")) {
            http_reply_error(r, 403, "forbidden",
                             "a change made with the session cookie must carry an Origin header");
        } else if (!g->owned && g->run_id) {
            http_reply_error(r, 404, "not_found", "no run %s", g->run_id);
        } else if (!g->owned) {
            http_reply_error(r, 404, "not_found", "no session %s", g->session_id);
        } else {
            http_req_set_auth(r, true, g->name, g->admin);
            g->next(r, g->next_ud);
        }
    }
    api__guard_job_free(g);
}

/*
 * The guard of every route. Checks that need no database come first: a
 * change whose Origin names another site is refused whatever the
 * credentials (a cross-site form or script, also against a server without
 * tokens). Paths outside /api/, and /api/login, pass. Then, unless the
 * remembered token count says no token can be needed, the pool looks the
 * token up, together with the ownership of the session or run the path
 * names, so one round trip decides 401, 403, 404 or pass.
 */
void api__guard(http_req *r, http_handler next, void *next_ud, void *ud)
{
    api *a = ud;
    const char *method = http_req_method(r);
    const char *origin = http_req_header(r, "Origin");
    if (auth_method_writes(method) && origin &&
        !auth_origin_matches(origin, http_req_header(r, "Host"))) {
        http_reply_error(r, 403, "forbidden", "the request comes from another origin");
        return;
    }
    const char *path = http_req_path(r);
    if (!auth_path_needs_token(path)) {
        next(r, next_ud);
        return;
    }
    if (a->stopping) {
        http_reply_error(r, 503, "unavailable", "the server is shutting down");
        return;
    }
    char tok[AUTH_PRESENTED_MAX];
    bool via_cookie = false;
    bool presented = api__presented(r, tok, sizeof tok, &via_cookie);
    bool fresh = a->tokens >= 0 && clock_mono_ms() - a->tokens_seen_ms < API__TOKENS_TTL_MS;
    if (!presented && fresh && !api__auth_on(a, a->tokens)) {
        api__pass_open(a, r, next, next_ud);
        return;
    }
    if (!presented && ((fresh && a->tokens > 0) || api__auth_on(a, 0))) {
        api__unauthorized(r);
        return;
    }
    api__guard_job *g = xcalloc(1, sizeof *g);
    g->a = a;
    g->r = r;
    g->next = next;
    g->next_ud = next_ud;
    g->presented = presented;
    g->via_cookie = via_cookie;
    if (presented) auth_token_hash(tok, g->hash);
    const char *id = http_req_param(r, "id");
    if (id && strncmp(path, "/api/sessions/", 14) == 0) g->session_id = xstrdup(id);
    if (id && strncmp(path, "/api/runs/", 10) == 0) g->run_id = xstrdup(id);
    dbpool_submit(a->d.pool, api__guard_work, api__guard_done, g);
}

/* ---- the streams of revoked tokens ---- */

/*
 * A request with a revoked token is refused at once, but a stream opened
 * before the revocation would go on sending. Every API__SWEEP_MS, while
 * any stream belongs to a token, the pool reads which of those owners
 * still have an unrevoked token, and the streams of the others end.
 */
typedef struct api__sweep_job {
    api *a;
    char **names;
    bool *revoked;
    size_t n;
    bool failed;
} api__sweep_job;

static void api__sweep_work(store *st, void *arg)
{
    api__sweep_job *w = arg;
    store_token *rows = NULL;
    size_t n = 0;
    if (store_token_list(st, &rows, &n) < 0) {
        w->failed = true;
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        w->revoked[i] = true;
        for (size_t k = 0; k < n; k++)
            if (strcmp(rows[k].name, w->names[i]) == 0 && rows[k].revoked_ms == 0)
                w->revoked[i] = false;
    }
    store_token_list_free(rows, n);
}

static void api__sweep_done(void *arg)
{
    api__sweep_job *w = arg;
    api *a = w->a;
    a->sweeping = false;
    for (size_t i = 0; i < w->n; i++) {
        if (!a->stopping && !w->failed && w->revoked[i]) {
            size_t ended = hub_end_owner(a->hub, w->names[i]);
            if (ended)
                LOG(LOG_INFO, "ended the event streams of a revoked token", "token=%s streams=%zu",
                    w->names[i], ended);
        }
        free(w->names[i]);
    }
    free(w->names);
    free(w->revoked);
    free(w);
}

static void api__sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api *a = arg;
    if (a->stopping || a->sweeping) return;
    char **names = NULL;
    size_t n = hub_owners(a->hub, &names);
    if (n == 0) return;
    api__sweep_job *w = xcalloc(1, sizeof *w);
    w->a = a;
    w->names = names;
    w->n = n;
    w->revoked = xcalloc(n, sizeof *w->revoked);
    a->sweeping = true;
    dbpool_submit(a->d.pool, api__sweep_work, api__sweep_done, w);
}

/* ---- POST /api/login, POST /api/logout ---- */

/* True when the request came over HTTPS, as a TLS-terminating proxy
 * reports in X-Forwarded-Proto (its first value). */
static bool api__https(http_req *r)
{
    const char *p = http_req_header(r, "X-Forwarded-Proto");
    if (!p) return false;
    while (*p == ' ') p++;
    return strncasecmp(p, "https", 5) == 0 && (p[5] == '\0' || p[5] == ',' || p[5] == ' ');
}

typedef struct api__login_job {
    char hash[SHA256_HEX_LEN + 1];
    char *token;
    bool found;
    int rc;
} api__login_job;

static void api__login_work(store *st, api__job *j)
{
    api__login_job *l = j->ud;
    store_token t = {0};
    l->rc = store_token_find(st, l->hash, &t);
    l->found = l->rc == 0 && sha256_equal_const(t.token_sha256, l->hash);
    store_token_cleanup(&t);
}

static void api__login_then(api__job *j)
{
    api__login_job *l = j->ud;
    if (l->rc < 0 && l->rc != STORE_NOT_FOUND) {
        http_reply_error(j->r, 503, "unavailable", "the database did not answer");
    } else if (!l->found) {
        api__unauthorized(j->r);
    } else {
        /* The cookie holds the token itself (docs/security.md says why),
         * out of reach of scripts and of other sites' requests. */
        char *cookie = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict%s", AUTH_COOKIE,
                                 l->token, api__https(j->r) ? "; Secure" : "");
        http_reply_header(j->r, "Set-Cookie", cookie);
        http_reply_header(j->r, "Cache-Control", "no-store");
        free(cookie);
        http_reply_no_content(j->r);
    }
    free(l->token);
    free(l);
    j->ud = NULL;
    api__job_free(j);
}

static void api__login(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_login);
    if (!body) return;
    const char *token = validate_get_string(body, "token");
    if (!token || !auth_token_wellformed(token)) {
        json_decref(body);
        api__unauthorized(r);
        return;
    }
    api__login_job *l = xcalloc(1, sizeof *l);
    l->token = xstrdup(token);
    auth_token_hash(token, l->hash);
    json_decref(body);
    if (a->stopping) {
        free(l->token);
        free(l);
        http_reply_error(r, 503, "unavailable", "the server is shutting down");
        return;
    }
    api__job *j = api__job_new(a, r, NULL, api__login_work);
    j->ud = l;
    j->then = api__login_then;
    api__job_submit(j);
}

static void api__logout(http_req *r, void *ud)
{
    (void)ud;
    char *cookie = xasprintf("%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s", AUTH_COOKIE,
                             api__https(r) ? "; Secure" : "");
    http_reply_header(r, "Set-Cookie", cookie);
    free(cookie);
    http_reply_no_content(r);
}

void api__register_auth(http_server *s, api *a)
{
    http_route(s, "POST", "/api/login", api__login, a);
    http_route(s, "POST", "/api/logout", api__logout, a);
    a->sweep = event_new(a->d.base, -1, EV_PERSIST, api__sweep_cb, a);
    struct timeval tv = {0, API__SWEEP_MS * 1000};
    event_add(a->sweep, &tv);
}

void api_cleanup(api *a)
{
    if (a->sweep) event_free(a->sweep);
    a->sweep = NULL;
}
