/*
 * mcp_server: one MCP server's life: the connection through its transport,
 * the handshake, the tool listing, restarts with backoff, liveness pings,
 * and the dispatch of what the server sends. The states and the ownership
 * rules are described in mcp_int.h; calls are in mcp_call.c.
 */
#include <stdio.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/timefmt.h"
#include "engine/mcp_http.h"
#include "engine/mcp_int.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"
#include "version.h"

#define PROTOCOL       "2025-11-25"
#define MAX_TOOLS      1000
#define MAX_PAGES      100
#define PING_MAX_MS    10000 /* a liveness ping waits at most this long */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define HEALTHY_MS     30000 /* a connection that lived this long resets the backoff */

static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

static void mcp_server__fail_start(mcp_server *s, const char *why);
static void mcp_server__list(mcp_server *s);

/* ---- small helpers ---- */

char *mcp__quoted(const char *s, size_t n)
{
    /* Each byte becomes at most two, with two quotes around: the cap is the
     * worst case, so no append can fail. */
    buf b;
    buf_init(&b, 2 * n + 3);
    int rc = buf_append_char(&b, '"');
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"' || c == '\\') rc |= buf_append_char(&b, '\\');
        rc |= buf_append_char(&b, (unsigned char)c < 0x20 || c == 0x7f ? ' ' : c);
    }
    rc |= buf_append_char(&b, '"');
    assert(rc == 0);
    return buf_detach(&b, NULL);
}

void mcp__timer(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

char *mcp__seconds(int64_t ms)
{
    return xasprintf("%g s", (double)ms / 1000.0);
}

bool mcp__log_admit(log_limit *l, struct event *summary_ev, log_level level)
{
    if (level < log_min_level) return false;
    int64_t now = clock_mono_ms();
    if (log_limit_take(l, now)) return true;
    if (!evtimer_pending(summary_ev, NULL)) {
        int64_t wait = log_limit_due(l, MCP_LOG_SUMMARY_MS) - now;
        mcp__timer(summary_ev, wait > 0 ? wait : 0);
    }
    return false;
}

void mcp__log_summary(log_limit *l, const char *server, const char *stream)
{
    int64_t span_ms;
    int64_t n = log_limit_flush(l, clock_mono_ms(), &span_ms);
    if (n > 0)
        LOG(LOG_WARN, "mcp server output dropped: over the rate limit",
            "server=%s stream=%s dropped=%lld seconds=%.1f", server, stream, (long long)n,
            (double)span_ms / 1000.0);
}

static void mcp_server__on_log_summary(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    mcp__log_summary(&s->log_limit, s->cfg.name, "messages");
}

static void mcp_server__free_defs(tool_def *defs, size_t n)
{
    tool__defs_cleanup(defs, n);
    free(defs);
}

/* ---- sending ---- */

/* Hands one encoded message to the transport, which copies it; frees it.
 * Returns -1 when the transport cannot take it. */
static int mcp_server__send_msg(mcp_server *s, char *msg, size_t len)
{
    int rc = mcp_transport_send(s->tr, msg, len);
    free(msg);
    return rc;
}

int64_t mcp__server_request(mcp_server *s, const char *method, json_t *params)
{
    int64_t id = s->next_id++;
    size_t len;
    char *msg = mcp_frame_request(id, method, params, &len);
    return mcp_server__send_msg(s, msg, len) == 0 ? id : -1;
}

void mcp__server_send(mcp_server *s, char *msg, size_t len)
{
    mcp_server__send_msg(s, msg, len);
}

void mcp__server_notify(mcp_server *s, const char *method, json_t *params)
{
    size_t len;
    char *msg = mcp_frame_notification(method, params, &len);
    mcp_server__send_msg(s, msg, len);
}

/*
 * Ends the current connection as far as the server is concerned: the
 * transport closed (nothing of it calls back afterwards), and the handshake
 * and ping forgotten.
 */
static void mcp_server__teardown(mcp_server *s)
{
    mcp_transport_close(s->tr);
    event_del(s->hs_ev);
    event_del(s->ping_ev);
    s->init_id = s->list_id = s->ping_id = 0;
    json_decref(s->listing);
    s->listing = NULL;
    s->relist = false;
}

static void mcp_server__free_retired(mcp_server *s)
{
    while (s->retired) {
        mcp__retired *r = s->retired;
        s->retired = r->next;
        mcp_server__free_defs(r->defs, r->n);
        free(r);
    }
}

static void mcp_server__on_retire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    if (!s->calls) mcp_server__free_retired(s);
}

/* ---- restarts ---- */

/* Keeps how the server last failed, and since when it is down. */
static void mcp_server__note_down(mcp_server *s, const char *what)
{
    free(s->last_error);
    s->last_error = xstrdup(what);
    if (!s->down_since_wall_ms) s->down_since_wall_ms = clock_wall_ms();
}

static int64_t mcp_server__backoff_ms(const mcp_server *s)
{
    if (s->failures <= 0) return 0;
    int64_t d = BACKOFF_MIN_MS;
    for (int i = 1; i < s->failures && d < BACKOFF_MAX_MS; i++) d *= 2;
    return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

static void mcp_server__on_restart(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    if (s->state == MCP__DOWN && s->calls) mcp__server_start(s);
}

/* A call is waiting for a server that is down: start it again once the
 * backoff since it went down has passed. */
void mcp__server_schedule_restart(mcp_server *s)
{
    if (evtimer_pending(s->restart_ev, NULL)) return;
    int64_t wait = s->down_ms + mcp_server__backoff_ms(s) - clock_mono_ms();
    if (wait < 0) wait = 0;
    LOG(LOG_INFO, "mcp server restarting", "server=%s delay_ms=%lld", s->cfg.name, (long long)wait);
    mcp__timer(s->restart_ev, wait);
}

/* The connection is gone (how: what, e.g. "exited (status 1)"): calls in
 * flight fail, and the server waits for the next call to start again. */
static void mcp_server__down(mcp_server *s, const char *what)
{
    bool was_ready = s->instance_ready;
    int64_t now = clock_mono_ms();
    mcp_server__teardown(s);
    s->instance_ready = false;
    s->state = MCP__DOWN;
    s->down_ms = now;
    s->failures = now - s->started_ms < HEALTHY_MS ? s->failures + 1 : 1;
    if (!was_ready) {
        char *why = xasprintf("%s during start-up", what);
        mcp_server__fail_start(s, why);
        free(why);
        return;
    }
    LOG(LOG_WARN, "mcp server ended", "server=%s how=\"%s\"", s->cfg.name, what);
    mcp_server__note_down(s, what);
    /* A request the server refused for a forgotten session never ran: it
     * waits for the next session, once. */
    int64_t again = mcp_http_take_rejected(s->tr);
    mcp_call *c = again > 0 ? mcp__call_find(s, again) : NULL;
    if (c && !c->resent) {
        c->resent = true;
        c->id = 0;
    }
    char *msg = xasprintf("the MCP server '%s' %s during the call", s->cfg.name, what);
    s->calls_lost = true;
    mcp__calls_fail(s, false, msg);
    s->calls_lost = false;
    free(msg);
    if (s->calls && s->state == MCP__DOWN) mcp__server_schedule_restart(s);
}

/* A start that did not reach a tool list: the reason is kept for
 * /api/info, and the calls waiting for the server fail. */
static void mcp_server__fail_start(mcp_server *s, const char *why)
{
    if (s->state != MCP__DOWN) {
        mcp_server__teardown(s);
        s->state = MCP__DOWN;
        s->down_ms = clock_mono_ms();
        s->failures++;
    }
    free(s->error);
    s->error = xstrdup(why);
    s->settled = true;
    mcp_server__note_down(s, why);
    char *q = mcp__quoted(why, strlen(why));
    LOG(LOG_ERROR, "mcp server failed to start", "server=%s error=%s", s->cfg.name, q);
    free(q);
    char *msg = xasprintf("the MCP server '%s' could not start: %s", s->cfg.name, why);
    mcp__calls_fail(s, false, msg);
    mcp__calls_fail(s, true, msg);
    free(msg);
}

/* ---- tools ---- */

/* Turns the gathered listing into the server's tool list. */
static void mcp_server__install_tools(mcp_server *s)
{
    size_t n = json_array_size(s->listing), k = 0;
    tool_def *defs = xcalloc(n ? n : 1, sizeof *defs);
    size_t i;
    json_t *t;
    json_array_foreach(s->listing, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!name || !*name) {
            LOG(LOG_WARN, "mcp tool without a name left out", "server=%s", s->cfg.name);
            continue;
        }
        const char *desc = json_string_value(json_object_get(t, "description"));
        json_t *schema = json_object_get(t, "inputSchema");
        tool_def *d = &defs[k++];
        d->name = tool_model_name(s->cfg.name, name);
        d->server = xstrdup(s->cfg.name);
        d->tool = xstrdup(name);
        d->description = xstrdup(desc ? desc : "");
        d->input_schema = json_is_object(schema)
                              ? json_incref(schema)
                              : json_pack("{s:s,s:{}}", "type", "object", "properties");
        /* Annotations are hints from the server; only an explicit true
         * marks a tool read-only (docs/runs.md, Approvals). */
        json_t *ann = json_object_get(t, "annotations");
        d->annotations = json_is_object(ann) ? json_deep_copy(ann) : NULL;
        d->read_only = json_is_true(json_object_get(ann, "readOnlyHint"));
    }
    if (s->calls) {
        mcp__retired *r = xcalloc(1, sizeof *r);
        r->defs = s->defs;
        r->n = s->ndefs;
        r->next = s->retired;
        s->retired = r;
    } else {
        mcp_server__free_defs(s->defs, s->ndefs);
    }
    s->defs = defs;
    s->ndefs = k;
    json_decref(s->listing);
    s->listing = NULL;
}

static void mcp_server__list_page(mcp_server *s, const char *cursor)
{
    json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
    s->list_id = mcp__server_request(s, "tools/list", params);
    if (s->list_id < 0) {
        s->list_id = 0;
        if (s->state == MCP__STARTING) mcp_server__fail_start(s, "it closed its input");
        return;
    }
    mcp__timer(s->hs_ev, s->cfg.timeout_ms);
}

static void mcp_server__list(mcp_server *s)
{
    if (s->list_id) {
        s->relist = true;
        return;
    }
    json_decref(s->listing);
    s->listing = json_array();
    s->list_pages = 0;
    mcp_server__list_page(s, NULL);
}

/* The listing in progress is abandoned; the tools listed before stay. */
static void mcp_server__drop_listing(mcp_server *s)
{
    event_del(s->hs_ev);
    s->list_id = 0;
    json_decref(s->listing);
    s->listing = NULL;
}

static void mcp_server__on_list_result(mcp_server *s, const json_t *result)
{
    event_del(s->hs_ev);
    s->list_id = 0;
    const json_t *tools = json_object_get(result, "tools");
    if (!json_is_array(tools)) {
        if (s->state == MCP__STARTING) {
            mcp_server__fail_start(s, "its tools/list answer has no \"tools\" array");
            return;
        }
        LOG(LOG_WARN, "mcp tools/list answer without tools", "server=%s", s->cfg.name);
        mcp_server__drop_listing(s);
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (json_array_size(s->listing) < MAX_TOOLS) json_array_append(s->listing, t);
    }
    const char *cursor = json_string_value(json_object_get(result, "nextCursor"));
    if (cursor && ++s->list_pages < MAX_PAGES && json_array_size(s->listing) < MAX_TOOLS) {
        mcp_server__list_page(s, cursor);
        return;
    }
    mcp_server__install_tools(s);
    if (s->state == MCP__STARTING) {
        s->state = MCP__READY;
        s->instance_ready = s->ever_ready = s->settled = true;
        free(s->error);
        s->error = NULL;
        s->down_since_wall_ms = 0;
        LOG(LOG_INFO, "mcp server ready", "server=%s %s tools=%zu", s->cfg.name, s->tr->peer,
            s->ndefs);
        mcp__calls_send_queued(s);
    }
    if (s->relist && s->state == MCP__READY) {
        s->relist = false;
        mcp_server__list(s);
    }
}

/* ---- the handshake ---- */

static void mcp_server__on_init_result(mcp_server *s, const json_t *result)
{
    event_del(s->hs_ev);
    s->init_id = 0;
    const char *version = json_string_value(json_object_get(result, "protocolVersion"));
    bool known = false;
    for (size_t i = 0; version && i < sizeof versions / sizeof versions[0]; i++)
        if (strcmp(version, versions[i]) == 0) known = true;
    if (!known) {
        char *why = xasprintf("it answered with protocol version '%s', which chatplane does "
                              "not speak",
                              version ? version : "(none)");
        mcp_server__fail_start(s, why);
        free(why);
        return;
    }
    LOG(LOG_DEBUG, "mcp server initialized", "server=%s protocol=%s", s->cfg.name, version);
    if (s->tr->ops->negotiated) s->tr->ops->negotiated(s->tr, version);
    mcp__server_notify(s, "notifications/initialized", NULL);
    mcp_server__list(s);
}

/* A handshake request or a tools/list page went unanswered. */
static void mcp_server__on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    char *secs = mcp__seconds(s->cfg.timeout_ms);
    const char *method = s->init_id ? "initialize" : "tools/list";
    if (s->state == MCP__STARTING) {
        char *why = xasprintf("it did not answer %s within %s", method, secs);
        mcp_server__fail_start(s, why);
        free(why);
    } else {
        LOG(LOG_WARN, "mcp tools/list went unanswered; keeping the tools listed before",
            "server=%s", s->cfg.name);
        mcp_server__drop_listing(s);
    }
    free(secs);
}

/* ---- liveness ---- */

void mcp__server_ping(mcp_server *s)
{
    if (s->state != MCP__READY || s->ping_id) return;
    s->ping_id = mcp__server_request(s, "ping", NULL);
    if (s->ping_id < 0) {
        s->ping_id = 0;
        return;
    }
    int64_t ms = s->cfg.timeout_ms < PING_MAX_MS ? s->cfg.timeout_ms : PING_MAX_MS;
    mcp__timer(s->ping_ev, ms);
}

/* The ping after a time-out went unanswered too: the server is stuck. Its
 * connection is closed; the next call starts it again. */
static void mcp_server__on_ping_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    s->ping_id = 0;
    LOG(LOG_WARN, "mcp server stopped answering; stopping it", "server=%s", s->cfg.name);
    mcp_server__down(s, "stopped answering");
}

/* ---- messages from the server ---- */

static void mcp_server__on_notification(mcp_server *s, const mcp_msg *m)
{
    if (strcmp(m->method, "notifications/progress") == 0) {
        mcp__calls_on_progress(s, m->params);
    } else if (strcmp(m->method, "notifications/tools/list_changed") == 0) {
        /* Before the first listing the server is about to be listed anyway. */
        if (s->state == MCP__READY) mcp_server__list(s);
    } else if (strcmp(m->method, "notifications/message") == 0) {
        if (!mcp__log_admit(&s->log_limit, s->log_summary_ev, LOG_INFO)) return;
        const char *level = json_string_value(json_object_get(m->params, "level"));
        char *data = json_dumps(json_object_get(m->params, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
        size_t len = data ? strlen(data) : 0;
        char *q = mcp__quoted(data ? data : "", utf8_cut(data ? data : "", len, MCP_LOG_LINE_MAX));
        char *lv = mcp__quoted(level ? level : "info", strlen(level ? level : "info"));
        if (len > MCP_LOG_LINE_MAX)
            LOG(LOG_INFO, "mcp log", "server=%s level=%s data=%s truncated=%zu", s->cfg.name, lv, q,
                len);
        else
            LOG(LOG_INFO, "mcp log", "server=%s level=%s data=%s", s->cfg.name, lv, q);
        free(lv);
        free(q);
        free(data);
    }
}

/* An answer to initialize or to a tools/list page. */
static void mcp_server__on_handshake_response(mcp_server *s, const mcp_msg *m)
{
    int64_t id = m->id_int;
    if (m->kind != MCP_MSG_ERROR) {
        if (id == s->init_id)
            mcp_server__on_init_result(s, m->result);
        else
            mcp_server__on_list_result(s, m->result);
        return;
    }
    char *t = mcp_msg_error_text(m);
    char *why = xasprintf("%s failed: %s", id == s->init_id ? "initialize" : "tools/list", t);
    if (s->state == MCP__STARTING) {
        mcp_server__fail_start(s, why);
    } else {
        char *q = mcp__quoted(t, strlen(t));
        LOG(LOG_WARN, "mcp tools/list failed", "server=%s error=%s", s->cfg.name, q);
        free(q);
        event_del(s->hs_ev);
        s->list_id = 0;
    }
    free(why);
    free(t);
}

static void mcp_server__on_response(mcp_server *s, const mcp_msg *m)
{
    if (!m->id_is_int) {
        if (m->kind == MCP_MSG_ERROR) {
            char *t = mcp_msg_error_text(m);
            char *q = mcp__quoted(t, strlen(t));
            LOG(LOG_WARN, "mcp error without a request", "server=%s error=%s", s->cfg.name, q);
            free(q);
            free(t);
        }
        return;
    }
    int64_t id = m->id_int;
    if (id == s->init_id || id == s->list_id) {
        mcp_server__on_handshake_response(s, m);
    } else if (id == s->ping_id) {
        event_del(s->ping_ev);
        s->ping_id = 0;
    } else {
        mcp__calls_on_response(s, m);
    }
}

/* The transport's on_frame: one message from the server. */
static void mcp_server__on_frame(void *ud, const char *data, size_t len)
{
    mcp_server *s = ud;
    mcp_msg m;
    char err[160];
    if (mcp_msg_parse(data, len, &m, err, sizeof err) != 0) {
        mcp_msg_cleanup(&m);
        if (!mcp__log_admit(&s->log_limit, s->log_summary_ev, LOG_WARN)) return;
        char *q = mcp__quoted(data, len < 200 ? len : 200);
        char *e = mcp__quoted(err, strlen(err));
        LOG(LOG_WARN, "mcp unreadable message ignored", "server=%s error=%s line=%s", s->cfg.name,
            e, q);
        free(e);
        free(q);
        return;
    }
    switch (m.kind) {
    case MCP_MSG_REQUEST: {
        if (strcmp(m.method, "elicitation/create") == 0) {
            mcp__calls_on_elicit(s, &m);
            break;
        }
        size_t n;
        char *answer = mcp_frame_answer(&m, &n);
        mcp_server__send_msg(s, answer, n);
        break;
    }
    case MCP_MSG_NOTIFICATION:
        mcp_server__on_notification(s, &m);
        break;
    case MCP_MSG_RESULT:
    case MCP_MSG_ERROR:
        mcp_server__on_response(s, &m);
        break;
    case MCP_MSG_INVALID:
        break;
    }
    mcp_msg_cleanup(&m);
}

/* The transport's on_toobig: a message over its cap. The call it answers
 * fails (the transport found its id); the server lives on. */
static void mcp_server__on_toobig(void *ud, size_t len, size_t max, int64_t id)
{
    mcp_server *s = ud;
    char *msg = xasprintf("the MCP server '%s' sent a message of %zu bytes, more than the "
                          "%zu bytes allowed",
                          s->cfg.name, len, max);
    LOG(LOG_WARN, "mcp message too large", "server=%s bytes=%zu id=%lld", s->cfg.name, len,
        (long long)id);
    mcp_call *c = id > 0 ? mcp__call_find(s, id) : NULL;
    if (c) {
        mcp__call_fail(c, TOOL_ERROR, msg);
    } else if (id > 0 && (id == s->init_id || id == s->list_id)) {
        if (s->state == MCP__STARTING)
            mcp_server__fail_start(s, msg);
        else
            mcp_server__drop_listing(s);
    }
    free(msg);
}

/* The transport's on_eof: the connection is ending; calls made from now on
 * wait for how it ended (and a restart). */
static void mcp_server__on_eof(void *ud)
{
    mcp_server *s = ud;
    s->state = MCP__EXITING;
}

/* The transport's on_closed. */
static void mcp_server__on_closed(void *ud, const char *how)
{
    mcp_server__down(ud, how);
}

/* ---- starting ---- */

void mcp__server_start(mcp_server *s)
{
    char err[512];
    if (s->starts++ > 0) s->restarts++;
    if (mcp_transport_start(s->tr, err, sizeof err) != 0) {
        s->down_ms = clock_mono_ms();
        s->failures++;
        mcp_server__fail_start(s, err);
        return;
    }
    s->state = MCP__STARTING;
    s->instance_ready = false;
    s->started_ms = clock_mono_ms();
    json_t *params =
        /* Questions are asked in form mode only (docs/mcp.md, Questions). */
        json_pack("{s:s,s:{s:{s:{}}},s:{s:s,s:s}}", "protocolVersion", PROTOCOL, "capabilities",
                  "elicitation", "form", "clientInfo", "name", "chatplane", "version",
                  CHATPLANE_VERSION);
    s->init_id = mcp__server_request(s, "initialize", params);
    if (s->init_id < 0) {
        s->init_id = 0;
        mcp_server__fail_start(s, "it closed its input");
        return;
    }
    mcp__timer(s->hs_ev, s->cfg.timeout_ms);
}

/* ---- the source ---- */

static size_t mcp_server__src_count(const tool_source *src)
{
    return ((const mcp_server *)src)->ndefs;
}

static const tool_def *mcp_server__src_get(const tool_source *src, size_t i)
{
    const mcp_server *s = (const mcp_server *)src;
    return i < s->ndefs ? &s->defs[i] : NULL;
}

static json_t *mcp_server__src_info(const tool_source *src)
{
    const mcp_server *s = (const mcp_server *)src;
    const char *status = s->state == MCP__READY                        ? "ready"
                         : s->error && mcp_http_unauthorized(s->tr)    ? "unauthorized"
                         : s->error                                    ? "failed"
                         : s->state == MCP__STARTING && !s->ever_ready ? "starting"
                                                                       : "restarting";
    json_t *o =
        json_pack("{s:s,s:s,s:o,s:I,s:s}", "name", s->cfg.name, "status", status, "error",
                  s->error ? json_string(s->error) : json_null(), "tools", (json_int_t)s->ndefs,
                  "transport", mcp_config_transport_name(s->cfg.transport));
    json_object_set_new(o, "restarts", json_integer(s->restarts));
    json_object_set_new(o, "last_error", s->last_error ? json_string(s->last_error) : json_null());
    char since[TIMEFMT_LEN];
    if (s->down_since_wall_ms) timefmt_rfc3339(s->down_since_wall_ms, since);
    json_object_set_new(o, "down_since", s->down_since_wall_ms ? json_string(since) : json_null());
    return o;
}

/* A restart asked by a person (POST /api/mcp/{name}/restart): the
 * connection in use, if any, is closed, its calls failing with that
 * reason, and a new one starts at once, without the backoff of the
 * restarts after failures. Calls queued for the server wait for it. */
static void mcp_server__src_restart(tool_source *src)
{
    mcp_server *s = (mcp_server *)src;
    LOG(LOG_INFO, "mcp server restarting on request", "server=%s", s->cfg.name);
    if (s->state != MCP__DOWN) {
        mcp_server__teardown(s);
        s->state = MCP__DOWN;
        char *msg =
            xasprintf("the MCP server '%s' was restarted on request during the call", s->cfg.name);
        mcp__calls_fail(s, false, msg);
        free(msg);
    }
    event_del(s->restart_ev);
    s->failures = 0;
    /* The failed start is history now (last_error keeps it): the server
     * shows as starting until this start ends one way or the other. */
    free(s->error);
    s->error = NULL;
    mcp__server_start(s);
}

static void mcp_server__src_free(tool_source *src)
{
    mcp_server *s = (mcp_server *)src;
    mcp__group_stop(s->group);
    /* The engine has stopped its runs; calls left have nobody to tell. */
    while (s->calls) mcp__call_free(s->calls);
    mcp_server__teardown(s);
    mcp_transport_free(s->tr);
    event_free(s->hs_ev);
    event_free(s->ping_ev);
    event_free(s->restart_ev);
    event_free(s->retire_ev);
    mcp__log_summary(&s->log_limit, s->cfg.name, "messages");
    event_free(s->log_summary_ev);
    mcp_server__free_defs(s->defs, s->ndefs);
    mcp_server__free_retired(s);
    free(s->error);
    free(s->last_error);
    mcp_config_cleanup(&s->cfg);
    mcp__group_leave(s->group, s);
    free(s);
}

static const tool_source_ops src_ops = {
    .count = mcp_server__src_count,
    .get = mcp_server__src_get,
    .call = mcp__call_start,
    .cancel = mcp__call_cancel,
    .answer = mcp__call_answer,
    .free = mcp_server__src_free,
    .info = mcp_server__src_info,
    .restart = mcp_server__src_restart,
};

mcp_server *mcp__server_new(mcp_group *g, struct event_base *base, mcp_server_config *cfg,
                            mcp_transport *t)
{
    mcp_server *s = xcalloc(1, sizeof *s);
    s->base.ops = &src_ops;
    s->group = g;
    s->evb = base;
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->tr = t;
    t->name = s->cfg.name;
    t->cb = (mcp_transport_callbacks){.on_frame = mcp_server__on_frame,
                                      .on_toobig = mcp_server__on_toobig,
                                      .on_eof = mcp_server__on_eof,
                                      .on_closed = mcp_server__on_closed};
    t->ud = s;
    s->next_id = 1;
    s->hs_ev = evtimer_new(base, mcp_server__on_hs_timeout, s);
    s->ping_ev = evtimer_new(base, mcp_server__on_ping_timeout, s);
    s->restart_ev = evtimer_new(base, mcp_server__on_restart, s);
    s->retire_ev = evtimer_new(base, mcp_server__on_retire, s);
    s->log_summary_ev = evtimer_new(base, mcp_server__on_log_summary, s);
    log_limit_init(&s->log_limit, MCP_LOG_RATE, MCP_LOG_BURST, clock_mono_ms());
    g->servers = xrealloc(g->servers, (g->nservers + 1) * sizeof *g->servers);
    g->servers[g->nservers++] = s;
    g->refs++;
    return s;
}
