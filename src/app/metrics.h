/*
 * metrics: the process's counters, gauges and histograms (contract section
 * 7), rendered in the Prometheus text format for GET /metrics.
 *
 * The figures are process-wide. Every function is thread-safe: the engine
 * and the HTTP side call them on the loop thread, the eventlog's commit
 * observer on the writer thread. Label values are copied; a labelled
 * counter keeps at most METRICS_LABELS_MAX distinct values and counts the
 * rest under "other", so a misbehaving caller cannot grow it without bound.
 */
#ifndef CHATPLANE_METRICS_H
#define CHATPLANE_METRICS_H

#include <stdint.h>

#include "lib/buf.h"

#define METRICS_LABELS_MAX 64

/* A run started: chatplane_runs_started_total and chatplane_runs_active. */
void metrics_run_started(void);
/* A run stopped with reason ("completed", …): chatplane_runs_stopped_total
 * and chatplane_runs_active. */
void metrics_run_stopped(const char *reason);
/* An event of this type ("token", …) was committed. */
void metrics_event(const char *type);
/* A tool execution finished with status ("ok", "error", "timeout",
 * "cancelled") after seconds. */
void metrics_tool_call(const char *status, double seconds);
/* The first streamed piece of a model answer arrived seconds after the
 * request was sent. */
void metrics_llm_first_token(double seconds);
/* Tokens of one model call as reported (or estimated). */
void metrics_llm_tokens(int64_t prompt, int64_t completion);
/* One eventlog batch committed in seconds. */
void metrics_store_commit(double seconds);
/* An HTTP response with this status was sent. */
void metrics_http_request(int code);
/* The number of open SSE streams changes by delta. */
void metrics_sse_subscribers_add(int delta);

/* Appends the text exposition of every metric to out. Returns 0 or
 * BUF_TOOBIG. */
int metrics_render(buf *out);

/* Sets every figure back to zero (for tests). */
void metrics_reset(void);

#endif
