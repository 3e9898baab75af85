/* Unit tests for lib/clock: the clocks move forward, and a deadline for
 * pthread_cond_timedwait is normalised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "lib/clock.h"

static void test_monotonic_moves_forward(void **state)
{
    (void)state;
    int64_t a = clock_mono_ns();
    clock_sleep_ms(2);
    int64_t b = clock_mono_ns();
    assert_true(b - a >= 2000000);
    assert_true(clock_mono_ms() >= a / 1000000);
}

static void test_deadline_is_ms_from_now_and_normalised(void **state)
{
    (void)state;
    for (int64_t ms = 0; ms <= 2999; ms += 7) {
        struct timespec now, dl;
        clock_gettime(CLOCK_REALTIME, &now);
        clock_deadline(&dl, ms);
        assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
        int64_t diff =
            ((int64_t)dl.tv_sec - now.tv_sec) * 1000 + (dl.tv_nsec - now.tv_nsec) / 1000000;
        /* The two readings are a few microseconds apart at most. */
        assert_true(diff >= ms && diff <= ms + 5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic_moves_forward),
        cmocka_unit_test(test_deadline_is_ms_from_now_and_normalised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
