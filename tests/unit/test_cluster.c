/* Unit tests for app/cluster: the heartbeat and sweep interval that an
 * orphan time-out gives. (Heartbeats, sweeps and control messages run
 * against real instances in tests/multi/.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "app/cluster.h"

static void test_interval_is_a_sixth_within_bounds(void **state)
{
    (void)state;
    assert_int_equal(cluster_interval_ms(30000), 5000);
    assert_int_equal(cluster_interval_ms(12000), 2000);
    assert_int_equal(cluster_interval_ms(3000), 500);
    assert_int_equal(cluster_interval_ms(1000), 250);
    assert_int_equal(cluster_interval_ms(86400000), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval_is_a_sixth_within_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
