/*
 * mcp_stdio: the stdio transport; see mcp_stdio.h and mcp_transport.h.
 *
 * One connection is one child process. Its three pipes have an event each;
 * the stdout reader delivers whole lines as messages. When stdout ends the
 * child is exiting: on_eof runs, then the exit status is polled for (it
 * usually follows within milliseconds) and on_closed says how it ended.
 * Every connection has a generation, bumped by close, so a line being
 * delivered when the server closes the connection is the last one read.
 */
#include "engine/mcp_stdio.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/mcp.h"
#include "engine/mcp_frame.h"
#include "engine/mcp_int.h"
#include "engine/mcp_proc.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define STDERR_LINE_MAX MCP_LOG_LINE_MAX
#define WRITE_MAX       (16u << 20) /* bytes queued for a child's stdin */
#define READ_CHUNK      65536
#define READS_PER_WAKE  16
#define EXIT_WAIT_MS    1000 /* after EOF, how long the exit status may take */
#define REAP_POLL_MS    20
#define STOP_GRACE_MS   2000 /* shutdown: after closing stdin, before SIGTERM */
#define STOP_TERM_MS    1000 /* shutdown: after SIGTERM, before SIGKILL */

/* Children killed while still running, reaped in the background. */
struct mcp_stdio_reaper {
    int refs;
    pid_t *pids;
    size_t npids;
    struct event *ev;
};

typedef struct mcp_stdio {
    mcp_transport base; /* first */
    struct event_base *evb;
    char *command;
    char **args;
    char **envp;
    mcp_stdio_reaper *reaper;

    mcp_proc proc;
    struct event *out_ev, *err_ev, *in_ev;
    mcp_reader out_rd, err_rd;
    buf wbuf;
    unsigned gen; /* bumped whenever a connection is closed */
    bool ended;   /* stdout ended; waiting for the exit status */
    struct event *exit_ev;
    int64_t exit_deadline_ms;
    log_limit err_limit;          /* the stderr lines logged, across connections */
    struct event *err_summary_ev; /* writes the summary of what err_limit dropped */
} mcp_stdio;

/* ---- the reaper ---- */

static void mcp_stdio__on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_stdio_reaper *r = arg;
    size_t keep = 0;
    for (size_t i = 0; i < r->npids; i++) {
        int status;
        if (!mcp_proc_poll(r->pids[i], &status)) r->pids[keep++] = r->pids[i];
    }
    r->npids = keep;
    if (keep) mcp__timer(r->ev, 100);
}

mcp_stdio_reaper *mcp_stdio_reaper_new(struct event_base *base)
{
    mcp_stdio_reaper *r = xcalloc(1, sizeof *r);
    r->refs = 1;
    r->ev = evtimer_new(base, mcp_stdio__on_reap, r);
    return r;
}

void mcp_stdio_reaper_release(mcp_stdio_reaper *r)
{
    if (!r || --r->refs > 0) return;
    event_free(r->ev);
    free(r->pids);
    free(r);
}

static void mcp_stdio__reaper_add(mcp_stdio_reaper *r, pid_t pid)
{
    r->pids = xrealloc(r->pids, (r->npids + 1) * sizeof *r->pids);
    r->pids[r->npids++] = pid;
    mcp__timer(r->ev, REAP_POLL_MS);
}

/* ---- the pipes ---- */

static void mcp_stdio__close_events(mcp_stdio *t)
{
    struct event **evs[] = {&t->out_ev, &t->err_ev, &t->in_ev};
    for (size_t i = 0; i < 3; i++) {
        if (*evs[i]) event_free(*evs[i]);
        *evs[i] = NULL;
    }
}

static void mcp_stdio__on_err_summary(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_stdio *t = arg;
    mcp__log_summary(&t->err_limit, t->base.name, "stderr");
}

/* Logs the child's stderr line by line, as far as its limit allows. */
static int mcp_stdio__on_err_line(void *ud, const mcp_line *l)
{
    mcp_stdio *t = ud;
    if (!mcp__log_admit(&t->err_limit, t->err_summary_ev, LOG_INFO)) return 0;
    char *q = l->toobig ? mcp__quoted(l->head, l->head_len) : mcp__quoted(l->data, l->len);
    if (l->toobig)
        LOG(LOG_INFO, "mcp stderr", "server=%s line=%s truncated=%zu", t->base.name, q, l->len);
    else
        LOG(LOG_INFO, "mcp stderr", "server=%s line=%s", t->base.name, q);
    free(q);
    return 0;
}

/* Reads what stderr has now; returns false at its end. */
static bool mcp_stdio__read_stderr(mcp_stdio *t)
{
    char chunk[4096];
    for (int i = 0; i < READS_PER_WAKE; i++) {
        ssize_t n = read(t->proc.err_fd, chunk, sizeof chunk);
        if (n > 0) {
            mcp_reader_feed(&t->err_rd, chunk, (size_t)n, mcp_stdio__on_err_line, t);
            continue;
        }
        if (n < 0 && (errno == EINTR)) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
}

static void mcp_stdio__on_stderr(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_stdio *t = arg;
    if (!mcp_stdio__read_stderr(t)) {
        event_free(t->err_ev);
        t->err_ev = NULL;
        close(t->proc.err_fd);
        t->proc.err_fd = -1;
    }
}

/* Writes what is queued until the pipe is full. A write error means the
 * child closed its stdin (it is exiting): the queue is dropped and further
 * sends fail; its output ending will tell the rest. */
static void mcp_stdio__flush(mcp_stdio *t)
{
    while (t->wbuf.len > 0 && t->proc.in_fd >= 0) {
        ssize_t n = write(t->proc.in_fd, t->wbuf.data, t->wbuf.len);
        if (n > 0) {
            buf_consume(&t->wbuf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (t->in_ev) event_add(t->in_ev, NULL);
            return;
        }
        LOG(LOG_WARN, "mcp server closed its input", "server=%s error=\"%s\"", t->base.name,
            strerror(errno));
        if (t->in_ev) event_free(t->in_ev);
        t->in_ev = NULL;
        mcp_proc_close_stdin(&t->proc);
        buf_reset(&t->wbuf);
        return;
    }
}

static void mcp_stdio__on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_stdio__flush(arg);
}

/* ---- the end of a connection ---- */

/* Waiting for the exit status after the output ended. */
static void mcp_stdio__on_exit_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_stdio *t = arg;
    int status;
    if (mcp_proc_poll(t->proc.pid, &status)) {
        t->proc.pid = 0;
        char *how = mcp_proc_status_text(status);
        t->base.cb.on_closed(t->base.ud, how);
        free(how);
        return;
    }
    if (clock_mono_ms() < t->exit_deadline_ms) {
        mcp__timer(t->exit_ev, REAP_POLL_MS);
        return;
    }
    t->base.cb.on_closed(t->base.ud, "closed its output");
}

/* The child's stdout ended: it is exiting. */
static void mcp_stdio__output_ended(mcp_stdio *t)
{
    mcp_stdio__close_events(t);
    if (t->ended) return;
    t->ended = true;
    t->exit_deadline_ms = clock_mono_ms() + EXIT_WAIT_MS;
    unsigned gen = t->gen;
    t->base.cb.on_eof(t->base.ud);
    if (t->gen == gen) mcp_stdio__on_exit_poll(-1, 0, t);
}

typedef struct line_ctx {
    mcp_stdio *t;
    unsigned gen;
} line_ctx;

static int mcp_stdio__on_line(void *ud, const mcp_line *l)
{
    line_ctx *ctx = ud;
    mcp_stdio *t = ctx->t;
    if (l->toobig)
        t->base.cb.on_toobig(t->base.ud, l->len, MCP_LINE_MAX, l->id);
    else
        t->base.cb.on_frame(t->base.ud, l->data, l->len);
    /* Stop reading this connection's bytes once it was closed. */
    return t->gen != ctx->gen ? 1 : 0;
}

static void mcp_stdio__on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_stdio *t = arg;
    char *chunk = xmalloc(READ_CHUNK);
    line_ctx ctx = {t, t->gen};
    for (int i = 0; i < READS_PER_WAKE && t->gen == ctx.gen; i++) {
        ssize_t n = read(t->proc.out_fd, chunk, READ_CHUNK);
        if (n > 0) {
            if (mcp_reader_feed(&t->out_rd, chunk, (size_t)n, mcp_stdio__on_line, &ctx) != 0) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        mcp_stdio__output_ended(t);
        break;
    }
    free(chunk);
}

/* ---- the operations ---- */

static const char *mcp_stdio__env_path(char **envp)
{
    for (char **p = envp; *p; p++)
        if (strncmp(*p, "PATH=", 5) == 0) return *p + 5;
    return NULL;
}

static int mcp_stdio__stdio_start(mcp_transport *tr, char *err, size_t errlen)
{
    mcp_stdio *t = (mcp_stdio *)tr;
    char *file = mcp_proc_resolve(t->command, mcp_stdio__env_path(t->envp), err, errlen);
    if (!file || mcp_proc_spawn(file, t->args, t->envp, &t->proc, err, errlen) != 0) {
        free(file);
        return -1;
    }
    free(file);
    t->ended = false;
    /* The readers are renewed here and not at close, which may happen
     * while the old reader is delivering a line. */
    mcp_reader_cleanup(&t->out_rd);
    mcp_reader_cleanup(&t->err_rd);
    mcp_reader_init(&t->out_rd, MCP_LINE_MAX);
    mcp_reader_init(&t->err_rd, STDERR_LINE_MAX);
    t->out_ev = event_new(t->evb, t->proc.out_fd, EV_READ | EV_PERSIST, mcp_stdio__on_readable, t);
    t->err_ev = event_new(t->evb, t->proc.err_fd, EV_READ | EV_PERSIST, mcp_stdio__on_stderr, t);
    t->in_ev = event_new(t->evb, t->proc.in_fd, EV_WRITE, mcp_stdio__on_writable, t);
    event_add(t->out_ev, NULL);
    event_add(t->err_ev, NULL);
    snprintf(t->base.peer, sizeof t->base.peer, "pid=%ld", (long)t->proc.pid);
    LOG(LOG_INFO, "mcp server started", "server=%s %s command=\"%s\"", t->base.name, t->base.peer,
        t->command);
    return 0;
}

/* Queues one line for the child's stdin. */
static int mcp_stdio__stdio_send(mcp_transport *tr, const char *msg, size_t len)
{
    mcp_stdio *t = (mcp_stdio *)tr;
    if (t->proc.in_fd < 0 || buf_append(&t->wbuf, msg, len) != 0) return -1;
    mcp_stdio__flush(t);
    return 0;
}

/*
 * Ends the connection: events and pipes closed, and a child still running
 * killed and handed to the reaper. Nothing of this connection calls back
 * afterwards.
 */
static void mcp_stdio__stdio_close(mcp_transport *tr)
{
    mcp_stdio *t = (mcp_stdio *)tr;
    mcp_stdio__close_events(t);
    if (t->proc.err_fd >= 0) mcp_stdio__read_stderr(t); /* its last words, e.g. a stack trace */
    mcp_proc_close(&t->proc);
    event_del(t->exit_ev);
    if (t->proc.pid > 0) {
        int status;
        if (!mcp_proc_poll(t->proc.pid, &status)) {
            mcp_proc_kill(t->proc.pid);
            mcp_stdio__reaper_add(t->reaper, t->proc.pid);
        }
    }
    t->proc.pid = 0;
    t->gen++;
    t->ended = false;
    buf_reset(&t->wbuf);
    t->base.peer[0] = '\0';
}

/* Shutdown: every child's stdin closed, a bounded wait, then SIGTERM and
 * SIGKILL, for the children and for those the reapers still wait for. */
static void mcp_stdio__stdio_stop_all(mcp_transport **ts, size_t n)
{
    size_t cap = n + 1, k = 0;
    for (size_t i = 0; i < n; i++) cap += ((mcp_stdio *)ts[i])->reaper->npids;
    pid_t *pids = xcalloc(cap, sizeof *pids);
    for (size_t i = 0; i < n; i++) {
        mcp_stdio *t = (mcp_stdio *)ts[i];
        mcp_stdio__close_events(t);
        mcp_proc_close_stdin(&t->proc);
        if (t->proc.pid > 0) pids[k++] = t->proc.pid;
    }
    /* Transports share reapers: each reaper's children are taken once. */
    for (size_t i = 0; i < n; i++) {
        mcp_stdio_reaper *r = ((mcp_stdio *)ts[i])->reaper;
        for (size_t j = 0; j < r->npids; j++) pids[k++] = r->pids[j];
        r->npids = 0;
    }
    mcp_proc_stop_all(pids, k, STOP_GRACE_MS, STOP_TERM_MS);
    for (size_t i = 0; i < n; i++) {
        mcp_stdio *t = (mcp_stdio *)ts[i];
        if (t->proc.err_fd >= 0) mcp_stdio__read_stderr(t);
        mcp_proc_close(&t->proc);
        t->proc.pid = 0;
    }
    free(pids);
}

static void mcp_stdio__stdio_free(mcp_transport *tr)
{
    mcp_stdio *t = (mcp_stdio *)tr;
    mcp_stdio__stdio_close(tr);
    event_free(t->exit_ev);
    mcp__log_summary(&t->err_limit, t->base.name, "stderr");
    event_free(t->err_summary_ev);
    buf_cleanup(&t->wbuf);
    mcp_reader_cleanup(&t->out_rd);
    mcp_reader_cleanup(&t->err_rd);
    mcp_proc_strv_free(t->envp);
    mcp_proc_strv_free(t->args);
    free(t->command);
    mcp_stdio_reaper_release(t->reaper);
    free(t);
}

static const mcp_transport_ops stdio_ops = {
    .start = mcp_stdio__stdio_start,
    .send = mcp_stdio__stdio_send,
    .close = mcp_stdio__stdio_close,
    .stop_all = mcp_stdio__stdio_stop_all,
    .free = mcp_stdio__stdio_free,
};

static const char *mcp_stdio__env_get(const char *name)
{
    return getenv(name);
}

mcp_transport *mcp_stdio_new(struct event_base *base, const mcp_server_config *cfg,
                             mcp_stdio_reaper *r)
{
    mcp_stdio *t = xcalloc(1, sizeof *t);
    t->base.ops = &stdio_ops;
    t->base.name = "";
    t->evb = base;
    t->command = xstrdup(cfg->command);
    size_t n = 0;
    while (cfg->args && cfg->args[n]) n++;
    t->args = xcalloc(n + 1, sizeof *t->args);
    for (size_t i = 0; i < n; i++) t->args[i] = xstrdup(cfg->args[i]);
    t->envp = mcp_proc_env(mcp_stdio__env_get, cfg->env);
    t->reaper = r;
    r->refs++;
    t->proc.pid = 0;
    t->proc.in_fd = t->proc.out_fd = t->proc.err_fd = -1;
    buf_init(&t->wbuf, WRITE_MAX);
    t->exit_ev = evtimer_new(base, mcp_stdio__on_exit_poll, t);
    t->err_summary_ev = evtimer_new(base, mcp_stdio__on_err_summary, t);
    log_limit_init(&t->err_limit, MCP_LOG_RATE, MCP_LOG_BURST, clock_mono_ms());
    return &t->base;
}
