/* Unit tests for lib/log's log_limit: the token bucket for log lines and
 * its summaries, on a clock the tests set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/log.h"

/* How many of n lines at now are written. */
static int takes(log_limit *l, int64_t now, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) ok += log_limit_take(l, now);
    return ok;
}

static void test_burst_then_rate(void **state)
{
    (void)state;
    log_limit l;
    log_limit_init(&l, 10, 50, 1000);
    assert_int_equal(takes(&l, 1000, 60), 50);
    assert_int_equal(l.dropped, 10);
    /* 10 a second: one line every 100 ms, not before. */
    assert_int_equal(takes(&l, 1099, 1), 0);
    assert_int_equal(takes(&l, 1100, 2), 1);
    assert_int_equal(takes(&l, 1150, 1), 0);
    assert_int_equal(takes(&l, 1200, 1), 1);
    /* A second later: ten lines. */
    assert_int_equal(takes(&l, 2200, 20), 10);
    assert_int_equal(l.dropped, 10 + 1 + 1 + 1 + 10);
}

static void test_fractions_add_up(void **state)
{
    (void)state;
    log_limit l;
    log_limit_init(&l, 3, 2, 0);
    assert_int_equal(takes(&l, 0, 3), 2);
    /* 3 a second is one every 333.3 ms: 334 ms gives one, 333 ms not. */
    assert_int_equal(takes(&l, 333, 1), 0);
    assert_int_equal(takes(&l, 334, 1), 1);
    /* 0.002 of a line was left over; 333 ms more makes 1.001 lines. */
    assert_int_equal(takes(&l, 667, 1), 1);
    assert_int_equal(takes(&l, 999, 1), 0);

    /* Refilling stops at the burst, so a bucket of one line keeps no
     * fraction beyond it. */
    log_limit_init(&l, 3, 1, 0);
    assert_int_equal(takes(&l, 0, 1), 1);
    assert_int_equal(takes(&l, 334, 1), 1);
    assert_int_equal(takes(&l, 667, 1), 0);
    assert_int_equal(takes(&l, 668, 1), 1);
}

static void test_a_quiet_server_refills_to_the_burst_only(void **state)
{
    (void)state;
    log_limit l;
    log_limit_init(&l, 20, 100, 0);
    assert_int_equal(takes(&l, 0, 100), 100);
    assert_int_equal(takes(&l, 3600000, 1000), 100);
    /* A huge gap does not overflow. */
    assert_int_equal(takes(&l, INT64_MAX / 2, 1000), 100);
    /* A clock that went back adds nothing. */
    assert_int_equal(takes(&l, 0, 5), 0);
}

static void test_summaries(void **state)
{
    (void)state;
    log_limit l;
    log_limit_init(&l, 1, 2, 0);
    int64_t span = -1;
    assert_int_equal(log_limit_due(&l, 10000), -1);
    assert_int_equal(log_limit_flush(&l, 500, &span), 0);
    assert_int_equal(span, 0);
    assert_int_equal(takes(&l, 0, 2), 2);
    assert_int_equal(takes(&l, 400, 3), 0);
    assert_int_equal(log_limit_due(&l, 10000), 10400);
    /* 4.6 s refill a bucket of two. */
    assert_int_equal(takes(&l, 5000, 7), 2);
    assert_int_equal(log_limit_due(&l, 10000), 10400);
    assert_int_equal(log_limit_flush(&l, 10400, &span), 3 + 5);
    assert_int_equal(span, 10000);
    /* A new interval starts with the next line dropped. */
    assert_int_equal(log_limit_due(&l, 10000), -1);
    assert_int_equal(takes(&l, 12000, 3), 2);
    assert_int_equal(log_limit_due(&l, 10000), 22000);
    assert_int_equal(log_limit_flush(&l, 13000, &span), 1);
    assert_int_equal(span, 1000);
}

static void test_bad_settings_count_as_one(void **state)
{
    (void)state;
    log_limit l;
    log_limit_init(&l, 0, -5, 0);
    assert_int_equal(l.rate, 1);
    assert_int_equal(l.burst, 1);
    assert_int_equal(takes(&l, 0, 3), 1);
    assert_int_equal(takes(&l, 1000, 3), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_fractions_add_up),
        cmocka_unit_test(test_a_quiet_server_refills_to_the_burst_only),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_bad_settings_count_as_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
