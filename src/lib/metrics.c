#include "lib/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

/* The registry holds few families (a dozen today); a fixed table keeps it
 * free of a second allocation pattern and bounds it. */
#define METRICS__FAMILIES_MAX 64

typedef enum { METRICS__COUNTER, METRICS__GAUGE, METRICS__HISTOGRAM } metrics__kind;

struct metrics_family {
    metrics__kind kind;
    const char *name;
    const char *help;
    const char *label; /* NULL: one series without a label */
    /* Counters and gauges: parallel arrays of label values and counts, in
     * the order the values were first seen (seeded values first). A family
     * without a label has one series with value NULL. */
    char *values[METRICS_LABELS_MAX];
    double counts[METRICS_LABELS_MAX];
    unsigned char seeded[METRICS_LABELS_MAX];
    int n;
    /* Histograms: each bucket counts only the observations that fell into
     * it; cumulative counts are computed when rendering. */
    const double *bounds;
    int nbounds;
    uint64_t buckets[METRICS_BUCKETS_MAX + 1]; /* the last is +Inf */
    double sum;
    uint64_t count;
};

static pthread_mutex_t metrics__mu = PTHREAD_MUTEX_INITIALIZER;
static metrics_family *metrics__families[METRICS__FAMILIES_MAX];
static int metrics__nfamilies;

/* Returns the family with this name, or registers a new one. A full
 * registry is a programming error (the families are fixed in the code), so
 * it aborts rather than fail quietly. */
static metrics_family *metrics__register(metrics__kind kind, const char *name, const char *help,
                                         const char *label, const double *bounds, int nbounds)
{
    pthread_mutex_lock(&metrics__mu);
    metrics_family *f = NULL;
    for (int i = 0; i < metrics__nfamilies && !f; i++)
        if (strcmp(metrics__families[i]->name, name) == 0) f = metrics__families[i];
    if (!f) {
        if (metrics__nfamilies == METRICS__FAMILIES_MAX || nbounds > METRICS_BUCKETS_MAX) abort();
        f = xmalloc(sizeof *f);
        /* A family without a label has its one series from the start. */
        *f = (metrics_family){.kind = kind,
                              .name = name,
                              .help = help,
                              .label = label,
                              .bounds = bounds,
                              .nbounds = nbounds,
                              .n = !label && kind != METRICS__HISTOGRAM};
        metrics__families[metrics__nfamilies++] = f;
    }
    pthread_mutex_unlock(&metrics__mu);
    return f;
}

metrics_family *metrics_counter_new(const char *name, const char *help, const char *label)
{
    return metrics__register(METRICS__COUNTER, name, help, label, NULL, 0);
}

metrics_family *metrics_gauge_new(const char *name, const char *help)
{
    return metrics__register(METRICS__GAUGE, name, help, NULL, NULL, 0);
}

metrics_family *metrics_gauge_labelled_new(const char *name, const char *help, const char *label)
{
    return metrics__register(METRICS__GAUGE, name, help, label, NULL, 0);
}

metrics_family *metrics_histogram_new(const char *name, const char *help, const double *bounds,
                                      int nbounds)
{
    return metrics__register(METRICS__HISTOGRAM, name, help, NULL, bounds, nbounds);
}

/* The index of the series for value, created when missing (or "other" once
 * the table is full, the last slot being kept for it). Caller holds the
 * mutex. */
static int metrics__series(metrics_family *f, const char *value)
{
    if (!f->label) return 0;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->values[i], value) == 0) return i;
    int full = f->n == METRICS_LABELS_MAX || f->n == METRICS_LABELS_MAX - 1;
    if (full && strcmp(value, "other") != 0) return metrics__series(f, "other");
    f->values[f->n] = xstrdup(value);
    f->counts[f->n] = 0;
    f->seeded[f->n] = 0;
    return f->n++;
}

void metrics_add(metrics_family *f, const char *label_value, double v)
{
    if (!f || f->kind == METRICS__HISTOGRAM) return;
    pthread_mutex_lock(&metrics__mu);
    int i = metrics__series(f, label_value ? label_value : "unknown");
    f->counts[i] += v;
    if (f->kind == METRICS__GAUGE && f->counts[i] < 0) f->counts[i] = 0;
    pthread_mutex_unlock(&metrics__mu);
}

void metrics_set(metrics_family *f, const char *label_value, double v)
{
    if (!f || f->kind != METRICS__GAUGE) return;
    pthread_mutex_lock(&metrics__mu);
    int i = metrics__series(f, label_value ? label_value : "unknown");
    f->counts[i] = v < 0 ? 0 : v;
    pthread_mutex_unlock(&metrics__mu);
}

void metrics_seed(metrics_family *f, const char *label_value)
{
    if (!f || !f->label) return;
    pthread_mutex_lock(&metrics__mu);
    f->seeded[metrics__series(f, label_value)] = 1;
    pthread_mutex_unlock(&metrics__mu);
}

void metrics_observe(metrics_family *f, double v)
{
    if (!f || f->kind != METRICS__HISTOGRAM) return;
    pthread_mutex_lock(&metrics__mu);
    int i = 0;
    while (i < f->nbounds && v > f->bounds[i]) i++;
    f->buckets[i]++;
    f->sum += v;
    f->count++;
    pthread_mutex_unlock(&metrics__mu);
}

double metrics_histogram_quantile(metrics_family *f, double q)
{
    if (!f || f->kind != METRICS__HISTOGRAM) return -1;
    pthread_mutex_lock(&metrics__mu);
    double v = -1;
    if (f->count > 0) {
        double rank = q * (double)f->count;
        uint64_t below = 0;
        int i = 0;
        while (i < f->nbounds && (double)(below + f->buckets[i]) < rank) below += f->buckets[i++];
        if (i == f->nbounds) {
            v = f->nbounds ? f->bounds[f->nbounds - 1] : 0;
        } else {
            double lo = i ? f->bounds[i - 1] : 0, hi = f->bounds[i];
            v = lo + (hi - lo) * (rank - (double)below) / (double)f->buckets[i];
        }
    }
    pthread_mutex_unlock(&metrics__mu);
    return v;
}

/* Prints a number as Prometheus reads it: integers without a fraction. */
static int metrics__num(buf *out, double v)
{
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15) return buf_append_i64(out, (int64_t)v);
    return buf_printf(out, "%.9g", v);
}

/* Writes the labels of a series: each name of f->label with the value at
 * the same place in value, both lists split at commas. A label the value
 * has no part for (a value without enough commas, the "other" series) is
 * "other". */
static int metrics__render_labels(buf *out, const char *names, const char *value)
{
    int rc = 0;
    const char *n = names, *v = value;
    for (bool first = true; *n; first = false) {
        size_t nl = strcspn(n, ",");
        size_t vl = v ? strcspn(v, ",") : 0;
        rc |= buf_printf(out, "%s%.*s=\"%.*s\"", first ? "" : ",", (int)nl, n, v ? (int)vl : 5,
                         v ? v : "other");
        n += nl + (n[nl] == ',');
        if (v) v = v[vl] == ',' ? v + vl + 1 : NULL;
    }
    return rc;
}

static int metrics__render_series(buf *out, const metrics_family *f)
{
    int rc = 0;
    for (int i = 0; i < f->n; i++) {
        if (f->label && strchr(f->label, ',')) {
            rc |= buf_printf(out, "%s{", f->name);
            rc |= metrics__render_labels(out, f->label, f->values[i]);
            rc |= buf_append(out, "} ", 2);
        } else if (f->label)
            rc |= buf_printf(out, "%s{%s=\"%s\"} ", f->name, f->label, f->values[i]);
        else
            rc |= buf_printf(out, "%s ", f->name);
        rc |= metrics__num(out, f->counts[i]);
        rc |= buf_append_char(out, '\n');
    }
    return rc;
}

static int metrics__render_histogram(buf *out, const metrics_family *f)
{
    int rc = 0;
    uint64_t cum = 0;
    for (int i = 0; i <= f->nbounds; i++) {
        cum += f->buckets[i];
        if (i < f->nbounds)
            rc |= buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", f->name, f->bounds[i],
                             (unsigned long long)cum);
        else
            rc |=
                buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", f->name, (unsigned long long)cum);
    }
    rc |= buf_printf(out, "%s_sum ", f->name);
    rc |= metrics__num(out, f->sum);
    rc |= buf_printf(out, "\n%s_count %llu\n", f->name, (unsigned long long)f->count);
    return rc;
}

int metrics_render(buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    pthread_mutex_lock(&metrics__mu);
    for (int i = 0; i < metrics__nfamilies; i++) {
        const metrics_family *f = metrics__families[i];
        rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                         types[f->kind]);
        rc |= f->kind == METRICS__HISTOGRAM ? metrics__render_histogram(out, f)
                                            : metrics__render_series(out, f);
    }
    pthread_mutex_unlock(&metrics__mu);
    return rc ? BUF_TOOBIG : 0;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&metrics__mu);
    for (int i = 0; i < metrics__nfamilies; i++) {
        metrics_family *f = metrics__families[i];
        int kept = 0;
        for (int s = 0; s < f->n; s++) {
            if (f->label && !f->seeded[s]) {
                free(f->values[s]);
                continue;
            }
            f->values[kept] = f->values[s];
            f->seeded[kept] = f->seeded[s];
            f->counts[kept++] = 0;
        }
        f->n = kept;
        memset(f->buckets, 0, sizeof f->buckets);
        f->sum = 0;
        f->count = 0;
    }
    pthread_mutex_unlock(&metrics__mu);
}
