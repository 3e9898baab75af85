/*
 * metrics: a registry of counters, gauges and histograms, rendered in the
 * Prometheus text format (GET /metrics; the families chatplane registers
 * are listed in docs/api.md, Metrics).
 *
 * The registry knows nothing of runs or requests: each module that observes
 * something registers its own families (`metrics_counter_new`, …) once at
 * start-up and keeps the returned pointer. Families render in the order
 * they were registered. Registering a name that exists returns the existing
 * family, so two servers in one test process share their figures as they
 * would share a process.
 *
 * Every function is thread-safe: the loop thread and the eventlog's writer
 * thread both observe. Label values are copied; a labelled family keeps at
 * most METRICS_LABELS_MAX distinct values and counts the rest under
 * "other", so a misbehaving caller cannot grow it without bound. Every
 * operation accepts a NULL family and does nothing, so code whose families
 * were never registered (a unit test, the `ask` command) needs no checks.
 * Families live as long as the process.
 */
#ifndef CHATPLANE_METRICS_H
#define CHATPLANE_METRICS_H

#include "lib/buf.h"

#define METRICS_LABELS_MAX  64
#define METRICS_BUCKETS_MAX 16

typedef struct metrics_family metrics_family;

/* A counter; with label non-NULL, one series per label value. name and
 * help must be string literals (they are not copied). A label "a,b" names
 * two labels: each value then holds both, joined by a comma ("x,y" renders
 * {a="x",b="y"}), so the first may hold no comma. */
metrics_family *metrics_counter_new(const char *name, const char *help, const char *label);
/* A gauge without labels. */
metrics_family *metrics_gauge_new(const char *name, const char *help);
/* A gauge with one series per value of label; as for a counter, label may
 * name several labels joined by commas ("owner,dimension,period"), each
 * series then being named by its values joined the same way
 * ("alice,tokens,day"), so a value must hold no comma and no quote. */
metrics_family *metrics_gauge_labelled_new(const char *name, const char *help, const char *label);
/* A histogram with nbounds (at most METRICS_BUCKETS_MAX) ascending upper
 * bounds, +Inf implied; bounds must outlive the process. */
metrics_family *metrics_histogram_new(const char *name, const char *help, const double *bounds,
                                      int nbounds);

/* Adds v to a counter's or gauge's series. label_value is NULL for a family
 * without a label. A gauge may go down (v < 0) but not below zero. */
void metrics_add(metrics_family *f, const char *label_value, double v);
/* Sets a gauge's series to v (not below zero). */
void metrics_set(metrics_family *f, const char *label_value, double v);
/* Creates a labelled series at zero, so a scraper sees the values known in
 * advance before their first occurrence. Seeded series survive a reset. */
void metrics_seed(metrics_family *f, const char *label_value);
/* Records one observation in a histogram. */
void metrics_observe(metrics_family *f, double v);

/* An estimate of the q-quantile (0 < q <= 1) of a histogram's observations
 * since start, made as Prometheus's histogram_quantile makes it: linear
 * within the bucket the rank falls in (the first bucket starting at 0); a
 * rank in the +Inf bucket gives the highest bound. -1 without observations
 * (or for a family that is not a histogram). */
double metrics_histogram_quantile(metrics_family *f, double q);

/* Appends the text exposition of every family. Returns 0 or BUF_TOOBIG. */
int metrics_render(buf *out);

/* Sets every figure back to zero and forgets label values that were not
 * seeded (for tests). */
void metrics_reset(void);

#endif
