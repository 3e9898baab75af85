/*
 * loadgen: the load generator of `make bench`. It holds many HTTP/1.1
 * connections on one libevent loop, reads their Server-Sent Events,
 * timestamps every event as it is read, checks that nothing was lost or
 * reordered, and measures chatplane against a direct call to the same
 * model (bench/mock_upstream). One invocation runs one scenario:
 *
 *   loadgen runs    runs through a mock model, first called directly, then
 *                   through chatplane (POST /api/sessions/{id}/runs with
 *                   Accept: text/event-stream), with the same pacing and the
 *                   same schedule: added time to first token and added gap
 *                   between tokens (through minus direct, per percentile),
 *                   streams with no loss and no stall, events per second,
 *                   chatplane's CPU per relayed token and per event, its RSS;
 *                   with --relay, the direct call once more through a plain
 *                   reverse proxy (nginx, started by bench/run-bench) as
 *                   the floor a relay that stores nothing reaches
 *   loadgen idle    thousands of subscribers on GET /api/sessions/{id}/events:
 *                   chatplane's RSS per open stream, then one run per session
 *                   that every subscriber must see to its end
 *   loadgen replay  a long session read from the start by a client that
 *                   drops halfway and reconnects with Last-Event-ID
 *
 * A stall is a gap between two tokens of one stream over twice the pacing
 * interval. The figures go to stdout as a table and, with --json FILE, as
 * one JSON object per line appended to FILE; with --stall-log FILE, each
 * stall as a line of FILE (lg_log_stall). The exit status is 0 only when
 * every stream got all its events in order and no connection failed: the
 * smoke test relies on it.
 *
 * CPU comes from the process's CPU clock (every thread, in nanoseconds),
 * RSS from /proc/PID/status (VmRSS), the load generator's own CPU from
 * getrusage. A phase in which the mock model or the load generator
 * used more than 85 % of a core is flagged: the figures then measure them,
 * not chatplane.
 */
/* memmem, strcasestr */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "core/sse.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"

#define LG_SSE_MAX        (1u << 20)
#define LG_BODY_MAX       (1u << 20)
#define LG_CONNECTING_MAX 256 /* idle subscribers connecting at once */
#define LG_BUSY_PCT       85.0

enum { LG_DIRECT, LG_THROUGH, LG_SUB, LG_REPLAY, LG_JSON };
enum { HS_STATUS, HS_HEADERS, HS_BODY, HS_DONE };
enum { CS_SIZE, CS_DATA, CS_CRLF, CS_TRAILER };

/* A growable array of samples, in microseconds. */
typedef struct lg_vec {
    int64_t *v;
    size_t n, cap;
} lg_vec;

typedef struct lg lg;

/* One HTTP exchange and what was read from it. */
typedef struct lg_stream {
    lg *g;
    int kind;
    size_t idx; /* run, subscriber or session index */
    struct bufferevent *bev;
    int hstate, cstate, status;
    bool chunked;
    int64_t clen, cleft; /* -1: not given */
    sse_parser sse;
    buf body;        /* LG_JSON */
    int64_t t0, now; /* start; time of the read being parsed */
    int64_t t_tok;   /* last token */
    int64_t t_first; /* first token */
    int64_t seq;     /* last event id */
    long tokens;     /* token events */
    uint64_t events; /* every event */
    bool open;       /* the stream started (retry: seen) */
    bool end_seen;   /* [DONE] or run_stopped */
    bool stalled;
    const char *fail; /* why it failed, NULL if it did not */
} lg_stream;

/* What one phase (direct or through) measured. */
typedef struct lg_phase {
    const char *name;
    lg_vec ttft, gaps;
    size_t streams, failed, stalled;
    uint64_t events, tokens;
    int64_t t_start, t_end;
    double server_cpu_s, mock_cpu_s, self_cpu_s;
    long rss_before_kib, rss_peak_kib, rss_after_kib;
    const char *first_fail;
} lg_phase;

struct lg {
    struct event_base *base;
    struct sockaddr_in server, mock, relay;
    const struct sockaddr_in *direct_to; /* the mock, or the relay in front of it */
    const char *server_host;             /* HOST:PORT, sent as Host */
    int server_pid, mock_pid, relay_pid;
    int measured_pid; /* whose CPU and RSS the phase records */
    bool have_relay;
    const char *label, *json_path, *mode;
    FILE *stall_log; /* --stall-log: a line per stall */
    /* runs */
    long concurrency, runs, tokens, ramp_ms;
    int64_t gap_us, first_us;
    bool no_direct;
    long pairs, pair_runs; /* --pairs N --pair-runs K: CPU of nginx and chatplane in turns */
    char **session_ids;
    size_t nsessions;
    /* idle */
    long subscribers;
    /* replay */
    const char *replay_session;
    long replay_events, repeat;
    int64_t timeout_s;
    /* the phase in progress */
    lg_phase *ph;
    int kind;
    size_t started, finished, target, opened;
    int64_t launch_t0;
    struct event *launcher, *sampler, *deadline;
    bool timed_out;
    lg_stream **streams; /* idle subscribers, kept open */
    size_t json_pending;
    bool json_break; /* leave the loop when the last JSON answer came */
};

static int64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void lg_die(const char *what, const char *why)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, why);
    exit(2);
}

/* ---- samples ---- */

static void lg_vec_push(lg_vec *v, int64_t x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 1024;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

static int lg_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile in ms of a sorted vector of µs; NAN when empty. */
static double lg_pct(const lg_vec *v, double q)
{
    if (v->n == 0) return NAN;
    size_t rank = (size_t)ceil(q * (double)v->n);
    if (rank < 1) rank = 1;
    if (rank > v->n) rank = v->n;
    return (double)v->v[rank - 1] / 1000.0;
}

/* ---- /proc ---- */

/* The CPU time of every thread of pid, in seconds; -1 if unknown. The
 * process's CPU clock counts in nanoseconds, where /proc/PID/stat counts
 * in clock ticks (10 ms): too coarse for a relay that spends a few
 * milliseconds on a whole scenario. */
static double lg_proc_cpu(int pid)
{
    if (pid <= 0) return -1;
    clockid_t id;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &id) != 0 || clock_gettime(id, &ts) != 0) return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* VmRSS of pid in KiB; -1 if unknown. */
static long lg_proc_rss(int pid)
{
    if (pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static double lg_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- streams ---- */

static void lg_stream_done(lg_stream *s);
static int lg_on_sse(void *ud, const sse_event *ev);

static void lg_fail(lg_stream *s, const char *why)
{
    if (!s->fail) s->fail = why;
}

static void lg_stream_free(lg_stream *s)
{
    if (s->bev) bufferevent_free(s->bev);
    sse_parser_cleanup(&s->sse);
    buf_cleanup(&s->body);
    free(s);
}

/* The number after "w" at p (the mock's token text " w<i>"), or -1. */
static long lg_token_index(const char *p)
{
    if (!p || p[0] != ' ' || p[1] != 'w') return -1;
    char *end = NULL;
    long i = strtol(p + 2, &end, 10);
    return end && *end == '"' ? i : -1;
}

/*
 * One line of --stall-log: the phase, the stream, the token's index, when
 * it came (CLOCK_MONOTONIC seconds, the clock of `perf ... -k
 * CLOCK_MONOTONIC`), the gap in ms, and how late it and the token before it
 * came against the stream's first token and the pacing (ms). A tick of many
 * streams late together, each on time before, is a pause of the whole path;
 * a stream that drifts is not (docs/benchmarks.md, fix 61).
 */
static void lg_log_stall(const lg *g, const lg_stream *s, long index, int64_t gap)
{
    int64_t pace = g->gap_us * 1000;
    double late = (double)(s->now - s->t_first - index * pace) / 1e6;
    double before = (double)(s->t_tok - s->t_first - (index - 1) * pace) / 1e6;
    fprintf(g->stall_log, "%s %p %ld %.6f %.3f %.3f %.3f\n", g->ph->name, (const void *)s, index,
            (double)s->now / 1e9, (double)gap / 1e6, late, before);
}

/* A token arrived: checks its place and records the time. */
static void lg_token(lg_stream *s, long index)
{
    lg *g = s->g;
    if (index != s->tokens) lg_fail(s, "a token was lost or out of order");
    if (s->tokens == 0) {
        lg_vec_push(&g->ph->ttft, (s->now - s->t0) / 1000);
        s->t_first = s->now;
    } else {
        int64_t gap = s->now - s->t_tok;
        lg_vec_push(&g->ph->gaps, gap / 1000);
        if (g->gap_us > 0 && gap > 2 * g->gap_us * 1000) {
            s->stalled = true;
            if (g->stall_log) lg_log_stall(g, s, index, gap);
        }
    }
    s->t_tok = s->now;
    s->tokens++;
}

/* One event of a stream, by kind. Returns non-zero to stop reading. */
static int lg_on_sse(void *ud, const sse_event *ev)
{
    lg_stream *s = ud;
    s->events++;
    if (s->kind == LG_DIRECT) {
        if (strcmp(ev->data, "[DONE]") == 0) {
            s->end_seen = true;
            return 0;
        }
        const char *c = strstr(ev->data, "\"delta\":{\"content\":\"");
        if (c) lg_token(s, lg_token_index(c + 20));
        return 0;
    }
    /* chatplane's streams: ids rise by exactly one. */
    char *end = NULL;
    long long id = strtoll(ev->id, &end, 10);
    if (!end || *end || id != s->seq + 1) lg_fail(s, "an event id was skipped or repeated");
    s->seq = id;
    if (s->kind == LG_THROUGH && strcmp(ev->event, "token") == 0) {
        const char *t = strstr(ev->data, "\"text\":\"");
        lg_token(s, lg_token_index(t ? t + 8 : NULL));
    } else if (strcmp(ev->event, "run_stopped") == 0) {
        s->end_seen = true;
        if (!strstr(ev->data, "\"reason\":\"completed\"")) lg_fail(s, "a run did not complete");
        if (s->kind == LG_SUB) s->g->finished++;
    }
    if (s->kind == LG_REPLAY && s->seq == s->g->replay_events) {
        s->end_seen = true;
        return 1;
    }
    if (s->kind == LG_REPLAY && s->g->opened == 0 && s->seq == s->g->replay_events / 2)
        return 1; /* the planned drop: lg_replay reconnects */
    return 0;
}

/* Body bytes of the response. */
static void lg_body(lg_stream *s, const char *data, size_t len)
{
    if (s->kind == LG_JSON) {
        buf_append(&s->body, data, len);
        return;
    }
    int rc = sse_parser_feed(&s->sse, data, len);
    if (rc == SSE_ERR_TOOBIG) lg_fail(s, "an event was too large");
    if (rc != 0) s->hstate = HS_DONE;
    if (s->kind == LG_SUB && !s->open && s->sse.retry_ms >= 0) {
        s->open = true;
        s->g->opened++;
    }
}

/* Parses one status or header line. */
static void lg_header_line(lg_stream *s, const char *line)
{
    if (s->hstate == HS_STATUS) {
        if (sscanf(line, "HTTP/1.%*d %d", &s->status) != 1) lg_fail(s, "bad status line");
        s->hstate = HS_HEADERS;
        return;
    }
    if (*line == '\0') {
        s->hstate = HS_BODY;
        s->cstate = CS_SIZE;
        s->cleft = s->clen;
        bool want = s->kind == LG_JSON ? (s->status == 200 || s->status == 201 || s->status == 202)
                                       : s->status == 200;
        if (!want) lg_fail(s, "unexpected HTTP status");
        return;
    }
    if (strncasecmp(line, "content-length:", 15) == 0) s->clen = strtoll(line + 15, NULL, 10);
    if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strcasestr(line, "chunked"))
        s->chunked = true;
}

/* Takes up to max body bytes from in. Returns the count taken. */
static size_t lg_take(lg_stream *s, struct evbuffer *in, size_t max)
{
    size_t n = evbuffer_get_length(in);
    if (n > max) n = max;
    if (n == 0) return 0;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    lg_body(s, p, n);
    evbuffer_drain(in, n);
    return n;
}

/* Reads what can be read: headers, then the body, chunked or not. */
static void lg_parse(lg_stream *s, struct evbuffer *in)
{
    while (s->hstate != HS_DONE && !s->fail) {
        if (s->hstate != HS_BODY || (s->chunked && s->cstate != CS_DATA)) {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line) return;
            if (s->hstate != HS_BODY) {
                lg_header_line(s, line);
            } else if (s->cstate == CS_SIZE) {
                s->cleft = strtoll(line, NULL, 16);
                s->cstate = s->cleft > 0 ? CS_DATA : CS_TRAILER;
            } else if (s->cstate == CS_CRLF) {
                s->cstate = CS_SIZE;
            } else if (*line == '\0') {
                s->hstate = HS_DONE;
            }
            free(line);
            continue;
        }
        size_t max = s->cleft >= 0 ? (size_t)s->cleft : SIZE_MAX;
        size_t got = lg_take(s, in, max);
        if (got == 0) return;
        if (s->cleft >= 0) s->cleft -= (int64_t)got;
        if (s->cleft == 0) {
            if (s->chunked)
                s->cstate = CS_CRLF;
            else
                s->hstate = HS_DONE;
        }
    }
}

static void lg_on_read(struct bufferevent *bev, void *arg)
{
    lg_stream *s = arg;
    s->now = lg_now();
    lg_parse(s, bufferevent_get_input(bev));
    if (s->fail || s->hstate == HS_DONE) lg_stream_done(s);
}

static void lg_on_event(struct bufferevent *bev, short what, void *arg)
{
    lg_stream *s = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    s->now = lg_now();
    if ((what & BEV_EVENT_EOF) && s->hstate == HS_BODY && !s->chunked && s->clen < 0) {
        s->hstate = HS_DONE; /* a body that ends with the connection */
    } else if (what & BEV_EVENT_ERROR) {
        lg_fail(s, "connection error");
    } else {
        lg_fail(s, "connection closed before the response ended");
    }
    lg_stream_done(s);
}

/* Opens a connection to addr and sends the request. */
static lg_stream *lg_open(lg *g, int kind, size_t idx, const struct sockaddr_in *addr,
                          const char *request, size_t len)
{
    lg_stream *s = xcalloc(1, sizeof *s);
    s->g = g;
    s->kind = kind;
    s->idx = idx;
    s->clen = -1;
    s->t0 = lg_now();
    sse_parser_init(&s->sse, LG_SSE_MAX, lg_on_sse, s);
    buf_init(&s->body, LG_BODY_MAX);
    s->bev = bufferevent_socket_new(g->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->bev, lg_on_read, NULL, lg_on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    bufferevent_write(s->bev, request, len);
    if (bufferevent_socket_connect(s->bev, (const struct sockaddr *)addr, sizeof *addr) != 0)
        lg_die("cannot connect", strerror(errno));
    return s;
}

/* ---- the phases of a runs scenario ---- */

static const char lg_model_body[] =
    "{\"model\":\"mock\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"bench\"}]}";

static void lg_start_run(lg *g, size_t i)
{
    char req[1024];
    int n;
    if (g->kind == LG_DIRECT) {
        n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\n"
                     "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof lg_model_body - 1, lg_model_body);
        lg_open(g, LG_DIRECT, i, g->direct_to, req, (size_t)n);
    } else {
        static const char body[] = "{\"message\":\"bench\"}";
        n = snprintf(req, sizeof req,
                     "POST /api/sessions/%s/runs HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     g->session_ids[i], g->server_host, sizeof body - 1, body);
        lg_open(g, LG_THROUGH, i, &g->server, req, (size_t)n);
    }
    g->started++;
}

/* Starts every run whose time has come: the first `concurrency` runs are
 * spread over ramp_ms; later ones start when one ends. */
static void lg_launch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg *g = arg;
    size_t first = (size_t)g->concurrency < g->target ? (size_t)g->concurrency : g->target;
    int64_t now = lg_now();
    while (g->started < first) {
        int64_t due = g->launch_t0 + (int64_t)g->started * g->ramp_ms * 1000000 / (int64_t)first;
        if (due > now) {
            int64_t wait = due - now;
            struct timeval tv = {(time_t)(wait / 1000000000),
                                 (suseconds_t)(wait % 1000000000 / 1000)};
            evtimer_add(g->launcher, &tv);
            return;
        }
        lg_start_run(g, g->started);
    }
}

/* Called once per stream, when it ended or failed. */
static void lg_stream_done(lg_stream *s)
{
    lg *g = s->g;
    lg_phase *ph = g->ph;
    if (s->kind == LG_SUB) {
        /* Subscribers stay until the scenario closes them; one that ends
         * early is a failure. */
        if (!s->fail) lg_fail(s, "a subscriber stream ended");
        if (!ph->first_fail) ph->first_fail = s->fail;
        ph->failed++;
        bufferevent_free(s->bev);
        s->bev = NULL;
        return;
    }
    if (s->kind == LG_JSON) {
        g->json_pending--;
        if (s->fail) lg_die("a request to chatplane failed", s->fail);
        json_error_t je;
        json_t *v = json_loadb(s->body.data, s->body.len, 0, &je);
        const char *id = json_string_value(json_object_get(v, "id"));
        if (!id) lg_die("chatplane answered without an id", s->body.data ? s->body.data : "");
        if (s->idx < g->nsessions && !g->session_ids[s->idx]) g->session_ids[s->idx] = xstrdup(id);
        json_decref(v);
        lg_stream_free(s);
        if (g->json_pending == 0 && g->json_break) event_base_loopbreak(g->base);
        return;
    }
    if (s->kind == LG_REPLAY) {
        event_base_loopbreak(g->base);
        return; /* lg_replay reads the stream's state and frees it */
    }
    if (!s->fail && !s->end_seen) lg_fail(s, "the stream ended without its last event");
    if (!s->fail && s->tokens != g->tokens) lg_fail(s, "a stream lacked tokens");
    ph->streams++;
    ph->events += s->events;
    ph->tokens += (uint64_t)s->tokens;
    if (s->fail) {
        ph->failed++;
        if (!ph->first_fail) ph->first_fail = s->fail;
    } else if (s->stalled) {
        ph->stalled++;
    }
    lg_stream_free(s);
    g->finished++;
    if (g->finished == g->target) {
        event_base_loopbreak(g->base);
        return;
    }
    if (g->started < g->target && g->started >= (size_t)g->concurrency) lg_start_run(g, g->started);
}

static void lg_sample(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg *g = arg;
    long rss = lg_proc_rss(g->measured_pid);
    if (rss > g->ph->rss_peak_kib) g->ph->rss_peak_kib = rss;
}

static void lg_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg *g = arg;
    g->timed_out = true;
    event_base_loopbreak(g->base);
}

/* Runs the loop until a phase ends or the deadline passes, sampling the
 * server's RSS and measuring everyone's CPU around it. */
static void lg_measure(lg *g, lg_phase *ph, void (*start)(lg *g))
{
    g->ph = ph;
    ph->rss_before_kib = ph->rss_peak_kib = lg_proc_rss(g->measured_pid);
    double s0 = lg_proc_cpu(g->measured_pid), m0 = lg_proc_cpu(g->mock_pid), l0 = lg_self_cpu();
    struct timeval every = {0, 100000};
    event_add(g->sampler, &every);
    struct timeval dl = {(time_t)g->timeout_s, 0};
    evtimer_add(g->deadline, &dl);
    ph->t_start = lg_now();
    start(g);
    event_base_dispatch(g->base);
    ph->t_end = lg_now();
    ph->server_cpu_s = lg_proc_cpu(g->measured_pid) - s0;
    ph->mock_cpu_s = lg_proc_cpu(g->mock_pid) - m0;
    ph->self_cpu_s = lg_self_cpu() - l0;
    event_del(g->sampler);
    event_del(g->deadline);
    if (g->timed_out) {
        ph->failed++;
        if (!ph->first_fail) ph->first_fail = "the phase did not end before --timeout-s";
    }
    if (ph->ttft.n) qsort(ph->ttft.v, ph->ttft.n, sizeof *ph->ttft.v, lg_cmp);
    if (ph->gaps.n) qsort(ph->gaps.v, ph->gaps.n, sizeof *ph->gaps.v, lg_cmp);
}

static void lg_begin_runs(lg *g)
{
    g->started = g->finished = 0;
    g->target = (size_t)g->runs;
    g->launch_t0 = lg_now();
    lg_launch(-1, 0, g);
}

/* Creates n sessions, 32 requests at a time. */
static void lg_create_sessions(lg *g, size_t n)
{
    g->session_ids = xcalloc(n, sizeof *g->session_ids);
    g->nsessions = n;
    char req[256];
    int len = snprintf(req, sizeof req,
                       "POST /api/sessions HTTP/1.1\r\nHost: %s\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n",
                       g->server_host);
    g->json_break = true;
    for (size_t done = 0; done < n;) {
        size_t batch = n - done < 32 ? n - done : 32;
        g->json_pending = batch;
        for (size_t i = 0; i < batch; i++)
            lg_open(g, LG_JSON, done + i, &g->server, req, (size_t)len);
        event_base_dispatch(g->base);
        done += batch;
    }
    g->json_break = false;
}

/* ---- reporting ---- */

static json_t *lg_pcts_json(const lg_vec *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)v->n));
    json_object_set_new(o, "p50", json_real(lg_pct(v, 0.50)));
    json_object_set_new(o, "p99", json_real(lg_pct(v, 0.99)));
    json_object_set_new(o, "p999", json_real(lg_pct(v, 0.999)));
    json_object_set_new(o, "max", json_real(lg_pct(v, 1.0)));
    return o;
}

static void lg_phase_free(lg_phase *ph)
{
    free(ph->ttft.v);
    free(ph->gaps.v);
}

static double lg_seconds(const lg_phase *ph)
{
    return (double)(ph->t_end - ph->t_start) / 1e9;
}

static json_t *lg_phase_json(const lg_phase *ph)
{
    double secs = lg_seconds(ph);
    json_t *o = json_object();
    json_object_set_new(o, "streams", json_integer((json_int_t)ph->streams));
    json_object_set_new(o, "failed", json_integer((json_int_t)ph->failed));
    json_object_set_new(o, "stalled", json_integer((json_int_t)ph->stalled));
    json_object_set_new(o, "ttft_ms", lg_pcts_json(&ph->ttft));
    json_object_set_new(o, "gap_ms", lg_pcts_json(&ph->gaps));
    json_object_set_new(o, "events", json_integer((json_int_t)ph->events));
    json_object_set_new(o, "tokens", json_integer((json_int_t)ph->tokens));
    json_object_set_new(o, "seconds", json_real(secs));
    json_object_set_new(o, "events_per_s", json_real((double)ph->events / secs));
    json_object_set_new(o, "server_cpu_s", json_real(ph->server_cpu_s));
    json_object_set_new(o, "mock_cpu_pct", json_real(100.0 * ph->mock_cpu_s / secs));
    json_object_set_new(o, "loadgen_cpu_pct", json_real(100.0 * ph->self_cpu_s / secs));
    json_object_set_new(o, "rss_before_kib", json_integer(ph->rss_before_kib));
    json_object_set_new(o, "rss_peak_kib", json_integer(ph->rss_peak_kib));
    json_object_set_new(o, "rss_after_kib", json_integer(ph->rss_after_kib));
    if (ph->first_fail) json_object_set_new(o, "first_failure", json_string(ph->first_fail));
    return o;
}

/* The 1-minute load average: the conditions a scenario ran in. */
static double lg_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1) l = -1;
    if (f) fclose(f);
    return l;
}

static void lg_write_json(lg *g, json_t *o)
{
    json_object_set_new(o, "load_average", json_real(lg_loadavg()));
    if (g->json_path) {
        FILE *f = fopen(g->json_path, "a");
        if (!f) lg_die(g->json_path, strerror(errno));
        json_dumpf(o, f, JSON_COMPACT);
        fputc('\n', f);
        fclose(f);
    }
    json_decref(o);
}

static bool lg_busy(const lg_phase *ph, double cpu_s)
{
    return 100.0 * cpu_s / lg_seconds(ph) > LG_BUSY_PCT;
}

static void lg_print_phase(const lg_phase *ph)
{
    double secs = lg_seconds(ph);
    printf("  %-8s %5zu streams %4zu failed %4zu stalled | ttft ms p50 %7.3f p99 %7.3f p99.9 "
           "%7.3f | gap ms p50 %6.3f p99 %6.3f p99.9 %6.3f max %7.3f | %8.0f ev/s | mock %3.0f%% "
           "loadgen %3.0f%%%s\n",
           ph->name, ph->streams, ph->failed, ph->stalled, lg_pct(&ph->ttft, .5),
           lg_pct(&ph->ttft, .99), lg_pct(&ph->ttft, .999), lg_pct(&ph->gaps, .5),
           lg_pct(&ph->gaps, .99), lg_pct(&ph->gaps, .999), lg_pct(&ph->gaps, 1.0),
           (double)ph->events / secs, 100 * ph->mock_cpu_s / secs, 100 * ph->self_cpu_s / secs,
           lg_busy(ph, ph->mock_cpu_s) || lg_busy(ph, ph->self_cpu_s)
               ? "  (BOTTLENECK: not chatplane)"
               : "");
    if (ph->first_fail) printf("           first failure: %s\n", ph->first_fail);
}

/* ---- scenarios ---- */

/* Waits ms with the loop running, so closes are processed. */
static void lg_settle(lg *g, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(g->base, &tv);
    event_base_dispatch(g->base);
}

/* The added percentile q of a phase over the direct call, in ms. */
static double lg_added(const lg_vec *through, const lg_vec *direct, double q)
{
    return lg_pct(through, q) - lg_pct(direct, q);
}

static json_t *lg_added_json(const lg_phase *ph, const lg_phase *direct)
{
    json_t *add = json_object();
    json_t *t = json_object(), *gp = json_object();
    json_object_set_new(t, "p50", json_real(lg_added(&ph->ttft, &direct->ttft, .5)));
    json_object_set_new(t, "p99", json_real(lg_added(&ph->ttft, &direct->ttft, .99)));
    json_object_set_new(t, "p999", json_real(lg_added(&ph->ttft, &direct->ttft, .999)));
    json_object_set_new(gp, "p50", json_real(lg_added(&ph->gaps, &direct->gaps, .5)));
    json_object_set_new(gp, "p99", json_real(lg_added(&ph->gaps, &direct->gaps, .99)));
    json_object_set_new(gp, "p999", json_real(lg_added(&ph->gaps, &direct->gaps, .999)));
    json_object_set_new(add, "ttft_ms", t);
    json_object_set_new(add, "gap_ms", gp);
    /* The share of the direct call's token rate that came through: the
     * same tokens, so the inverse ratio of the phases' lengths. */
    json_object_set_new(add, "rate_of_direct", json_real(lg_seconds(direct) / lg_seconds(ph)));
    return add;
}

static void lg_print_added(const char *who, const lg_phase *ph, const lg_phase *direct)
{
    printf("  added %-7s ttft ms p50 %7.3f p99 %7.3f p99.9 %7.3f | gap ms p50 %6.3f p99 %6.3f "
           "p99.9 %6.3f | %5.1f %% of the direct rate\n",
           who, lg_added(&ph->ttft, &direct->ttft, .5), lg_added(&ph->ttft, &direct->ttft, .99),
           lg_added(&ph->ttft, &direct->ttft, .999), lg_added(&ph->gaps, &direct->gaps, .5),
           lg_added(&ph->gaps, &direct->gaps, .99), lg_added(&ph->gaps, &direct->gaps, .999),
           100.0 * lg_seconds(direct) / lg_seconds(ph));
}

static double lg_cpu_per(const lg_phase *ph, uint64_t n)
{
    return n ? ph->server_cpu_s * 1e6 / (double)n : NAN;
}

static double at_num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* The CPU per token of one block of k runs, one at a time, through the
 * relay (nginx) or through chatplane, each of the latter on a session made
 * for it; -1 when a run failed. */
static double lg_pair_block(lg *g, bool via_relay, long k)
{
    lg_phase ph = {.name = via_relay ? "relay" : "through"};
    long runs = g->runs;
    g->runs = k;
    if (via_relay) {
        g->kind = LG_DIRECT;
        g->direct_to = &g->relay;
        g->measured_pid = g->relay_pid;
    } else {
        for (size_t i = 0; i < g->nsessions; i++) free(g->session_ids[i]);
        free(g->session_ids);
        g->measured_pid = g->server_pid;
        lg_create_sessions(g, (size_t)k);
        lg_settle(g, 300);
        g->kind = LG_THROUGH;
    }
    lg_measure(g, &ph, lg_begin_runs);
    lg_settle(g, 200);
    g->runs = runs;
    bool ok = !g->timed_out && ph.failed == 0 && ph.streams == (size_t)k && ph.tokens > 0;
    double per = ok ? ph.server_cpu_s * 1e6 / (double)ph.tokens : -1;
    lg_phase_free(&ph);
    return per;
}

static int lg_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*
 * The CPU per token of nginx and of chatplane measured in turns: pairs
 * blocks of pair_runs runs each, one at a time, nginx first in even pairs
 * and chatplane first in odd ones. This machine's CPU time per unit of
 * work moves by a factor of two or more over seconds to minutes (other
 * guests of its host); measured minutes apart, in phases of their own, the
 * two figures can each land in a slow stretch or a fast one, while a pair
 * of blocks a second apart shares it. Returns the JSON figures, or NULL
 * when a run failed.
 */
static json_t *lg_pairs(lg *g)
{
    size_t n = (size_t)g->pairs;
    double *ratio = xcalloc(n, sizeof *ratio);
    double relay_sum = 0, through_sum = 0, relay_min = 0, through_min = 0;
    json_t *rb = json_array(), *tb = json_array();
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        double r, t;
        if (i % 2 == 0) {
            r = lg_pair_block(g, true, g->pair_runs);
            t = lg_pair_block(g, false, g->pair_runs);
        } else {
            t = lg_pair_block(g, false, g->pair_runs);
            r = lg_pair_block(g, true, g->pair_runs);
        }
        ok = r > 0 && t > 0;
        ratio[i] = ok ? t / r : 0;
        relay_sum += r;
        through_sum += t;
        if (i == 0 || r < relay_min) relay_min = r;
        if (i == 0 || t < through_min) through_min = t;
        json_array_append_new(rb, json_real(r));
        json_array_append_new(tb, json_real(t));
    }
    json_t *o = NULL;
    if (ok) {
        qsort(ratio, n, sizeof *ratio, lg_cmp_double);
        double med = n % 2 ? ratio[n / 2] : (ratio[n / 2 - 1] + ratio[n / 2]) / 2;
        o = json_object();
        json_object_set_new(o, "pairs", json_integer(g->pairs));
        json_object_set_new(o, "runs_per_block", json_integer(g->pair_runs));
        json_object_set_new(o, "ratio", json_real(med));
        json_object_set_new(o, "ratio_min", json_real(ratio[0]));
        json_object_set_new(o, "ratio_max", json_real(ratio[n - 1]));
        json_object_set_new(o, "ratio_quietest", json_real(through_min / relay_min));
        json_object_set_new(o, "server_cpu_us_per_token", json_real(through_sum / (double)n));
        json_object_set_new(o, "relay_cpu_us_per_token", json_real(relay_sum / (double)n));
        json_object_set_new(o, "server_cpu_us_per_token_min", json_real(through_min));
        json_object_set_new(o, "relay_cpu_us_per_token_min", json_real(relay_min));
        json_object_set_new(o, "server_blocks", json_incref(tb));
        json_object_set_new(o, "relay_blocks", json_incref(rb));
    }
    json_decref(rb);
    json_decref(tb);
    free(ratio);
    return o;
}

static int lg_runs(lg *g)
{
    lg_phase direct = {.name = "direct"}, relay = {.name = "relay"}, through = {.name = "through"};
    if (!g->no_direct) {
        g->kind = LG_DIRECT;
        g->direct_to = &g->mock;
        g->measured_pid = g->server_pid;
        lg_measure(g, &direct, lg_begin_runs);
        lg_settle(g, 200);
    }
    if (g->have_relay) {
        g->kind = LG_DIRECT;
        g->direct_to = &g->relay;
        g->measured_pid = g->relay_pid;
        lg_measure(g, &relay, lg_begin_runs);
        lg_settle(g, 200);
        relay.rss_after_kib = lg_proc_rss(g->relay_pid);
    }
    g->measured_pid = g->server_pid;
    lg_create_sessions(g, (size_t)g->runs);
    lg_settle(g, 300);
    g->kind = LG_THROUGH;
    lg_measure(g, &through, lg_begin_runs);
    lg_settle(g, 1000);
    through.rss_after_kib = lg_proc_rss(g->server_pid);
    /* Before anything is printed, so that the turns' figures follow the
     * phases'. */
    bool pairs_ok = true;
    json_t *paired = NULL;
    if (g->pairs > 0 && g->have_relay) {
        paired = lg_pairs(g);
        pairs_ok = paired != NULL;
    }

    double secs = lg_seconds(&through);
    double cpu_tok = lg_cpu_per(&through, through.tokens);
    double cpu_ev = lg_cpu_per(&through, through.events);
    double relay_tok = lg_cpu_per(&relay, relay.tokens);
    double rss_slope = (double)(through.rss_peak_kib - through.rss_before_kib) /
                       (double)(g->concurrency < g->runs ? g->concurrency : g->runs);

    printf("%s: %ld runs, %ld at a time, %ld tokens each, first token after %.0f ms, then one "
           "every %.3f ms\n",
           g->label, g->runs, g->concurrency, g->tokens, (double)g->first_us / 1000,
           (double)g->gap_us / 1000);
    if (!g->no_direct) lg_print_phase(&direct);
    if (g->have_relay) lg_print_phase(&relay);
    lg_print_phase(&through);
    if (!g->no_direct && g->have_relay) lg_print_added("relay", &relay, &direct);
    if (!g->no_direct) lg_print_added("through", &through, &direct);
    printf("  server   %.2f CPU-us per token, %.2f per event (%.2f s CPU in %.2f s) | RSS KiB idle "
           "%ld peak %ld after %ld (%.1f KiB per concurrent run)\n",
           cpu_tok, cpu_ev, through.server_cpu_s, secs, through.rss_before_kib,
           through.rss_peak_kib, through.rss_after_kib, rss_slope);
    if (g->have_relay)
        printf(
            "  relay    %.2f CPU-us per token (%.2f s CPU) | chatplane uses %.2f times as much\n",
            relay_tok, relay.server_cpu_s, cpu_tok / relay_tok);
    if (paired)
        printf("  in turns %ld pairs of %ld runs, nginx and chatplane: chatplane uses %.2f times "
               "as much CPU per token (median of the pairs, %.2f .. %.2f), %.2f in the quietest "
               "blocks (%.2f and %.2f CPU-us per token)\n",
               g->pairs, g->pair_runs, at_num(paired, "ratio"), at_num(paired, "ratio_min"),
               at_num(paired, "ratio_max"), at_num(paired, "ratio_quietest"),
               at_num(paired, "server_cpu_us_per_token_min"),
               at_num(paired, "relay_cpu_us_per_token_min"));
    else if (!pairs_ok)
        printf("  in turns: a run failed, so there is no figure\n");

    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(g->label));
    json_object_set_new(o, "kind", json_string("runs"));
    json_object_set_new(o, "runs", json_integer(g->runs));
    json_object_set_new(o, "concurrency", json_integer(g->concurrency));
    json_object_set_new(o, "tokens", json_integer(g->tokens));
    json_object_set_new(o, "first_ms", json_real((double)g->first_us / 1000));
    json_object_set_new(o, "gap_ms", json_real((double)g->gap_us / 1000));
    if (!g->no_direct) json_object_set_new(o, "direct", lg_phase_json(&direct));
    if (g->have_relay) json_object_set_new(o, "relay", lg_phase_json(&relay));
    json_object_set_new(o, "through", lg_phase_json(&through));
    if (!g->no_direct) json_object_set_new(o, "added", lg_added_json(&through, &direct));
    if (!g->no_direct && g->have_relay)
        json_object_set_new(o, "relay_added", lg_added_json(&relay, &direct));
    json_object_set_new(o, "server_cpu_us_per_token", json_real(cpu_tok));
    json_object_set_new(o, "server_cpu_us_per_event", json_real(cpu_ev));
    if (paired) json_object_set_new(o, "paired", paired);
    if (g->have_relay) {
        json_object_set_new(o, "relay_cpu_us_per_token", json_real(relay_tok));
        json_object_set_new(o, "cpu_per_token_vs_relay", json_real(cpu_tok / relay_tok));
    }
    json_object_set_new(o, "rss_kib_per_concurrent_run", json_real(rss_slope));
    bool ok = direct.failed == 0 && through.failed == 0 && relay.failed == 0 &&
              through.streams == (size_t)g->runs &&
              (g->no_direct || direct.streams == (size_t)g->runs) &&
              (!g->have_relay || relay.streams == (size_t)g->runs) && pairs_ok;
    json_object_set_new(o, "ok", json_boolean(ok));
    lg_write_json(g, o);
    lg_phase_free(&direct);
    lg_phase_free(&relay);
    lg_phase_free(&through);
    return ok ? 0 : 1;
}

/* Opens idle subscribers while fewer than LG_CONNECTING_MAX are still
 * waiting for their stream to start. */
static void lg_open_subs(lg *g)
{
    while (g->started < (size_t)g->subscribers && g->started - g->opened < LG_CONNECTING_MAX) {
        size_t i = g->started++;
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /api/sessions/%s/events HTTP/1.1\r\nHost: %s\r\n"
                         "Accept: text/event-stream\r\n\r\n",
                         g->session_ids[i % g->nsessions], g->server_host);
        g->streams[i] = lg_open(g, LG_SUB, i, &g->server, req, (size_t)n);
    }
}

static void lg_sub_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg *g = arg;
    if (g->opened >= (size_t)g->subscribers || g->ph->failed) {
        event_base_loopbreak(g->base);
        return;
    }
    lg_open_subs(g);
}

static void lg_begin_subs(lg *g)
{
    g->started = g->opened = 0;
    lg_open_subs(g);
}

/* Starts one run per session (202, not streamed) and waits until every
 * subscriber saw its run_stopped. */
static void lg_begin_fanout(lg *g)
{
    g->finished = 0;
    static const char body[] = "{\"message\":\"bench\"}";
    for (size_t i = 0; i < g->nsessions; i++) {
        char req[512];
        int n = snprintf(req, sizeof req,
                         "POST /api/sessions/%s/runs HTTP/1.1\r\nHost: %s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         g->session_ids[i], g->server_host, sizeof body - 1, body);
        g->json_pending++;
        lg_open(g, LG_JSON, g->nsessions, &g->server, req, (size_t)n);
    }
}

static void lg_fanout_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg *g = arg;
    if (g->finished >= (size_t)g->subscribers || g->ph->failed) event_base_loopbreak(g->base);
}

static int lg_idle(lg *g)
{
    size_t nsess = g->nsessions;
    g->nsessions = 0;
    lg_create_sessions(g, nsess);
    lg_settle(g, 500);
    g->streams = xcalloc((size_t)g->subscribers, sizeof *g->streams);

    /* A tick watches for the end of each phase: streams never end them. */
    lg_phase open = {.name = "open"}, fan = {.name = "fanout"};
    struct event *tick = event_new(g->base, -1, EV_PERSIST, lg_sub_tick, g);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);
    lg_measure(g, &open, lg_begin_subs);
    event_free(tick);
    lg_settle(g, 1000);
    long rss_open = lg_proc_rss(g->server_pid);
    double per_sub = (double)(rss_open - open.rss_before_kib) / (double)g->subscribers;

    tick = event_new(g->base, -1, EV_PERSIST, lg_fanout_tick, g);
    event_add(tick, &tv);
    lg_measure(g, &fan, lg_begin_fanout);
    event_free(tick);
    uint64_t delivered = 0;
    size_t saw_end = 0;
    for (long i = 0; i < g->subscribers; i++) {
        lg_stream *s = g->streams[i];
        if (!s) continue; /* never opened: the open phase failed and says so */
        delivered += s->events;
        if (s->end_seen) saw_end++;
        if (s->fail && !fan.first_fail) fan.first_fail = s->fail;
        if (s->fail) fan.failed++;
    }
    fan.events = delivered;
    for (long i = 0; i < g->subscribers; i++)
        if (g->streams[i]) lg_stream_free(g->streams[i]);
    lg_settle(g, 1000);
    long rss_after = lg_proc_rss(g->server_pid);

    printf("%s: %ld subscribers on %zu sessions\n", g->label, g->subscribers, g->nsessions);
    printf("  open     %zu of %ld open in %.2f s | RSS KiB idle %ld, open %ld, after close %ld | "
           "%.2f KiB per open stream\n",
           g->opened, g->subscribers, lg_seconds(&open), open.rss_before_kib, rss_open, rss_after,
           per_sub);
    double fsecs = lg_seconds(&fan);
    printf("  fanout   one run per session: %zu of %ld subscribers saw it end, %" PRIu64
           " events delivered in %.2f s (%.0f ev/s), %.2f CPU-us per delivered event\n",
           saw_end, g->subscribers, delivered, fsecs, (double)delivered / fsecs,
           delivered ? fan.server_cpu_s * 1e6 / (double)delivered : NAN);
    if (open.first_fail) printf("           first failure: %s\n", open.first_fail);
    if (fan.first_fail) printf("           first failure: %s\n", fan.first_fail);

    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(g->label));
    json_object_set_new(o, "kind", json_string("idle"));
    json_object_set_new(o, "subscribers", json_integer(g->subscribers));
    json_object_set_new(o, "sessions", json_integer((json_int_t)g->nsessions));
    json_object_set_new(o, "opened", json_integer((json_int_t)g->opened));
    json_object_set_new(o, "open_seconds", json_real(lg_seconds(&open)));
    json_object_set_new(o, "rss_idle_kib", json_integer(open.rss_before_kib));
    json_object_set_new(o, "rss_open_kib", json_integer(rss_open));
    json_object_set_new(o, "rss_after_close_kib", json_integer(rss_after));
    json_object_set_new(o, "rss_kib_per_stream", json_real(per_sub));
    json_object_set_new(o, "fanout_saw_end", json_integer((json_int_t)saw_end));
    json_object_set_new(o, "fanout_events", json_integer((json_int_t)delivered));
    json_object_set_new(o, "fanout_seconds", json_real(fsecs));
    json_object_set_new(o, "fanout_cpu_us_per_event",
                        json_real(delivered ? fan.server_cpu_s * 1e6 / (double)delivered : NAN));
    bool ok = open.failed == 0 && fan.failed == 0 && g->opened == (size_t)g->subscribers &&
              saw_end == (size_t)g->subscribers;
    json_object_set_new(o, "ok", json_boolean(ok));
    lg_write_json(g, o);
    lg_phase_free(&open);
    lg_phase_free(&fan);
    return ok ? 0 : 1;
}

/* Reads the session from after (with Last-Event-ID when resuming) until
 * the stream stops; returns the stream for its state. */
static lg_stream *lg_replay_read(lg *g, int64_t after)
{
    char req[512];
    int n;
    if (after > 0)
        n = snprintf(req, sizeof req,
                     "GET /api/sessions/%s/events HTTP/1.1\r\nHost: %s\r\n"
                     "Accept: text/event-stream\r\nLast-Event-ID: %" PRId64 "\r\n\r\n",
                     g->replay_session, g->server_host, after);
    else
        n = snprintf(req, sizeof req,
                     "GET /api/sessions/%s/events?after=0 HTTP/1.1\r\nHost: %s\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     g->replay_session, g->server_host);
    lg_stream *s = lg_open(g, LG_REPLAY, 0, &g->server, req, (size_t)n);
    s->seq = after;
    event_base_dispatch(g->base);
    return s;
}

static int lg_replay(lg *g)
{
    lg_vec rates = {0};
    bool ok = true;
    const char *why = NULL;
    double cpu_total = 0;
    struct timeval dl = {(time_t)g->timeout_s, 0};
    evtimer_add(g->deadline, &dl);
    for (long r = 0; r < g->repeat && ok; r++) {
        lg_phase ph = {.name = "replay"};
        g->ph = &ph;
        double c0 = lg_proc_cpu(g->server_pid);
        int64_t t0 = lg_now();
        g->opened = 0; /* the first connection drops halfway */
        lg_stream *a = lg_replay_read(g, 0);
        int64_t half = a->seq;
        if (a->fail || half != g->replay_events / 2) {
            ok = false;
            why = a->fail ? a->fail : "the first connection ended early";
        }
        lg_stream_free(a);
        g->opened = 1;
        lg_stream *b = ok ? lg_replay_read(g, half) : NULL;
        if (b && (b->fail || b->seq != g->replay_events)) {
            ok = false;
            why = b->fail ? b->fail : "the stream ended before the last event";
        }
        int64_t t1 = lg_now();
        if (b) lg_stream_free(b);
        if (g->timed_out) {
            ok = false;
            why = "timed out";
        }
        cpu_total += lg_proc_cpu(g->server_pid) - c0;
        /* Rates kept as events per second, in the vector's integer units. */
        lg_vec_push(&rates, (int64_t)((double)g->replay_events / ((double)(t1 - t0) / 1e9)));
    }
    if (rates.n) qsort(rates.v, rates.n, sizeof *rates.v, lg_cmp);
    int64_t median = rates.n ? rates.v[(rates.n - 1) / 2] : 0;
    int64_t best = rates.n ? rates.v[rates.n - 1] : 0;
    double cpu_ev = cpu_total * 1e6 / ((double)g->replay_events * (double)rates.n);
    printf("%s: %ld events replayed from after=0, reconnecting with Last-Event-ID at %ld, %zu "
           "times\n",
           g->label, g->replay_events, g->replay_events / 2, rates.n);
    printf("  replay   %s | median %" PRId64 " ev/s, best %" PRId64 " ev/s | %.2f server CPU-us "
           "per event%s%s\n",
           ok ? "every event once, in order" : "FAILED", median, best, cpu_ev, why ? " | " : "",
           why ? why : "");
    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(g->label));
    json_object_set_new(o, "kind", json_string("replay"));
    json_object_set_new(o, "events", json_integer(g->replay_events));
    json_object_set_new(o, "repeat", json_integer((json_int_t)rates.n));
    json_object_set_new(o, "events_per_s_median", json_integer(median));
    json_object_set_new(o, "events_per_s_best", json_integer(best));
    json_object_set_new(o, "server_cpu_us_per_event", json_real(cpu_ev));
    if (why) json_object_set_new(o, "first_failure", json_string(why));
    json_object_set_new(o, "ok", json_boolean(ok));
    lg_write_json(g, o);
    free(rates.v);
    return ok ? 0 : 1;
}

/* ---- options ---- */

static void lg_usage(void)
{
    fprintf(
        stderr,
        "usage: loadgen runs --server HOST:PORT --mock HOST:PORT [--server-pid P] [--mock-pid P]\n"
        "                    [--concurrency C] [--runs K] [--tokens T] [--first-ms F] [--gap-us "
        "G]\n"
        "                    [--ramp-ms R] [--no-direct] [--relay HOST:PORT --relay-pid P]\n"
        "                    [--pairs N [--pair-runs K]]\n"
        "       loadgen idle --server HOST:PORT --server-pid P [--subscribers S] [--sessions M]\n"
        "       loadgen replay --server HOST:PORT --session ID --events N [--repeat R]\n"
        "       common: [--label NAME] [--json FILE] [--stall-log FILE] [--timeout-s S]\n");
    exit(2);
}

static void lg_addr(const char *hostport, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) lg_usage();
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) lg_usage();
}

static long lg_num(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) lg_usage();
    char *end = NULL;
    long v = strtol(argv[++*i], &end, 10);
    if (!end || *end || v < 0) lg_usage();
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) lg_usage();
    lg g = {.mode = argv[1],
            .label = argv[1],
            .concurrency = 1,
            .runs = 1,
            .tokens = 100,
            .gap_us = 10000,
            .first_us = 20000,
            .ramp_ms = -1,
            .pair_runs = 10,
            .subscribers = 10000,
            .nsessions = 100,
            .replay_events = 100000,
            .repeat = 3,
            .timeout_s = 300};
    bool have_server = false, have_mock = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--server") == 0 && i + 1 < argc) {
            g.server_host = argv[++i];
            lg_addr(g.server_host, &g.server);
            have_server = true;
        } else if (strcmp(a, "--mock") == 0 && i + 1 < argc) {
            lg_addr(argv[++i], &g.mock);
            have_mock = true;
        } else if (strcmp(a, "--server-pid") == 0) {
            g.server_pid = (int)lg_num(argc, argv, &i);
        } else if (strcmp(a, "--relay") == 0 && i + 1 < argc) {
            lg_addr(argv[++i], &g.relay);
            g.have_relay = true;
        } else if (strcmp(a, "--relay-pid") == 0) {
            g.relay_pid = (int)lg_num(argc, argv, &i);
        } else if (strcmp(a, "--mock-pid") == 0) {
            g.mock_pid = (int)lg_num(argc, argv, &i);
        } else if (strcmp(a, "--concurrency") == 0) {
            g.concurrency = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--runs") == 0) {
            g.runs = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--tokens") == 0) {
            g.tokens = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--first-ms") == 0) {
            g.first_us = lg_num(argc, argv, &i) * 1000;
        } else if (strcmp(a, "--gap-us") == 0) {
            g.gap_us = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--ramp-ms") == 0) {
            g.ramp_ms = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--no-direct") == 0) {
            g.no_direct = true;
        } else if (strcmp(a, "--pairs") == 0) {
            g.pairs = lg_num(argc, argv, &i);
            if (g.pairs > 1000) lg_usage();
        } else if (strcmp(a, "--pair-runs") == 0) {
            g.pair_runs = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--subscribers") == 0) {
            g.subscribers = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--sessions") == 0) {
            g.nsessions = (size_t)lg_num(argc, argv, &i);
        } else if (strcmp(a, "--session") == 0 && i + 1 < argc) {
            g.replay_session = argv[++i];
        } else if (strcmp(a, "--events") == 0) {
            g.replay_events = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--repeat") == 0) {
            g.repeat = lg_num(argc, argv, &i);
        } else if (strcmp(a, "--label") == 0 && i + 1 < argc) {
            g.label = argv[++i];
        } else if (strcmp(a, "--json") == 0 && i + 1 < argc) {
            g.json_path = argv[++i];
        } else if (strcmp(a, "--stall-log") == 0 && i + 1 < argc) {
            g.stall_log = fopen(argv[++i], "a");
            if (!g.stall_log) lg_die(argv[i], strerror(errno));
        } else if (strcmp(a, "--timeout-s") == 0) {
            g.timeout_s = lg_num(argc, argv, &i);
        } else {
            lg_usage();
        }
    }
    if (!have_server) lg_usage();
    g.measured_pid = g.server_pid;
    g.direct_to = &g.mock;
    if (g.ramp_ms < 0) g.ramp_ms = g.concurrency > 1 ? g.concurrency : 0;

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    g.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    g.launcher = evtimer_new(g.base, lg_launch, &g);
    g.sampler = event_new(g.base, -1, EV_PERSIST, lg_sample, &g);
    g.deadline = evtimer_new(g.base, lg_on_deadline, &g);
    fflush(stdout);

    int rc;
    if (strcmp(g.mode, "runs") == 0) {
        if (!have_mock) lg_usage();
        rc = lg_runs(&g);
    } else if (strcmp(g.mode, "idle") == 0) {
        if ((size_t)g.subscribers + 64 > (size_t)rl.rlim_max)
            lg_die("idle", "the open file limit is lower than --subscribers");
        rc = lg_idle(&g);
    } else if (strcmp(g.mode, "replay") == 0) {
        if (!g.replay_session) lg_usage();
        rc = lg_replay(&g);
    } else {
        lg_usage();
    }
    fflush(stdout);
    for (size_t i = 0; i < g.nsessions && g.session_ids; i++) free(g.session_ids[i]);
    free(g.session_ids);
    free(g.streams);
    if (g.stall_log) fclose(g.stall_log);
    event_free(g.launcher);
    event_free(g.sampler);
    event_free(g.deadline);
    event_base_free(g.base);
    return rc;
}
