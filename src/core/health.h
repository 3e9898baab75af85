/*
 * health: the figures behind GET /api/health (docs/health.md), kept as
 * small fixed-size windows so that reading them is cheap enough to poll
 * every few seconds. Pure: every call is given the time.
 *
 *   health_window  one model provider's requests, errors and first-token
 *                  times over the last five minutes, its last success and
 *                  its last error;
 *   health_stops   the runs stopped in the last hour, by reason.
 */
#ifndef CHATPLANE_HEALTH_H
#define CHATPLANE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stop.h"

#define HEALTH_WINDOW_SECONDS 300 /* five minutes, one bucket a second */
#define HEALTH_SAMPLES        128 /* first-token times kept for the median */
#define HEALTH_ERROR_MAX      256 /* bytes of the last error kept */
#define HEALTH_STOPS_MINUTES  60  /* an hour, one bucket a minute */

typedef struct health_window {
    struct {
        int64_t second; /* the Unix second the counts belong to */
        uint32_t requests, errors;
    } buckets[HEALTH_WINDOW_SECONDS];
    struct {
        int64_t at_ms;
        int64_t ms;
    } samples[HEALTH_SAMPLES];
    uint32_t next_sample;
    int64_t last_ok_ms;    /* 0: none */
    int64_t last_error_ms; /* 0: none */
    char last_error[HEALTH_ERROR_MAX];
} health_window;

typedef enum health_state {
    HEALTH_OK,
    HEALTH_DEGRADED,
    HEALTH_DOWN,
    HEALTH_UNKNOWN,
} health_state;

/* "ok", "degraded", "down", "unknown". */
const char *health_state_name(health_state s);

void health_window_init(health_window *w);
/* One model request that ended at now_ms: ok, or failed with error (cut to
 * HEALTH_ERROR_MAX bytes at a UTF-8 boundary). first_token_ms is the time
 * to its first streamed piece, or -1 when none came. */
void health_window_record(health_window *w, int64_t now_ms, bool ok, int64_t first_token_ms,
                          const char *error);
/* Requests and errors that ended in the five minutes up to now_ms. */
void health_window_counts(const health_window *w, int64_t now_ms, int64_t *requests,
                          int64_t *errors);
/* The median first-token time of the requests of the last five minutes
 * (the lower middle of an even count), or -1 without any. */
int64_t health_window_first_token_p50(const health_window *w, int64_t now_ms);
/*
 * The provider's state: down while its circuit is open or when every
 * request of the last five minutes failed; degraded when some failed;
 * ok when none did; unknown when it had no request in five minutes and
 * never failed (a provider that failed earlier and has been quiet since is
 * degraded until a request succeeds).
 */
health_state health_window_state(const health_window *w, int64_t now_ms, bool circuit_open);

typedef struct health_stops {
    struct {
        int64_t minute; /* the Unix minute the counts belong to */
        uint32_t count[STOP__COUNT];
    } buckets[HEALTH_STOPS_MINUTES];
} health_stops;

void health_stops_init(health_stops *s);
void health_stops_record(health_stops *s, int64_t now_ms, stop_reason reason);
/* Fills out[reason] with the runs stopped in the hour up to now_ms. */
void health_stops_counts(const health_stops *s, int64_t now_ms, int64_t out[STOP__COUNT]);

/* The server's state from its parts: down when the store is down or every
 * model provider is; degraded when any provider or tool server is not ok
 * (unknown counts as ok: a provider nobody used yet is not a fault). */
health_state health_overall(bool store_up, const health_state *providers, int nproviders,
                            int tool_servers_not_ready);

#endif
