/* Unit tests for core/holdback: when background work gives way to runs
 * that are starting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/holdback.h"

#define MS 1000000LL

static void test_quiet_after_the_latest_start(void **state)
{
    (void)state;
    /* Waiting since 10,000 ms; a run started at 10,050. */
    assert_int_equal(holdback_until(10050 * MS, 10000 * MS), 10150 * MS);
    /* A start long after the work began to wait still gives it the quiet
     * time, unless that passes the latest. */
    assert_int_equal(holdback_until(10850 * MS, 10000 * MS), 10950 * MS);
    assert_int_equal(holdback_until(10950 * MS, 10000 * MS), 11000 * MS);
}

static void test_never_later_than_the_latest(void **state)
{
    (void)state;
    /* Starts every 50 ms: the work still runs a second after it began to
     * wait. */
    for (int64_t start = 10000; start < 12000; start += 50)
        assert_true(holdback_until(start * MS, 10000 * MS) <= 11000 * MS);
    assert_int_equal(holdback_until(10990 * MS, 10000 * MS), 11000 * MS);
}

static void test_no_start_holds_nothing_back(void **state)
{
    (void)state;
    assert_int_equal(holdback_until(0, 10000 * MS), 0);
    assert_int_equal(holdback_until(0, 0), 0);
    /* A start long before the work began to wait is over. */
    assert_int_equal(holdback_until(500 * MS, 10000 * MS), 600 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_after_the_latest_start),
        cmocka_unit_test(test_never_later_than_the_latest),
        cmocka_unit_test(test_no_start_holds_nothing_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
