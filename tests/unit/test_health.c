/* Unit tests for core/health: the five-minute window of a model provider,
 * the hour of stops, and the server's state from its parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/health.h"

#define T0 1796292120000LL /* 2026-12-03 10:02:00 UTC */

static health_window *window_new(void)
{
    health_window *w = malloc(sizeof *w);
    health_window_init(w);
    return w;
}

static void test_an_unused_provider_is_unknown(void **state)
{
    (void)state;
    health_window *w = window_new();
    int64_t req = -1, err = -1;
    health_window_counts(w, T0, &req, &err);
    assert_int_equal(req, 0);
    assert_int_equal(err, 0);
    assert_int_equal(health_window_first_token_p50(w, T0), -1);
    assert_int_equal(health_window_state(w, T0, false), HEALTH_UNKNOWN);
    assert_int_equal(health_window_state(w, T0, true), HEALTH_DOWN);
    assert_string_equal(health_state_name(HEALTH_UNKNOWN), "unknown");
    free(w);
}

static void test_counts_cover_exactly_five_minutes(void **state)
{
    (void)state;
    health_window *w = window_new();
    health_window_record(w, T0, true, 120, NULL);
    health_window_record(w, T0 + 999, false, -1, "HTTP 503");
    health_window_record(w, T0 + 60000, true, 80, NULL);
    int64_t req, err;
    health_window_counts(w, T0 + 60000, &req, &err);
    assert_int_equal(req, 3);
    assert_int_equal(err, 1);
    assert_int_equal(health_window_state(w, T0 + 60000, false), HEALTH_DEGRADED);
    /* 299 s after the first second it still counts; at 300 s it is gone. */
    health_window_counts(w, T0 + 299999, &req, &err);
    assert_int_equal(req, 3);
    health_window_counts(w, T0 + 300000, &req, &err);
    assert_int_equal(req, 1);
    assert_int_equal(err, 0);
    assert_int_equal(health_window_state(w, T0 + 300000, false), HEALTH_OK);
    /* A bucket reused 300 s later starts from zero. */
    health_window_record(w, T0 + 300000, false, -1, "HTTP 500");
    health_window_counts(w, T0 + 300000, &req, &err);
    assert_int_equal(req, 2);
    assert_int_equal(err, 1);
    free(w);
}

static void test_every_request_failed_is_down_and_quiet_after_failing_is_degraded(void **state)
{
    (void)state;
    health_window *w = window_new();
    health_window_record(w, T0, false, -1, "could not connect");
    health_window_record(w, T0 + 2000, false, -1, "could not connect");
    assert_int_equal(health_window_state(w, T0 + 2000, false), HEALTH_DOWN);
    assert_string_equal(w->last_error, "could not connect");
    assert_int_equal(w->last_error_ms, T0 + 2000);
    assert_int_equal(w->last_ok_ms, 0);
    /* Ten minutes later nothing is in the window, but the last word was a
     * failure. */
    assert_int_equal(health_window_state(w, T0 + 600000, false), HEALTH_DEGRADED);
    health_window_record(w, T0 + 600000, true, 50, NULL);
    assert_int_equal(health_window_state(w, T0 + 600000, false), HEALTH_OK);
    assert_int_equal(health_window_state(w, T0 + 1200000, false), HEALTH_OK);
    free(w);
}

static void test_first_token_median(void **state)
{
    (void)state;
    health_window *w = window_new();
    static const int64_t ms[] = {300, 100, 200, 400};
    for (size_t i = 0; i < 4; i++) health_window_record(w, T0 + (int64_t)i, true, ms[i], NULL);
    /* An even count takes the lower middle. */
    assert_int_equal(health_window_first_token_p50(w, T0 + 10), 200);
    health_window_record(w, T0 + 20, true, 1000, NULL);
    assert_int_equal(health_window_first_token_p50(w, T0 + 20), 300);
    /* Requests without a first token add nothing. */
    health_window_record(w, T0 + 30, false, -1, "x");
    assert_int_equal(health_window_first_token_p50(w, T0 + 30), 300);
    /* Older than five minutes: not counted. */
    assert_int_equal(health_window_first_token_p50(w, T0 + 300010), 1000);
    assert_int_equal(health_window_first_token_p50(w, T0 + 300020), -1);
    /* The ring keeps the newest HEALTH_SAMPLES. */
    for (int i = 0; i < HEALTH_SAMPLES; i++) health_window_record(w, T0 + 400000, true, 7, NULL);
    assert_int_equal(health_window_first_token_p50(w, T0 + 400000), 7);
    free(w);
}

static void test_last_error_is_cut_at_a_character(void **state)
{
    (void)state;
    health_window *w = window_new();
    char long_err[HEALTH_ERROR_MAX + 10];
    /* 254 ASCII bytes, then "é" (2 bytes) across the 255-byte limit. */
    memset(long_err, 'a', HEALTH_ERROR_MAX - 2);
    strcpy(long_err + HEALTH_ERROR_MAX - 2, "\xc3\xa9zzzz");
    health_window_record(w, T0, false, -1, long_err);
    assert_int_equal(strlen(w->last_error), HEALTH_ERROR_MAX - 2);
    health_window_record(w, T0, false, -1, NULL);
    assert_string_equal(w->last_error, "");
    free(w);
}

static void test_stops_of_the_last_hour(void **state)
{
    (void)state;
    health_stops *s = malloc(sizeof *s);
    health_stops_init(s);
    health_stops_record(s, T0, STOP_COMPLETED);
    health_stops_record(s, T0 + 1000, STOP_COMPLETED);
    health_stops_record(s, T0 + 30 * 60000, STOP_LOOP_DETECTED);
    health_stops_record(s, T0, (stop_reason)STOP__COUNT); /* ignored */
    int64_t c[STOP__COUNT];
    health_stops_counts(s, T0 + 30 * 60000, c);
    assert_int_equal(c[STOP_COMPLETED], 2);
    assert_int_equal(c[STOP_LOOP_DETECTED], 1);
    assert_int_equal(c[STOP_LLM_ERROR], 0);
    /* The minute of T0 leaves the hour 60 minutes later. */
    health_stops_counts(s, T0 + 59 * 60000, c);
    assert_int_equal(c[STOP_COMPLETED], 2);
    health_stops_counts(s, T0 + 60 * 60000, c);
    assert_int_equal(c[STOP_COMPLETED], 0);
    assert_int_equal(c[STOP_LOOP_DETECTED], 1);
    /* Its bucket, reused an hour later, starts from zero. */
    health_stops_record(s, T0 + 60 * 60000, STOP_MAX_STEPS);
    health_stops_counts(s, T0 + 60 * 60000, c);
    assert_int_equal(c[STOP_COMPLETED], 0);
    assert_int_equal(c[STOP_MAX_STEPS], 1);
    free(s);
}

static void test_overall(void **state)
{
    (void)state;
    health_state ok[] = {HEALTH_OK, HEALTH_UNKNOWN};
    assert_int_equal(health_overall(true, ok, 2, 0), HEALTH_OK);
    assert_int_equal(health_overall(false, ok, 2, 0), HEALTH_DOWN);
    assert_int_equal(health_overall(true, ok, 2, 1), HEALTH_DEGRADED);
    health_state one_down[] = {HEALTH_DOWN, HEALTH_OK};
    assert_int_equal(health_overall(true, one_down, 2, 0), HEALTH_DEGRADED);
    health_state all_down[] = {HEALTH_DOWN, HEALTH_DOWN};
    assert_int_equal(health_overall(true, all_down, 2, 0), HEALTH_DOWN);
    health_state degraded[] = {HEALTH_DEGRADED};
    assert_int_equal(health_overall(true, degraded, 1, 0), HEALTH_DEGRADED);
    assert_int_equal(health_overall(true, NULL, 0, 0), HEALTH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_unused_provider_is_unknown),
        cmocka_unit_test(test_counts_cover_exactly_five_minutes),
        cmocka_unit_test(test_every_request_failed_is_down_and_quiet_after_failing_is_degraded),
        cmocka_unit_test(test_first_token_median),
        cmocka_unit_test(test_last_error_is_cut_at_a_character),
        cmocka_unit_test(test_stops_of_the_last_hour),
        cmocka_unit_test(test_overall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
