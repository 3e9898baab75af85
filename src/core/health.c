#include "core/health.h"

#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

const char *health_state_name(health_state s)
{
    static const char *const names[] = {"ok", "degraded", "down", "unknown"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

void health_window_init(health_window *w)
{
    memset(w, 0, sizeof *w);
    /* Second 0 is a real second; -1 marks a bucket never used. */
    for (size_t i = 0; i < HEALTH_WINDOW_SECONDS; i++) w->buckets[i].second = -1;
}

static int64_t health__floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void health_window_record(health_window *w, int64_t now_ms, bool ok, int64_t first_token_ms,
                          const char *error)
{
    int64_t sec = health__floor_div(now_ms, 1000);
    size_t i =
        (size_t)(((sec % HEALTH_WINDOW_SECONDS) + HEALTH_WINDOW_SECONDS) % HEALTH_WINDOW_SECONDS);
    if (w->buckets[i].second != sec) {
        w->buckets[i].second = sec;
        w->buckets[i].requests = 0;
        w->buckets[i].errors = 0;
    }
    w->buckets[i].requests++;
    if (ok) {
        w->last_ok_ms = now_ms;
    } else {
        w->buckets[i].errors++;
        w->last_error_ms = now_ms;
        const char *e = error ? error : "";
        size_t n = strlen(e);
        if (n >= HEALTH_ERROR_MAX) n = utf8_cut(e, n, HEALTH_ERROR_MAX - 1);
        memcpy(w->last_error, e, n);
        w->last_error[n] = '\0';
    }
    if (first_token_ms >= 0) {
        w->samples[w->next_sample % HEALTH_SAMPLES].at_ms = now_ms;
        w->samples[w->next_sample % HEALTH_SAMPLES].ms = first_token_ms;
        w->next_sample++;
    }
}

void health_window_counts(const health_window *w, int64_t now_ms, int64_t *requests,
                          int64_t *errors)
{
    int64_t sec = health__floor_div(now_ms, 1000);
    int64_t req = 0, err = 0;
    for (size_t i = 0; i < HEALTH_WINDOW_SECONDS; i++) {
        int64_t s = w->buckets[i].second;
        if (s < 0 || s > sec || s <= sec - HEALTH_WINDOW_SECONDS) continue;
        req += w->buckets[i].requests;
        err += w->buckets[i].errors;
    }
    *requests = req;
    *errors = err;
}

static int health__cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t health_window_first_token_p50(const health_window *w, int64_t now_ms)
{
    int64_t vals[HEALTH_SAMPLES];
    size_t n = 0;
    size_t have = w->next_sample < HEALTH_SAMPLES ? w->next_sample : HEALTH_SAMPLES;
    for (size_t i = 0; i < have; i++) {
        int64_t at = w->samples[i].at_ms;
        if (at > now_ms || at <= now_ms - (int64_t)HEALTH_WINDOW_SECONDS * 1000) continue;
        vals[n++] = w->samples[i].ms;
    }
    if (n == 0) return -1;
    qsort(vals, n, sizeof vals[0], health__cmp_i64);
    return vals[(n - 1) / 2];
}

health_state health_window_state(const health_window *w, int64_t now_ms, bool circuit_open)
{
    if (circuit_open) return HEALTH_DOWN;
    int64_t req, err;
    health_window_counts(w, now_ms, &req, &err);
    if (req > 0 && err == req) return HEALTH_DOWN;
    if (err > 0) return HEALTH_DEGRADED;
    if (req > 0) return HEALTH_OK;
    if (w->last_error_ms > w->last_ok_ms) return HEALTH_DEGRADED;
    return w->last_ok_ms ? HEALTH_OK : HEALTH_UNKNOWN;
}

void health_stops_init(health_stops *s)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < HEALTH_STOPS_MINUTES; i++) s->buckets[i].minute = -1;
}

void health_stops_record(health_stops *s, int64_t now_ms, stop_reason reason)
{
    if ((unsigned)reason >= STOP__COUNT) return;
    int64_t min = health__floor_div(now_ms, 60000);
    size_t i =
        (size_t)(((min % HEALTH_STOPS_MINUTES) + HEALTH_STOPS_MINUTES) % HEALTH_STOPS_MINUTES);
    if (s->buckets[i].minute != min) {
        s->buckets[i].minute = min;
        memset(s->buckets[i].count, 0, sizeof s->buckets[i].count);
    }
    s->buckets[i].count[reason]++;
}

void health_stops_counts(const health_stops *s, int64_t now_ms, int64_t out[STOP__COUNT])
{
    int64_t min = health__floor_div(now_ms, 60000);
    for (size_t r = 0; r < STOP__COUNT; r++) out[r] = 0;
    for (size_t i = 0; i < HEALTH_STOPS_MINUTES; i++) {
        int64_t m = s->buckets[i].minute;
        if (m < 0 || m > min || m <= min - HEALTH_STOPS_MINUTES) continue;
        for (size_t r = 0; r < STOP__COUNT; r++) out[r] += s->buckets[i].count[r];
    }
}

health_state health_overall(bool store_up, const health_state *providers, int nproviders,
                            int tool_servers_not_ready)
{
    if (!store_up) return HEALTH_DOWN;
    int down = 0, bad = 0;
    for (int i = 0; i < nproviders; i++) {
        if (providers[i] == HEALTH_DOWN) down++;
        if (providers[i] == HEALTH_DOWN || providers[i] == HEALTH_DEGRADED) bad++;
    }
    if (nproviders > 0 && down == nproviders) return HEALTH_DOWN;
    if (bad > 0 || tool_servers_not_ready > 0) return HEALTH_DEGRADED;
    return HEALTH_OK;
}
