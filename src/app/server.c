#include "app/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "app/runtime.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/loopprio.h"
#include "lib/metrics.h"
#include "net/api.h"
#include "net/http.h"
#include "net/hub.h"
#include "net/page.h"

#define SERVER__TIMEOUT_S 30
#define SERVER__FLUSH_MS  500

typedef struct server {
    const config *cfg;
    struct event_base *base;
    runtime rt;
    bool rt_started;
    hub *hub;
    http_server *http;
    api api;
    char *web_root; /* the real path of --web-root, or NULL */
    bool stopping;
} server;

int server_parse_listen(const char *listen, char *host, size_t hostlen, int *port, char *err,
                        size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') colon = NULL;
        h = listen + 1;
        hl = close ? (size_t)(close - h) : 0;
    }
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hl == 0 || hl >= hostlen || !end || *end || colon[1] == '\0' || p < 0 ||
        p > 65535) {
        snprintf(err, errlen, "listen address '%s' is not HOST:PORT", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int server_is_loopback(const char *host)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return 0;
    int ok = 1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            uint32_t ip = ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr);
            if ((ip >> 24) != 127) ok = 0;
        } else if (a->ai_family == AF_INET6) {
            if (!IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr)) ok = 0;
        } else {
            ok = 0;
        }
    }
    freeaddrinfo(res);
    return ok;
}

/* The families of /metrics that the server observes itself, from the
 * committed events and the eventlog's commits. */
static struct {
    metrics_family *runs_active, *runs_started, *runs_stopped, *events, *tool_calls, *tool_duration,
        *store_commit, *approvals, *inputs;
} server__m;

/* Registers every family of /metrics, in the order they are shown
 * (docs/api.md, Metrics), before any thread starts. */
void server_metrics_register(void)
{
    static const double tool_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60};
    static const double commit_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                           0.025,  0.05,  0.1,    0.25,  1};
    static const char *const tool_statuses[] = {"ok", "error", "timeout", "cancelled", "denied"};
    static const char *const decisions[] = {"approved", "denied", "expired", "cancelled"};
    server__m.runs_active = metrics_gauge_new("chatplane_runs_active", "Runs going on now.");
    server__m.runs_started =
        metrics_counter_new("chatplane_runs_started_total", "Runs started.", NULL);
    server__m.runs_stopped = metrics_counter_new("chatplane_runs_stopped_total",
                                                 "Runs stopped, by stop reason.", "reason");
    for (int r = 0; r < STOP__COUNT; r++)
        metrics_seed(server__m.runs_stopped, stop_reason_name((stop_reason)r));
    server__m.events =
        metrics_counter_new("chatplane_events_total", "Events committed, by type.", "type");
    for (int t = 0; t < EVT__COUNT; t++) metrics_seed(server__m.events, evt_type_name((evt_type)t));
    hub_metrics_register();
    server__m.tool_calls = metrics_counter_new("chatplane_tool_calls_total",
                                               "Tool executions finished, by status.", "status");
    for (int i = 0; i < 5; i++) metrics_seed(server__m.tool_calls, tool_statuses[i]);
    server__m.approvals = metrics_counter_new("chatplane_approvals_total",
                                              "Approvals decided, by decision.", "decision");
    for (int i = 0; i < 4; i++) metrics_seed(server__m.approvals, decisions[i]);
    server__m.inputs = metrics_counter_new("chatplane_inputs_total",
                                           "Questions of tool servers ended, by what the server "
                                           "was sent.",
                                           "action");
    for (int i = 0; i < ELICIT__ACTION_COUNT; i++)
        metrics_seed(server__m.inputs, elicit_action_name((elicit_action)i));
    server__m.tool_duration =
        metrics_histogram_new("chatplane_tool_duration_seconds", "How long tool executions took.",
                              tool_bounds, (int)(sizeof tool_bounds / sizeof tool_bounds[0]));
    engine_metrics_register();
    server__m.store_commit = metrics_histogram_new(
        "chatplane_store_commit_seconds", "How long one event log batch took to commit.",
        commit_bounds, (int)(sizeof commit_bounds / sizeof commit_bounds[0]));
    http_metrics_register();
}

/* Every committed event: counted, then fanned out to the streams. Runs and
 * tool executions are counted from their events, so /metrics agrees with
 * the event log. */
static void server__publish(void *ud, evt *ev)
{
    server *s = ud;
    metrics_add(server__m.events, evt_type_name(ev->type), 1);
    if (ev->type == EVT_RUN_STARTED) {
        metrics_add(server__m.runs_started, NULL, 1);
        metrics_add(server__m.runs_active, NULL, 1);
    } else if (ev->type == EVT_RUN_STOPPED) {
        const char *reason = json_string_value(json_object_get(ev->fields, "reason"));
        metrics_add(server__m.runs_active, NULL, -1);
        metrics_add(server__m.runs_stopped, reason, 1);
    } else if (ev->type == EVT_TOOL_FINISHED) {
        const char *status = json_string_value(json_object_get(ev->fields, "status"));
        json_int_t ms = json_integer_value(json_object_get(ev->fields, "duration_ms"));
        metrics_add(server__m.tool_calls, status, 1);
        metrics_observe(server__m.tool_duration, (double)ms / 1000.0);
    } else if (ev->type == EVT_APPROVAL_DECIDED) {
        const char *decision = json_string_value(json_object_get(ev->fields, "decision"));
        metrics_add(server__m.approvals, decision, 1);
    } else if (ev->type == EVT_INPUT_ANSWERED) {
        const char *action = json_string_value(json_object_get(ev->fields, "action"));
        metrics_add(server__m.inputs, action, 1);
    }
    if (s->hub) hub_publish(s->hub, ev);
}

/* PostgreSQL: events another instance committed, read by the hub. */
static void server__events_notified(void *ud, const char *session_id, int64_t seq)
{
    server *s = ud;
    if (s->hub) hub_notify(s->hub, session_id, seq);
}

static void server__listening(void *ud)
{
    server *s = ud;
    if (s->hub) hub_catch_up(s->hub);
}

static void server__session_deleted(void *ud, const char *session_id)
{
    server *s = ud;
    if (s->hub) hub_session_deleted(s->hub, session_id);
}

/* A run whose end could not be stored (status < 0): its run streams end
 * now rather than wait for a run_stopped that may come much later. A run
 * another instance stopped (STORE_CONFLICT) gets its run_stopped from
 * there. */
static void server__run_finished(void *ud, const char *session_id, const char *run_id, int status)
{
    server *s = ud;
    if (s->hub && status < 0 && status != STORE_CONFLICT)
        hub_run_unrecorded(s->hub, session_id, run_id);
}

static void server__commit_observed(void *ud, double seconds)
{
    (void)ud;
    metrics_observe(server__m.store_commit, seconds);
}

static bool server__healthy(void *ud)
{
    return runtime_healthy(ud);
}

static void server__session_deleted_here(void *ud, const char *session_id)
{
    runtime_session_deleted(ud, session_id);
}

/* Raises the open-file limit to its hard limit: every SSE subscriber holds
 * a socket, and a thousand of them is a normal load. */
static void server__raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            LOG(LOG_WARN, "cannot raise the open file limit", "limit=%llu",
                (unsigned long long)rl.rlim_cur);
    }
}

/*
 * The cap on open HTTP connections: limits.connections, lowered so that
 * SERVER__FD_RESERVE descriptors stay free for the database, the MCP
 * children and their pipes, the log and the loop's own, whatever the
 * clients do.
 */
#define SERVER__FD_RESERVE      64
#define SERVER__MIN_CONNECTIONS 8
static size_t server__connection_cap(const config *cfg)
{
    size_t cap = (size_t)cfg->connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return cap;
    size_t room = rl.rlim_cur > SERVER__FD_RESERVE + SERVER__MIN_CONNECTIONS
                      ? (size_t)rl.rlim_cur - SERVER__FD_RESERVE
                      : SERVER__MIN_CONNECTIONS;
    if (room < cap) {
        LOG(LOG_INFO, "connection limit lowered to fit the open file limit",
            "limits.connections=%zu open_file_limit=%llu connections=%zu", cap,
            (unsigned long long)rl.rlim_cur, room);
        cap = room;
    }
    return cap;
}

/*
 * SIGTERM or SIGINT: stop accepting, interrupt the runs and commit their
 * last events (the streams get them), end every stream, and leave the loop
 * once the last bytes had a moment to go out.
 */
static void server__on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    server *s = arg;
    if (s->stopping) return;
    s->stopping = true;
    LOG(LOG_INFO, "shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop_accepting(s->http);
    s->api.stopping = true;
    hub_shutdown(s->hub);
    runtime_stop(&s->rt);
    s->rt_started = false;
    hub_close_all(s->hub);
    struct timeval tv = {0, SERVER__FLUSH_MS * 1000};
    event_base_loopexit(s->base, &tv);
}

/*
 * Binds the listen address. A non-loopback address needs a token (or
 * --insecure-no-auth): a server reachable from elsewhere is never open by
 * accident. Logs whether authentication is on.
 */
static int server__listen(server *s, char *err, size_t errlen)
{
    char host[256];
    int port = 0, bound = 0;
    if (server_parse_listen(s->cfg->listen, host, sizeof host, &port, err, errlen) != 0) return -1;
    int tokens = store_token_count(s->rt.db);
    if (tokens < 0) {
        snprintf(err, errlen, "cannot count the API tokens: %s", store_errmsg(s->rt.db));
        return -1;
    }
    s->api.public_listen = !server_is_loopback(host);
    s->api.insecure_no_auth = s->cfg->insecure_no_auth;
    s->api.tokens = tokens;
    s->api.tokens_seen_ms = clock_mono_ms();
    if (s->api.public_listen && tokens == 0 && !s->cfg->insecure_no_auth) {
        snprintf(err, errlen,
                 "refusing to listen on %s: it is not a loopback address and no API token "
                 "exists; create one with 'chatplane token create NAME', listen on 127.0.0.1, "
                 "or pass --insecure-no-auth",
                 s->cfg->listen);
        return -1;
    }
    if (tokens > 0)
        LOG(LOG_INFO, "authentication is on", "tokens=%d", tokens);
    else if (!s->api.public_listen)
        LOG(LOG_INFO, "authentication is off until a token is created", "tokens=0");
    else
        LOG(LOG_WARN, "serving a non-loopback address without authentication",
            "listen=%s reason=--insecure-no-auth", s->cfg->listen);
    if (http_listen(s->http, host, port, &bound, err, errlen) != 0) return -1;
    bool v6 = strchr(host, ':') != NULL;
    /* Written whatever log.level says: scripts and tests take the port of
     * a server started on port 0 from this line (docs/config.md). */
    log_write(LOG_INFO, "listening", "url=http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
              bound);
    return 0;
}

int server_run(const config *cfg)
{
    signal(SIGPIPE, SIG_IGN);
    server__raise_nofile();
    server_metrics_register();
    server s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.base = loopprio_base_new();
    char err[512];
    int rc = 1;
    struct event *sigterm = NULL, *sigint = NULL;

    /* A web root that is missing would otherwise only show as a 404 for
     * every file of the page. */
    if (cfg->web_root && !(s.web_root = page_root_resolve(cfg->web_root, err, sizeof err))) {
        LOG(LOG_ERROR, "cannot start", "error=\"%s\"", err);
        goto out;
    }

    runtime_options opt = {.recover = true,
                           .announce = true,
                           .publish = server__publish,
                           .publish_ud = &s,
                           .on_events = server__events_notified,
                           .on_listening = server__listening,
                           .on_run_finished = server__run_finished,
                           .on_session_deleted = server__session_deleted};
    if (runtime_start(&s.rt, cfg, s.base, &opt, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot start", "error=\"%s\"", err);
        goto out;
    }
    s.rt_started = true;
    eventlog_set_commit_observer(s.rt.log, server__commit_observed, NULL);
    s.hub = hub_new(s.base, s.rt.pool, s.rt.log, (size_t)cfg->subscriber_buffer_bytes);
    hub_set_limits(s.hub, (size_t)cfg->subscribers_per_session, (size_t)cfg->subscribers_per_token);
    http_options ho = {(size_t)cfg->body_bytes, SERVER__TIMEOUT_S, server__connection_cap(cfg)};
    s.http = http_server_new(s.base, &ho);
    s.api.d = (api_deps){.base = s.base,
                         .pool = s.rt.pool,
                         .log = s.rt.log,
                         .engine = s.rt.engine,
                         .model = s.rt.model,
                         .tools = s.rt.tools,
                         .message_bytes = cfg->message_bytes,
                         .shared = s.rt.cluster != NULL,
                         .store_commit = server__m.store_commit,
                         .healthy = server__healthy,
                         .session_deleted = server__session_deleted_here,
                         .ud = &s.rt};
    s.api.hub = s.hub;
    s.api.web_root = s.web_root;
    s.api.tokens = -1;
    api_register(s.http, &s.api);
    /* The handlers are in place before the "listening" line, which is what
     * a supervisor waits for before it may signal. */
    sigterm = evsignal_new(s.base, SIGTERM, server__on_signal, &s);
    sigint = evsignal_new(s.base, SIGINT, server__on_signal, &s);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    if (server__listen(&s, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot listen", "error=\"%s\"", err);
        goto out;
    }
    event_base_dispatch(s.base);
    rc = 0;
    LOG(LOG_INFO, "stopped", "%s", "");
out:
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    s.api.stopping = true;
    if (s.hub) hub_shutdown(s.hub);
    if (s.rt_started) runtime_stop(&s.rt);
    http_server_free(s.http);
    api_cleanup(&s.api);
    hub_free(s.hub);
    event_base_free(s.base);
    free(s.web_root);
    return rc;
}
