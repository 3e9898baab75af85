#include "app/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evt.h"
#include "core/stop.h"
#include "lib/xmalloc.h"

/* A counter with one label: parallel arrays of label values and counts, in
 * the order the values were first seen (seeded values first). */
typedef struct metrics__labelled {
    char *values[METRICS_LABELS_MAX];
    double counts[METRICS_LABELS_MAX];
    int n;
} metrics__labelled;

#define METRICS__BUCKETS_MAX 16

/* A histogram: cumulative counts are computed when rendering, so each
 * bucket here counts only the observations that fell into it. */
typedef struct metrics__histogram {
    const double *bounds; /* upper bounds, ascending, without +Inf */
    int nbounds;
    uint64_t buckets[METRICS__BUCKETS_MAX + 1]; /* the last is +Inf */
    double sum;
    uint64_t count;
} metrics__histogram;

static const double metrics__tool_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                              1,     2.5,  5,     10,   30,  60};
static const double metrics__llm_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30};
static const double metrics__commit_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                0.025,  0.05,  0.1,    0.25,  1};

#define METRICS__N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static pthread_mutex_t metrics__mu = PTHREAD_MUTEX_INITIALIZER;
static double metrics__runs_active, metrics__runs_started, metrics__sse_subscribers;
static metrics__labelled metrics__runs_stopped, metrics__events, metrics__tool_calls,
    metrics__llm_tokens, metrics__http;
static metrics__histogram metrics__tool_duration = {
    metrics__tool_bounds, METRICS__N(metrics__tool_bounds), {0}, 0, 0};
static metrics__histogram metrics__llm_first_token = {
    metrics__llm_bounds, METRICS__N(metrics__llm_bounds), {0}, 0, 0};
static metrics__histogram metrics__store_commit = {
    metrics__commit_bounds, METRICS__N(metrics__commit_bounds), {0}, 0, 0};
static int metrics__seeded;

/* Adds v to the series with this label value, creating it (or falling back
 * to "other" when the table is full). Caller holds the mutex. */
static void metrics__add(metrics__labelled *l, const char *value, double v)
{
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->values[i], value) == 0) {
            l->counts[i] += v;
            return;
        }
    }
    if (l->n == METRICS_LABELS_MAX) {
        if (strcmp(value, "other") != 0) metrics__add(l, "other", v);
        return;
    }
    if (l->n == METRICS_LABELS_MAX - 1 && strcmp(value, "other") != 0) {
        /* Keep the last slot for "other". */
        l->values[l->n] = xstrdup("other");
        l->counts[l->n++] = v;
        return;
    }
    l->values[l->n] = xstrdup(value);
    l->counts[l->n++] = v;
}

/* Creates the series whose label values are known in advance with a zero
 * count, so a scraper sees them before the first occurrence. Caller holds
 * the mutex. */
static void metrics__seed(void)
{
    if (metrics__seeded) return;
    metrics__seeded = 1;
    for (int r = 0; r < STOP__COUNT; r++)
        metrics__add(&metrics__runs_stopped, stop_reason_name((stop_reason)r), 0);
    for (int t = 0; t < EVT__COUNT; t++)
        metrics__add(&metrics__events, evt_type_name((evt_type)t), 0);
    static const char *const statuses[] = {"ok", "error", "timeout", "cancelled"};
    for (int i = 0; i < 4; i++) metrics__add(&metrics__tool_calls, statuses[i], 0);
    metrics__add(&metrics__llm_tokens, "prompt", 0);
    metrics__add(&metrics__llm_tokens, "completion", 0);
}

static void metrics__observe(metrics__histogram *h, double v)
{
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i]) i++;
    h->buckets[i]++;
    h->sum += v;
    h->count++;
}

#define METRICS__LOCKED(stmt)                                                                      \
    do {                                                                                           \
        pthread_mutex_lock(&metrics__mu);                                                          \
        metrics__seed();                                                                           \
        stmt;                                                                                      \
        pthread_mutex_unlock(&metrics__mu);                                                        \
    } while (0)

void metrics_run_started(void)
{
    METRICS__LOCKED(metrics__runs_started++; metrics__runs_active++);
}

void metrics_run_stopped(const char *reason)
{
    METRICS__LOCKED(if (metrics__runs_active > 0) metrics__runs_active--;
                    metrics__add(&metrics__runs_stopped, reason, 1));
}

void metrics_event(const char *type)
{
    METRICS__LOCKED(metrics__add(&metrics__events, type, 1));
}

void metrics_tool_call(const char *status, double seconds)
{
    METRICS__LOCKED(metrics__add(&metrics__tool_calls, status, 1);
                    metrics__observe(&metrics__tool_duration, seconds));
}

void metrics_llm_first_token(double seconds)
{
    METRICS__LOCKED(metrics__observe(&metrics__llm_first_token, seconds));
}

void metrics_llm_tokens(int64_t prompt, int64_t completion)
{
    METRICS__LOCKED(if (prompt > 0) metrics__add(&metrics__llm_tokens, "prompt", (double)prompt);
                    if (completion > 0)
                        metrics__add(&metrics__llm_tokens, "completion", (double)completion));
}

void metrics_store_commit(double seconds)
{
    METRICS__LOCKED(metrics__observe(&metrics__store_commit, seconds));
}

void metrics_http_request(int code)
{
    char v[16];
    snprintf(v, sizeof v, "%d", code);
    METRICS__LOCKED(metrics__add(&metrics__http, v, 1));
}

void metrics_sse_subscribers_add(int delta)
{
    METRICS__LOCKED(metrics__sse_subscribers += delta);
}

/* Prints a number as Prometheus reads it: integers without a fraction. */
static int metrics__num(buf *out, double v)
{
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
        return buf_printf(out, "%lld", (long long)v);
    return buf_printf(out, "%.9g", v);
}

static int metrics__header(buf *out, const char *name, const char *type, const char *help)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int metrics__scalar(buf *out, const char *name, const char *type, const char *help, double v)
{
    int rc = metrics__header(out, name, type, help);
    rc |= buf_printf(out, "%s ", name);
    rc |= metrics__num(out, v);
    rc |= buf_append_char(out, '\n');
    return rc;
}

static int metrics__labelled_render(buf *out, const char *name, const char *label, const char *help,
                                    const metrics__labelled *l)
{
    int rc = metrics__header(out, name, "counter", help);
    for (int i = 0; i < l->n; i++) {
        rc |= buf_printf(out, "%s{%s=\"%s\"} ", name, label, l->values[i]);
        rc |= metrics__num(out, l->counts[i]);
        rc |= buf_append_char(out, '\n');
    }
    return rc;
}

static int metrics__histogram_render(buf *out, const char *name, const char *help,
                                     const metrics__histogram *h)
{
    int rc = metrics__header(out, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i <= h->nbounds; i++) {
        cum += h->buckets[i];
        if (i < h->nbounds)
            rc |= buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                             (unsigned long long)cum);
        else
            rc |= buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    rc |= buf_printf(out, "%s_sum ", name);
    rc |= metrics__num(out, h->sum);
    rc |= buf_printf(out, "\n%s_count %llu\n", name, (unsigned long long)h->count);
    return rc;
}

int metrics_render(buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&metrics__mu);
    metrics__seed();
    rc |= metrics__scalar(out, "chatplane_runs_active", "gauge", "Runs going on now.",
                          metrics__runs_active);
    rc |= metrics__scalar(out, "chatplane_runs_started_total", "counter", "Runs started.",
                          metrics__runs_started);
    rc |= metrics__labelled_render(out, "chatplane_runs_stopped_total", "reason",
                                   "Runs stopped, by stop reason.", &metrics__runs_stopped);
    rc |= metrics__labelled_render(out, "chatplane_events_total", "type",
                                   "Events committed, by type.", &metrics__events);
    rc |= metrics__scalar(out, "chatplane_sse_subscribers", "gauge", "Open event streams.",
                          metrics__sse_subscribers);
    rc |= metrics__labelled_render(out, "chatplane_tool_calls_total", "status",
                                   "Tool executions finished, by status.", &metrics__tool_calls);
    rc |= metrics__histogram_render(out, "chatplane_tool_duration_seconds",
                                    "How long tool executions took.", &metrics__tool_duration);
    rc |= metrics__histogram_render(out, "chatplane_llm_first_token_seconds",
                                    "Time from a model request to its first streamed piece.",
                                    &metrics__llm_first_token);
    rc |= metrics__labelled_render(out, "chatplane_llm_tokens_total", "kind",
                                   "Model tokens, prompt and completion.", &metrics__llm_tokens);
    rc |= metrics__histogram_render(out, "chatplane_store_commit_seconds",
                                    "How long one event log batch took to commit.",
                                    &metrics__store_commit);
    rc |= metrics__labelled_render(out, "chatplane_http_requests_total", "code",
                                   "HTTP responses sent, by status code.", &metrics__http);
    pthread_mutex_unlock(&metrics__mu);
    return rc ? BUF_TOOBIG : 0;
}

static void metrics__labelled_clear(metrics__labelled *l)
{
    for (int i = 0; i < l->n; i++) free(l->values[i]);
    memset(l, 0, sizeof *l);
}

static void metrics__histogram_clear(metrics__histogram *h)
{
    memset(h->buckets, 0, sizeof h->buckets);
    h->sum = 0;
    h->count = 0;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&metrics__mu);
    metrics__runs_active = metrics__runs_started = metrics__sse_subscribers = 0;
    metrics__labelled_clear(&metrics__runs_stopped);
    metrics__labelled_clear(&metrics__events);
    metrics__labelled_clear(&metrics__tool_calls);
    metrics__labelled_clear(&metrics__llm_tokens);
    metrics__labelled_clear(&metrics__http);
    metrics__histogram_clear(&metrics__tool_duration);
    metrics__histogram_clear(&metrics__llm_first_token);
    metrics__histogram_clear(&metrics__store_commit);
    metrics__seeded = 0;
    pthread_mutex_unlock(&metrics__mu);
}
