/*
 * mcp: one tool source per configured MCP server; see mcp.h.
 *
 * A server's life: DOWN (no process) -> STARTING (spawned; initialize, then
 * tools/list page by page) -> READY (calls are sent) -> and when its output
 * ends, EXITING (learning how it ended) -> DOWN again. A call made while the
 * server is STARTING or EXITING waits in the queue; a call made while it is
 * DOWN waits too and schedules a restart after the backoff. Every call,
 * queued or sent, has its own time-out timer from the moment it is made.
 *
 * Ownership: the toolset owns each server (its tool_source). A call belongs
 * to its server until it ends: its on_done runs after it is unlinked and
 * freed, so a callback may do anything, including making new calls. The
 * servers of one mcp_add_servers share a group, through which the first
 * server freed stops every child at once, so shutdown waits once, not once
 * per server.
 *
 * Tool definitions: the engine keeps a tool_def pointer for as long as its
 * call is in flight, so a list replaced while calls are in flight is kept
 * (retired) until the server has no call left.
 */
#include "engine/mcp.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/mcp_config.h"
#include "engine/mcp_frame.h"
#include "engine/mcp_proc.h"
#include "engine/tool_source.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "version.h"

#define MCP__PROTOCOL        "2025-11-25"
#define MCP__STDERR_LINE_MAX 1024
#define MCP__WRITE_MAX       (16u << 20) /* bytes queued for a server's stdin */
#define MCP__READ_CHUNK      65536
#define MCP__READS_PER_WAKE  16
#define MCP__MAX_TOOLS       1000
#define MCP__MAX_PAGES       100
#define MCP__PING_MAX_MS     10000 /* a liveness ping waits at most this long */
#define MCP__EXIT_WAIT_MS    1000  /* after EOF, how long the exit status may take */
#define MCP__REAP_POLL_MS    20
#define MCP__BACKOFF_MIN_MS  500
#define MCP__BACKOFF_MAX_MS  30000
#define MCP__HEALTHY_MS      30000 /* a process that lived this long resets the backoff */
#define MCP__STOP_GRACE_MS   2000  /* shutdown: after closing stdin, before SIGTERM */
#define MCP__STOP_TERM_MS    1000  /* shutdown: after SIGTERM, before SIGKILL */

static const char *const mcp__versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

typedef enum srv_state { SRV_DOWN, SRV_STARTING, SRV_READY, SRV_EXITING } srv_state;

typedef struct mcp_server mcp_server;
typedef struct mcp_call mcp_call;

/* The servers of one mcp_add_servers, and the children killed while still
 * running, which are reaped in the background. */
typedef struct mcp_group {
    int refs;
    mcp_server **servers;
    size_t nservers;
    pid_t *zombies;
    size_t nzombies;
    struct event *reap_ev;
    bool stopped;
} mcp_group;

struct mcp_call {
    tool_call base; /* first: tool_call_cancel finds the source through it */
    mcp_server *srv;
    int64_t id; /* the request id once sent; 0 while queued */
    char *tool;
    json_t *args;
    tool_callbacks cb;
    void *ud;
    int64_t timeout_ms;
    struct event *timer;
    mcp_call *prev, *next;
};

typedef struct retired_defs {
    tool_def *defs;
    size_t n;
    struct retired_defs *next;
} retired_defs;

struct mcp_server {
    tool_source base; /* first */
    mcp_group *group;
    struct event_base *evb;
    mcp_server_config cfg;
    char **envp;

    srv_state state;
    bool instance_ready; /* this process has finished its first listing */
    bool ever_ready;
    bool settled; /* the first start listed its tools or failed */
    char *error;  /* why the last start failed; NULL when it did not */
    unsigned gen; /* bumped whenever a process is torn down */

    mcp_proc proc;
    struct event *out_ev, *err_ev, *in_ev;
    mcp_reader out_rd, err_rd;
    buf wbuf;
    int64_t started_ms;
    struct event *exit_ev; /* polls for the exit status after EOF */
    int64_t exit_deadline_ms;

    int64_t next_id;
    int64_t init_id, list_id, ping_id;
    struct event *hs_ev;   /* time-out of initialize or a tools/list page */
    struct event *ping_ev; /* time-out of a liveness ping */
    json_t *listing;       /* tools gathered from the pages so far */
    int list_pages;
    bool relist;

    tool_def *defs;
    size_t ndefs;
    retired_defs *retired;
    struct event *retire_ev; /* frees the retired lists on the next loop turn */

    mcp_call *calls;
    int failures; /* starts in a row that ended early */
    int64_t down_ms;
    struct event *restart_ev;
};

static void srv__start(mcp_server *s);
static void srv__fail_start(mcp_server *s, const char *why);
static void srv__flush(mcp_server *s);
static void srv__on_line_error(mcp_server *s);

/* ---- small helpers ---- */

/* Appends s as a double-quoted log value: quotes and backslashes escaped,
 * control characters shown as spaces. */
static void mcp__quote(buf *b, const char *s, size_t n)
{
    buf_append_char(b, '"');
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"' || c == '\\') buf_append_char(b, '\\');
        buf_append_char(b, (unsigned char)c < 0x20 || c == 0x7f ? ' ' : c);
    }
    buf_append_char(b, '"');
}

static char *mcp__quoted(const char *s, size_t n)
{
    buf b;
    buf_init(&b, 2 * n + 3);
    mcp__quote(&b, s, n);
    return buf_detach(&b, NULL);
}

static void mcp__free_defs(tool_def *defs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(defs[i].name);
        free(defs[i].server);
        free(defs[i].tool);
        free(defs[i].description);
        json_decref(defs[i].input_schema);
    }
    free(defs);
}

static void mcp__timer(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

static char *mcp__seconds(int64_t ms)
{
    return xasprintf("%g s", (double)ms / 1000.0);
}

/* ---- the group ---- */

static void group__on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_group *g = arg;
    size_t keep = 0;
    for (size_t i = 0; i < g->nzombies; i++) {
        int status;
        if (!mcp_proc_poll(g->zombies[i], &status)) g->zombies[keep++] = g->zombies[i];
    }
    g->nzombies = keep;
    if (keep) mcp__timer(g->reap_ev, 100);
}

/* A child that was killed while running: reaped in the background. */
static void group__add_zombie(mcp_group *g, pid_t pid)
{
    g->zombies = xrealloc(g->zombies, (g->nzombies + 1) * sizeof *g->zombies);
    g->zombies[g->nzombies++] = pid;
    mcp__timer(g->reap_ev, MCP__REAP_POLL_MS);
}

/* ---- the process ---- */

static void srv__close_events(mcp_server *s)
{
    struct event **evs[] = {&s->out_ev, &s->err_ev, &s->in_ev};
    for (size_t i = 0; i < 3; i++) {
        if (*evs[i]) event_free(*evs[i]);
        *evs[i] = NULL;
    }
}

/* Logs the server's stderr line by line. */
static int srv__on_err_line(void *ud, const mcp_line *l)
{
    mcp_server *s = ud;
    char *q = l->toobig ? mcp__quoted(l->head, l->head_len) : mcp__quoted(l->data, l->len);
    if (l->toobig)
        LOG(LOG_INFO, "mcp stderr", "server=%s line=%s truncated=%zu", s->cfg.name, q, l->len);
    else
        LOG(LOG_INFO, "mcp stderr", "server=%s line=%s", s->cfg.name, q);
    free(q);
    return 0;
}

/* Reads what stderr has now; returns false at its end. */
static bool srv__read_stderr(mcp_server *s)
{
    char chunk[4096];
    for (int i = 0; i < MCP__READS_PER_WAKE; i++) {
        ssize_t n = read(s->proc.err_fd, chunk, sizeof chunk);
        if (n > 0) {
            mcp_reader_feed(&s->err_rd, chunk, (size_t)n, srv__on_err_line, s);
            continue;
        }
        if (n < 0 && (errno == EINTR)) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
}

static void srv__on_stderr(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    if (!srv__read_stderr(s)) {
        event_free(s->err_ev);
        s->err_ev = NULL;
        close(s->proc.err_fd);
        s->proc.err_fd = -1;
    }
}

/*
 * Ends the life of the current process as far as the server is concerned:
 * events and pipes closed, and a child still running killed and handed to
 * the group's reaper. Nothing of this process calls back afterwards.
 */
static void srv__teardown(mcp_server *s)
{
    srv__close_events(s);
    if (s->proc.err_fd >= 0) srv__read_stderr(s); /* its last words, e.g. a stack trace */
    mcp_proc_close(&s->proc);
    if (s->exit_ev) event_del(s->exit_ev);
    if (s->proc.pid > 0) {
        int status;
        if (!mcp_proc_poll(s->proc.pid, &status)) {
            mcp_proc_kill(s->proc.pid);
            group__add_zombie(s->group, s->proc.pid);
        }
    }
    s->proc.pid = 0;
    s->gen++;
    buf_reset(&s->wbuf);
    event_del(s->hs_ev);
    event_del(s->ping_ev);
    s->init_id = s->list_id = s->ping_id = 0;
    json_decref(s->listing);
    s->listing = NULL;
    s->relist = false;
}

/* Queues one line for the child's stdin. Returns -1 when the server cannot
 * take it (stdin closed, or too much already waiting). */
static int srv__send(mcp_server *s, char *line, size_t len)
{
    int rc = -1;
    if (s->proc.in_fd >= 0 && buf_append(&s->wbuf, line, len) == 0) rc = 0;
    free(line);
    if (rc == 0) srv__flush(s);
    return rc;
}

static int64_t srv__request(mcp_server *s, const char *method, json_t *params)
{
    int64_t id = s->next_id++;
    size_t len;
    char *line = mcp_frame_request(id, method, params, &len);
    return srv__send(s, line, len) == 0 ? id : -1;
}

static void srv__notify(mcp_server *s, const char *method, json_t *params)
{
    size_t len;
    char *line = mcp_frame_notification(method, params, &len);
    srv__send(s, line, len);
}

/* Writes what is queued until the pipe is full. A write error means the
 * child closed its stdin (it is exiting): the queue is dropped and further
 * sends fail; its output ending will tell the rest. */
static void srv__flush(mcp_server *s)
{
    while (s->wbuf.len > 0 && s->proc.in_fd >= 0) {
        ssize_t n = write(s->proc.in_fd, s->wbuf.data, s->wbuf.len);
        if (n > 0) {
            buf_consume(&s->wbuf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s->in_ev) event_add(s->in_ev, NULL);
            return;
        }
        LOG(LOG_WARN, "mcp server closed its input", "server=%s error=\"%s\"", s->cfg.name,
            strerror(errno));
        if (s->in_ev) event_free(s->in_ev);
        s->in_ev = NULL;
        mcp_proc_close_stdin(&s->proc);
        buf_reset(&s->wbuf);
        return;
    }
}

static void srv__on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv__flush(arg);
}

/* ---- calls ---- */

static void call__unlink(mcp_call *c)
{
    mcp_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void srv__free_retired(mcp_server *s)
{
    while (s->retired) {
        retired_defs *r = s->retired;
        s->retired = r->next;
        mcp__free_defs(r->defs, r->n);
        free(r);
    }
}

static void srv__on_retire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    if (!s->calls) srv__free_retired(s);
}

/* The engine still reads the tool_def of a call just after it ended or was
 * cancelled, so retired lists are freed on the next loop turn, not here. */
static void call__free(mcp_call *c)
{
    mcp_server *s = c->srv;
    call__unlink(c);
    event_free(c->timer);
    free(c->tool);
    json_decref(c->args);
    free(c);
    if (!s->calls && s->retired) mcp__timer(s->retire_ev, 0);
}

/* Ends a call with a result: the call is freed first, then on_done runs. */
static void call__finish(mcp_call *c, tool_status st, const char *text, size_t len,
                         const char *error)
{
    tool_callbacks cb = c->cb;
    void *ud = c->ud;
    call__free(c);
    tool_result r = {.status = st, .text = text, .text_len = len, .error = error};
    cb.on_done(ud, &r);
}

static void call__fail(mcp_call *c, tool_status st, const char *msg)
{
    call__finish(c, st, msg, strlen(msg), msg);
}

static mcp_call *srv__find_call(mcp_server *s, int64_t id)
{
    for (mcp_call *c = s->calls; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

/* Fails every call that was sent (queued == false) or every queued one
 * (queued == true). The list is searched again after each callback, which
 * may change it. */
static void srv__fail_calls(mcp_server *s, bool queued, const char *msg)
{
    for (;;) {
        mcp_call *c = s->calls;
        while (c && (c->id == 0) != queued) c = c->next;
        if (!c) return;
        call__fail(c, TOOL_ERROR, msg);
    }
}

static void call__cancelled_notice(mcp_call *c, const char *reason)
{
    if (c->id == 0 || c->srv->proc.in_fd < 0) return;
    srv__notify(c->srv, "notifications/cancelled",
                json_pack("{s:I,s:s}", "requestId", (json_int_t)c->id, "reason", reason));
}

/* Sends a queued call; returns -1 when the server cannot take it. */
static int call__send(mcp_call *c)
{
    mcp_server *s = c->srv;
    int64_t id = s->next_id;
    json_t *params = json_pack("{s:s,s:O,s:{s:I}}", "name", c->tool, "arguments", c->args, "_meta",
                               "progressToken", (json_int_t)id);
    if (srv__request(s, "tools/call", params) < 0) return -1;
    c->id = id;
    return 0;
}

static void srv__send_queued(mcp_server *s)
{
    for (;;) {
        mcp_call *c = s->calls;
        while (c && c->id != 0) c = c->next;
        if (!c) return;
        if (call__send(c) != 0) {
            char *msg = xasprintf("the MCP server '%s' is not taking input", s->cfg.name);
            call__fail(c, TOOL_ERROR, msg);
            free(msg);
        }
    }
}

static void srv__ping(mcp_server *s);

static void call__on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_call *c = arg;
    mcp_server *s = c->srv;
    char *secs = mcp__seconds(c->timeout_ms);
    char *msg = xasprintf("timed out after %s", secs);
    bool was_sent = c->id != 0;
    call__cancelled_notice(c, msg);
    call__fail(c, TOOL_TIMEOUT, msg);
    free(msg);
    free(secs);
    /* A server that let a call time out may have stopped answering at all. */
    if (was_sent) srv__ping(s);
}

/* ---- restarts ---- */

static int64_t srv__backoff_ms(const mcp_server *s)
{
    if (s->failures <= 0) return 0;
    int64_t d = MCP__BACKOFF_MIN_MS;
    for (int i = 1; i < s->failures && d < MCP__BACKOFF_MAX_MS; i++) d *= 2;
    return d < MCP__BACKOFF_MAX_MS ? d : MCP__BACKOFF_MAX_MS;
}

static void srv__on_restart(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    if (s->state == SRV_DOWN && s->calls) srv__start(s);
}

/* A call is waiting for a server that is down: start it again once the
 * backoff since it went down has passed. */
static void srv__schedule_restart(mcp_server *s)
{
    if (evtimer_pending(s->restart_ev, NULL)) return;
    int64_t wait = s->down_ms + srv__backoff_ms(s) - clock_mono_ms();
    if (wait < 0) wait = 0;
    LOG(LOG_INFO, "mcp server restarting", "server=%s delay_ms=%lld", s->cfg.name, (long long)wait);
    mcp__timer(s->restart_ev, wait);
}

/* The process is gone (how: what, e.g. "exited (status 1)"): calls in
 * flight fail, and the server waits for the next call to start again. */
static void srv__down(mcp_server *s, const char *what)
{
    bool was_ready = s->instance_ready;
    int64_t now = clock_mono_ms();
    srv__teardown(s);
    s->instance_ready = false;
    s->state = SRV_DOWN;
    s->down_ms = now;
    s->failures = now - s->started_ms < MCP__HEALTHY_MS ? s->failures + 1 : 1;
    if (!was_ready) {
        char *why = xasprintf("%s during start-up", what);
        srv__fail_start(s, why);
        free(why);
        return;
    }
    LOG(LOG_WARN, "mcp server ended", "server=%s how=\"%s\"", s->cfg.name, what);
    char *msg = xasprintf("the MCP server '%s' %s during the call", s->cfg.name, what);
    srv__fail_calls(s, false, msg);
    free(msg);
    if (s->calls && s->state == SRV_DOWN) srv__schedule_restart(s);
}

/* A start that did not reach a tool list: the reason is kept for
 * /api/info, and the calls waiting for the server fail. */
static void srv__fail_start(mcp_server *s, const char *why)
{
    if (s->proc.pid > 0 || s->state != SRV_DOWN) {
        srv__teardown(s);
        s->state = SRV_DOWN;
        s->down_ms = clock_mono_ms();
        s->failures++;
    }
    free(s->error);
    s->error = xstrdup(why);
    s->settled = true;
    char *q = mcp__quoted(why, strlen(why));
    LOG(LOG_ERROR, "mcp server failed to start", "server=%s error=%s", s->cfg.name, q);
    free(q);
    char *msg = xasprintf("the MCP server '%s' could not start: %s", s->cfg.name, why);
    srv__fail_calls(s, false, msg);
    srv__fail_calls(s, true, msg);
    free(msg);
}

/* Waiting for the exit status after the output ended. */
static void srv__on_exit_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    int status;
    if (mcp_proc_poll(s->proc.pid, &status)) {
        s->proc.pid = 0;
        char *how = mcp_proc_status_text(status);
        srv__down(s, how);
        free(how);
        return;
    }
    if (clock_mono_ms() < s->exit_deadline_ms) {
        mcp__timer(s->exit_ev, MCP__REAP_POLL_MS);
        return;
    }
    srv__down(s, "closed its output");
}

/* The child's stdout ended: it is exiting. Its exit status, needed to say
 * what happened, usually follows within milliseconds. */
static void srv__output_ended(mcp_server *s)
{
    srv__close_events(s);
    if (s->state == SRV_EXITING) return;
    s->state = SRV_EXITING;
    s->exit_deadline_ms = clock_mono_ms() + MCP__EXIT_WAIT_MS;
    srv__on_exit_poll(-1, 0, s);
}

/* ---- tools ---- */

/* Turns the gathered listing into the server's tool list. */
static void srv__install_tools(mcp_server *s)
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
    }
    if (s->calls) {
        retired_defs *r = xcalloc(1, sizeof *r);
        r->defs = s->defs;
        r->n = s->ndefs;
        r->next = s->retired;
        s->retired = r;
    } else {
        mcp__free_defs(s->defs, s->ndefs);
    }
    s->defs = defs;
    s->ndefs = k;
    json_decref(s->listing);
    s->listing = NULL;
}

static void srv__list_page(mcp_server *s, const char *cursor)
{
    json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
    s->list_id = srv__request(s, "tools/list", params);
    if (s->list_id < 0) {
        s->list_id = 0;
        if (s->state == SRV_STARTING) srv__fail_start(s, "it closed its input");
        return;
    }
    mcp__timer(s->hs_ev, s->cfg.timeout_ms);
}

static void srv__list(mcp_server *s)
{
    if (s->list_id) {
        s->relist = true;
        return;
    }
    json_decref(s->listing);
    s->listing = json_array();
    s->list_pages = 0;
    srv__list_page(s, NULL);
}

static void srv__on_list_result(mcp_server *s, const json_t *result)
{
    event_del(s->hs_ev);
    s->list_id = 0;
    const json_t *tools = json_object_get(result, "tools");
    if (!json_is_array(tools)) {
        if (s->state == SRV_STARTING) {
            srv__fail_start(s, "its tools/list answer has no \"tools\" array");
            return;
        }
        LOG(LOG_WARN, "mcp tools/list answer without tools", "server=%s", s->cfg.name);
        json_decref(s->listing);
        s->listing = NULL;
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (json_array_size(s->listing) < MCP__MAX_TOOLS) json_array_append(s->listing, t);
    }
    const char *cursor = json_string_value(json_object_get(result, "nextCursor"));
    if (cursor && ++s->list_pages < MCP__MAX_PAGES &&
        json_array_size(s->listing) < MCP__MAX_TOOLS) {
        srv__list_page(s, cursor);
        return;
    }
    srv__install_tools(s);
    if (s->state == SRV_STARTING) {
        s->state = SRV_READY;
        s->instance_ready = s->ever_ready = s->settled = true;
        free(s->error);
        s->error = NULL;
        LOG(LOG_INFO, "mcp server ready", "server=%s pid=%ld tools=%zu", s->cfg.name,
            (long)s->proc.pid, s->ndefs);
        srv__send_queued(s);
    }
    if (s->relist && s->state == SRV_READY) {
        s->relist = false;
        srv__list(s);
    }
}

/* ---- the handshake ---- */

static void srv__on_init_result(mcp_server *s, const json_t *result)
{
    event_del(s->hs_ev);
    s->init_id = 0;
    const char *version = json_string_value(json_object_get(result, "protocolVersion"));
    bool known = false;
    for (size_t i = 0; version && i < sizeof mcp__versions / sizeof mcp__versions[0]; i++)
        if (strcmp(version, mcp__versions[i]) == 0) known = true;
    if (!known) {
        char *why = xasprintf("it answered with protocol version '%s', which chatplane does "
                              "not speak",
                              version ? version : "(none)");
        srv__fail_start(s, why);
        free(why);
        return;
    }
    LOG(LOG_DEBUG, "mcp server initialized", "server=%s protocol=%s", s->cfg.name, version);
    srv__notify(s, "notifications/initialized", NULL);
    srv__list(s);
}

/* A handshake request or a tools/list page went unanswered. */
static void srv__on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    char *secs = mcp__seconds(s->cfg.timeout_ms);
    const char *method = s->init_id ? "initialize" : "tools/list";
    if (s->state == SRV_STARTING) {
        char *why = xasprintf("it did not answer %s within %s", method, secs);
        srv__fail_start(s, why);
        free(why);
    } else {
        LOG(LOG_WARN, "mcp tools/list went unanswered; keeping the tools listed before",
            "server=%s", s->cfg.name);
        s->list_id = 0;
        json_decref(s->listing);
        s->listing = NULL;
    }
    free(secs);
}

/* ---- liveness ---- */

static void srv__ping(mcp_server *s)
{
    if (s->state != SRV_READY || s->ping_id) return;
    s->ping_id = srv__request(s, "ping", NULL);
    if (s->ping_id < 0) {
        s->ping_id = 0;
        return;
    }
    int64_t ms = s->cfg.timeout_ms < MCP__PING_MAX_MS ? s->cfg.timeout_ms : MCP__PING_MAX_MS;
    mcp__timer(s->ping_ev, ms);
}

/* The ping after a time-out went unanswered too: the server is stuck. It is
 * killed; the next call starts it again. */
static void srv__on_ping_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    s->ping_id = 0;
    LOG(LOG_WARN, "mcp server stopped answering; stopping it", "server=%s", s->cfg.name);
    srv__down(s, "stopped answering");
}

/* ---- messages from the server ---- */

static void srv__on_progress(mcp_server *s, const json_t *params)
{
    const json_t *token = json_object_get(params, "progressToken");
    /* Queued calls have id 0, and no token was ever 0. */
    if (!json_is_integer(token) || json_integer_value(token) <= 0) return;
    mcp_call *c = srv__find_call(s, json_integer_value(token));
    if (!c || !c->cb.on_progress) return;
    const json_t *total = json_object_get(params, "total");
    c->cb.on_progress(c->ud, json_number_value(json_object_get(params, "progress")),
                      json_is_number(total) ? json_number_value(total) : -1,
                      json_string_value(json_object_get(params, "message")));
}

static void srv__on_notification(mcp_server *s, const mcp_msg *m)
{
    if (strcmp(m->method, "notifications/progress") == 0) {
        srv__on_progress(s, m->params);
    } else if (strcmp(m->method, "notifications/tools/list_changed") == 0) {
        /* Before the first listing the server is about to be listed anyway. */
        if (s->state == SRV_READY) srv__list(s);
    } else if (strcmp(m->method, "notifications/message") == 0) {
        const char *level = json_string_value(json_object_get(m->params, "level"));
        char *data = json_dumps(json_object_get(m->params, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
        char *q = mcp__quoted(data ? data : "", data ? strlen(data) : 0);
        LOG(LOG_INFO, "mcp log", "server=%s level=%s data=%s", s->cfg.name, level ? level : "info",
            q);
        free(q);
        free(data);
    }
}

static void srv__on_response(mcp_server *s, const mcp_msg *m)
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
        if (m->kind == MCP_MSG_ERROR) {
            char *t = mcp_msg_error_text(m);
            char *why =
                xasprintf("%s failed: %s", id == s->init_id ? "initialize" : "tools/list", t);
            if (s->state == SRV_STARTING) {
                srv__fail_start(s, why);
            } else {
                char *q = mcp__quoted(t, strlen(t));
                LOG(LOG_WARN, "mcp tools/list failed", "server=%s error=%s", s->cfg.name, q);
                free(q);
                event_del(s->hs_ev);
                s->list_id = 0;
            }
            free(why);
            free(t);
        } else if (id == s->init_id) {
            srv__on_init_result(s, m->result);
        } else {
            srv__on_list_result(s, m->result);
        }
        return;
    }
    if (id == s->ping_id) {
        event_del(s->ping_ev);
        s->ping_id = 0;
        return;
    }
    mcp_call *c = id > 0 ? srv__find_call(s, id) : NULL;
    if (!c) {
        /* A late answer to a call that was cancelled or timed out. */
        LOG(LOG_DEBUG, "mcp answer to no pending request", "server=%s id=%lld", s->cfg.name,
            (long long)id);
        return;
    }
    if (m->kind == MCP_MSG_ERROR) {
        char *t = mcp_msg_error_text(m);
        call__fail(c, TOOL_ERROR, t);
        free(t);
        return;
    }
    buf text;
    buf_init(&text, TOOL_RESULT_MAX);
    bool is_error = mcp_frame_result_text(m->result, &text);
    const char *str = text.data ? text.data : "";
    if (is_error)
        call__finish(c, TOOL_ERROR, str, text.len, *str ? str : "the tool reported an error");
    else
        call__finish(c, TOOL_OK, str, text.len, NULL);
    buf_cleanup(&text);
}

static void srv__on_message(mcp_server *s, const char *line, size_t len)
{
    mcp_msg m;
    char err[160];
    if (mcp_msg_parse(line, len, &m, err, sizeof err) != 0) {
        char *q = mcp__quoted(line, len < 200 ? len : 200);
        char *e = mcp__quoted(err, strlen(err));
        LOG(LOG_WARN, "mcp unreadable message ignored", "server=%s error=%s line=%s", s->cfg.name,
            e, q);
        free(e);
        free(q);
        mcp_msg_cleanup(&m);
        return;
    }
    switch (m.kind) {
    case MCP_MSG_REQUEST: {
        size_t n;
        char *answer = mcp_frame_answer(&m, &n);
        srv__send(s, answer, n);
        break;
    }
    case MCP_MSG_NOTIFICATION:
        srv__on_notification(s, &m);
        break;
    case MCP_MSG_RESULT:
    case MCP_MSG_ERROR:
        srv__on_response(s, &m);
        break;
    case MCP_MSG_INVALID:
        break;
    }
    mcp_msg_cleanup(&m);
}

/* A message line over MCP_LINE_MAX: the call it answers fails (the reader
 * found its id in its first or last bytes); the server lives on. */
static void srv__on_toobig(mcp_server *s, const mcp_line *l)
{
    char *msg = xasprintf("the MCP server '%s' sent a message of %zu bytes, more than the "
                          "%u bytes allowed",
                          s->cfg.name, l->len, MCP_LINE_MAX);
    LOG(LOG_WARN, "mcp message too large", "server=%s bytes=%zu id=%lld", s->cfg.name, l->len,
        (long long)l->id);
    mcp_call *c = l->id > 0 ? srv__find_call(s, l->id) : NULL;
    if (c) {
        call__fail(c, TOOL_ERROR, msg);
    } else if (l->id > 0 && (l->id == s->init_id || l->id == s->list_id)) {
        if (s->state == SRV_STARTING)
            srv__fail_start(s, msg);
        else
            srv__on_line_error(s);
    }
    free(msg);
}

static void srv__on_line_error(mcp_server *s)
{
    event_del(s->hs_ev);
    s->list_id = 0;
    json_decref(s->listing);
    s->listing = NULL;
}

typedef struct line_ctx {
    mcp_server *s;
    unsigned gen;
} line_ctx;

static int srv__on_line(void *ud, const mcp_line *l)
{
    line_ctx *ctx = ud;
    mcp_server *s = ctx->s;
    if (l->toobig)
        srv__on_toobig(s, l);
    else
        srv__on_message(s, l->data, l->len);
    /* Stop reading this process's bytes once it was torn down. */
    return s->gen != ctx->gen ? 1 : 0;
}

static void srv__on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_server *s = arg;
    char *chunk = xmalloc(MCP__READ_CHUNK);
    line_ctx ctx = {s, s->gen};
    for (int i = 0; i < MCP__READS_PER_WAKE && s->gen == ctx.gen; i++) {
        ssize_t n = read(s->proc.out_fd, chunk, MCP__READ_CHUNK);
        if (n > 0) {
            if (mcp_reader_feed(&s->out_rd, chunk, (size_t)n, srv__on_line, &ctx) != 0) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        srv__output_ended(s);
        break;
    }
    free(chunk);
}

/* ---- starting ---- */

static const char *srv__env_path(char **envp)
{
    for (char **p = envp; *p; p++)
        if (strncmp(*p, "PATH=", 5) == 0) return *p + 5;
    return NULL;
}

/* Spawns the process and sends initialize; failures are reported through
 * srv__fail_start. */
static void srv__start(mcp_server *s)
{
    char err[512];
    char *file = mcp_proc_resolve(s->cfg.command, srv__env_path(s->envp), err, sizeof err);
    if (!file || mcp_proc_spawn(file, s->cfg.args, s->envp, &s->proc, err, sizeof err) != 0) {
        free(file);
        s->down_ms = clock_mono_ms();
        s->failures++;
        srv__fail_start(s, err);
        return;
    }
    free(file);
    s->state = SRV_STARTING;
    s->instance_ready = false;
    s->started_ms = clock_mono_ms();
    /* The readers are renewed here and not at teardown, which may happen
     * while the old reader is delivering a line. */
    mcp_reader_cleanup(&s->out_rd);
    mcp_reader_cleanup(&s->err_rd);
    mcp_reader_init(&s->out_rd, MCP_LINE_MAX);
    mcp_reader_init(&s->err_rd, MCP__STDERR_LINE_MAX);
    s->out_ev = event_new(s->evb, s->proc.out_fd, EV_READ | EV_PERSIST, srv__on_readable, s);
    s->err_ev = event_new(s->evb, s->proc.err_fd, EV_READ | EV_PERSIST, srv__on_stderr, s);
    s->in_ev = event_new(s->evb, s->proc.in_fd, EV_WRITE, srv__on_writable, s);
    event_add(s->out_ev, NULL);
    event_add(s->err_ev, NULL);
    LOG(LOG_INFO, "mcp server started", "server=%s pid=%ld command=\"%s\"", s->cfg.name,
        (long)s->proc.pid, s->cfg.command);

    json_t *params =
        json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", MCP__PROTOCOL, "capabilities",
                  "clientInfo", "name", "chatplane", "version", CHATPLANE_VERSION);
    s->init_id = srv__request(s, "initialize", params);
    if (s->init_id < 0) {
        s->init_id = 0;
        srv__fail_start(s, "it closed its input");
        return;
    }
    mcp__timer(s->hs_ev, s->cfg.timeout_ms);
}

/* ---- the source ---- */

static size_t srv__count(const tool_source *src)
{
    return ((const mcp_server *)src)->ndefs;
}

static const tool_def *srv__get(const tool_source *src, size_t i)
{
    const mcp_server *s = (const mcp_server *)src;
    return i < s->ndefs ? &s->defs[i] : NULL;
}

static tool_call *srv__call(tool_source *src, size_t i, const json_t *arguments, int64_t timeout_ms,
                            const tool_callbacks *cb, void *ud)
{
    mcp_server *s = (mcp_server *)src;
    mcp_call *c = xcalloc(1, sizeof *c);
    c->base.source = src;
    c->srv = s;
    c->tool = xstrdup(s->defs[i].tool);
    c->args = arguments ? json_deep_copy(arguments) : json_object();
    c->cb = *cb;
    c->ud = ud;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : s->cfg.timeout_ms;
    c->timer = evtimer_new(s->evb, call__on_timeout, c);
    c->next = s->calls;
    if (s->calls) s->calls->prev = c;
    s->calls = c;
    mcp__timer(c->timer, c->timeout_ms);

    if (s->state == SRV_READY) {
        if (call__send(c) != 0) {
            char *msg = xasprintf("the MCP server '%s' is not taking input", s->cfg.name);
            call__fail(c, TOOL_ERROR, msg);
            free(msg);
            return NULL;
        }
    } else if (s->state == SRV_DOWN) {
        srv__schedule_restart(s);
    }
    return &c->base;
}

static void srv__cancel(tool_call *tc)
{
    mcp_call *c = (mcp_call *)tc;
    call__cancelled_notice(c, "the run stopped");
    call__free(c);
}

static json_t *srv__info(const tool_source *src)
{
    const mcp_server *s = (const mcp_server *)src;
    const char *status = s->state == SRV_READY                        ? "ready"
                         : s->error                                   ? "failed"
                         : s->state == SRV_STARTING && !s->ever_ready ? "starting"
                                                                      : "restarting";
    return json_pack("{s:s,s:s,s:o,s:I}", "name", s->cfg.name, "status", status, "error",
                     s->error ? json_string(s->error) : json_null(), "tools", (json_int_t)s->ndefs);
}

/* The first server freed stops the children of the whole group at once:
 * stdin closed, a bounded wait, then SIGTERM and SIGKILL. */
static void group__stop(mcp_group *g)
{
    if (g->stopped) return;
    g->stopped = true;
    size_t n = 0;
    pid_t *pids = xcalloc(g->nservers + g->nzombies + 1, sizeof *pids);
    for (size_t i = 0; i < g->nservers; i++) {
        mcp_server *s = g->servers[i];
        srv__close_events(s);
        mcp_proc_close_stdin(&s->proc);
        if (s->proc.pid > 0) pids[n++] = s->proc.pid;
    }
    for (size_t i = 0; i < g->nzombies; i++) pids[n++] = g->zombies[i];
    g->nzombies = 0;
    mcp_proc_stop_all(pids, n, MCP__STOP_GRACE_MS, MCP__STOP_TERM_MS);
    for (size_t i = 0; i < g->nservers; i++) {
        mcp_server *s = g->servers[i];
        if (s->proc.err_fd >= 0) srv__read_stderr(s);
        mcp_proc_close(&s->proc);
        s->proc.pid = 0;
    }
    free(pids);
}

static void group__release(mcp_group *g)
{
    if (--g->refs > 0) return;
    event_free(g->reap_ev);
    free(g->zombies);
    free(g->servers);
    free(g);
}

static void srv__free(tool_source *src)
{
    mcp_server *s = (mcp_server *)src;
    group__stop(s->group);
    /* The engine has stopped its runs; calls left have nobody to tell. */
    while (s->calls) call__free(s->calls);
    srv__teardown(s);
    event_free(s->hs_ev);
    event_free(s->ping_ev);
    event_free(s->restart_ev);
    event_free(s->exit_ev);
    event_free(s->retire_ev);
    buf_cleanup(&s->wbuf);
    mcp_reader_cleanup(&s->out_rd);
    mcp_reader_cleanup(&s->err_rd);
    mcp__free_defs(s->defs, s->ndefs);
    srv__free_retired(s);
    mcp_proc_strv_free(s->envp);
    free(s->error);
    mcp_config_cleanup(&s->cfg);
    mcp_group *g = s->group;
    for (size_t i = 0; i < g->nservers; i++)
        if (g->servers[i] == s) g->servers[i] = g->servers[--g->nservers];
    group__release(g);
    free(s);
}

static const tool_source_ops srv__ops = {
    .count = srv__count,
    .get = srv__get,
    .call = srv__call,
    .cancel = srv__cancel,
    .free = srv__free,
    .info = srv__info,
};

static const char *mcp__getenv(const char *name)
{
    return getenv(name);
}

/* Takes over cfg (the struct is copied; its strings now belong to s). */
static mcp_server *srv__new(mcp_group *g, struct event_base *base, mcp_server_config *cfg)
{
    mcp_server *s = xcalloc(1, sizeof *s);
    s->base.ops = &srv__ops;
    s->group = g;
    s->evb = base;
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->envp = mcp_proc_env(mcp__getenv, s->cfg.env);
    s->proc.pid = 0;
    s->proc.in_fd = s->proc.out_fd = s->proc.err_fd = -1;
    s->next_id = 1;
    buf_init(&s->wbuf, MCP__WRITE_MAX);
    s->hs_ev = evtimer_new(base, srv__on_hs_timeout, s);
    s->ping_ev = evtimer_new(base, srv__on_ping_timeout, s);
    s->restart_ev = evtimer_new(base, srv__on_restart, s);
    s->exit_ev = evtimer_new(base, srv__on_exit_poll, s);
    s->retire_ev = evtimer_new(base, srv__on_retire, s);
    g->servers[g->nservers++] = s;
    g->refs++;
    return s;
}

static bool group__settled(const mcp_group *g)
{
    for (size_t i = 0; i < g->nservers; i++)
        if (!g->servers[i]->settled) return false;
    return true;
}

static void mcp__on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

int mcp_add_servers(toolset *ts, struct event_base *base, const json_t *servers, int64_t wait_ms,
                    char *err, size_t errlen)
{
    mcp_server_config *cfgs;
    size_t n;
    if (mcp_config_parse(servers, &cfgs, &n, err, errlen) != 0) return -1;
    size_t enabled = 0;
    for (size_t i = 0; i < n; i++) enabled += !cfgs[i].disabled;
    if (enabled == 0) {
        mcp_config_free(cfgs, n);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);

    mcp_group *g = xcalloc(1, sizeof *g);
    g->servers = xcalloc(enabled, sizeof *g->servers);
    g->reap_ev = evtimer_new(base, group__on_reap, g);
    for (size_t i = 0; i < n; i++) {
        if (cfgs[i].disabled) continue;
        mcp_server *s = srv__new(g, base, &cfgs[i]);
        toolset_add_source(ts, &s->base);
    }
    mcp_config_free(cfgs, n);
    /* Started after all are added, so a failure callback finds a complete
     * group; the copy of the list guards against a change while starting. */
    size_t count = g->nservers;
    mcp_server **list = xcalloc(count, sizeof *list);
    memcpy(list, g->servers, count * sizeof *list);
    for (size_t i = 0; i < count; i++) srv__start(list[i]);
    free(list);

    if (wait_ms > 0) {
        bool over = false;
        struct event *deadline = evtimer_new(base, mcp__on_wait_over, &over);
        mcp__timer(deadline, wait_ms);
        while (!over && !group__settled(g)) event_base_loop(base, EVLOOP_ONCE);
        event_free(deadline);
    }
    return 0;
}
