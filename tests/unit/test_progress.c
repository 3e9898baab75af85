/* Unit tests for core/progress: the pacing of one execution's progress,
 * on a clock the tests set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/progress.h"

/* Takes at now and checks what came out: expected < 0 means nothing. */
static void take(progress_pace *p, int64_t now, double expected, const char *message)
{
    progress_update u;
    bool got = progress_take(p, now, &u);
    if (expected < 0) {
        assert_false(got);
        return;
    }
    assert_true(got);
    assert_true(u.progress == expected);
    if (message)
        assert_string_equal(u.message, message);
    else
        assert_null(u.message);
    free(u.message);
}

static void test_first_update_is_shown_at_once(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    assert_int_equal(progress_due(&p), -1);
    take(&p, 1000, -1, NULL);
    progress_offer(&p, 1, 10, "one");
    assert_int_equal(progress_due(&p), 0);
    take(&p, 1000, 1, "one");
    assert_int_equal(progress_due(&p), -1);
    take(&p, 1000, -1, NULL);
    progress_cleanup(&p);
}

static void test_updates_within_the_interval_keep_the_latest(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    progress_offer(&p, 1, 100, "a");
    take(&p, 1000, 1, "a");
    for (int i = 2; i <= 1000; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        progress_offer(&p, i, 100, m);
        take(&p, 1000 + i / 10, -1, NULL); /* up to 1100 ms: inside the window */
    }
    assert_int_equal(progress_due(&p), 1250);
    take(&p, 1249, -1, NULL);
    take(&p, 1250, 1000, "m1000");
    /* The next window starts when that one was shown. */
    progress_offer(&p, 1001, 100, NULL);
    assert_int_equal(progress_due(&p), 1500);
    take(&p, 1499, -1, NULL);
    take(&p, 1600, 1001, NULL);
    assert_int_equal(progress_due(&p), -1);
    progress_cleanup(&p);
}

static void test_an_update_after_a_quiet_interval_is_shown_at_once(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    progress_offer(&p, 1, -1, NULL);
    take(&p, 0, 1, NULL);
    progress_offer(&p, 2, -1, NULL);
    assert_int_equal(progress_due(&p), 250);
    take(&p, 5000, 2, NULL);
    assert_int_equal(p.shown_ms, 5000);
    progress_cleanup(&p);
}

static void test_drain_hands_over_the_held_update(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    progress_update u;
    assert_false(progress_drain(&p, &u));
    progress_offer(&p, 1, 3, "x");
    take(&p, 10, 1, "x");
    progress_offer(&p, 2, 3, "y");
    progress_offer(&p, 3, 3, "z");
    assert_true(progress_drain(&p, &u));
    assert_true(u.progress == 3 && u.total == 3);
    assert_string_equal(u.message, "z");
    free(u.message);
    assert_false(progress_drain(&p, &u));
    assert_int_equal(progress_due(&p), -1);
    progress_cleanup(&p);
}

static void test_reset_starts_a_new_execution(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    progress_offer(&p, 1, 3, "x");
    take(&p, 10, 1, "x");
    progress_offer(&p, 2, 3, "held");
    progress_reset(&p);
    assert_int_equal(p.interval_ms, 250);
    assert_int_equal(progress_due(&p), -1);
    progress_offer(&p, 7, 3, NULL);
    take(&p, 20, 7, NULL); /* shown at once again */
    progress_cleanup(&p);
}

/* A flood of one update per millisecond for 10 s shows one update at once,
 * then one per interval, and the drain gives the last. */
static void test_a_flood_is_paced(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    int shown = 0;
    double last = 0;
    for (int64_t t = 0; t < 10000; t++) {
        progress_offer(&p, (double)t + 1, 10000, "step");
        progress_update u;
        if (progress_take(&p, t, &u)) {
            shown++;
            last = u.progress;
            free(u.message);
        }
    }
    assert_int_equal(shown, 40); /* at 0, 250, ..., 9750 */
    assert_true(last == 9751);
    progress_update u;
    assert_true(progress_drain(&p, &u));
    assert_true(u.progress == 10000);
    free(u.message);
    progress_cleanup(&p);
}

static void test_messages_are_cut_at_a_character(void **state)
{
    (void)state;
    progress_pace p;
    progress_init(&p, 250);
    char *long_msg = malloc(PROGRESS_MESSAGE_MAX + 100);
    memset(long_msg, 'a', PROGRESS_MESSAGE_MAX + 99);
    long_msg[PROGRESS_MESSAGE_MAX + 99] = '\0';
    progress_offer(&p, 1, -1, long_msg);
    progress_update u;
    assert_true(progress_drain(&p, &u));
    assert_int_equal(strlen(u.message), PROGRESS_MESSAGE_MAX);
    free(u.message);

    /* "é" (two bytes) straddling the cut is left out whole. */
    memset(long_msg, 'a', PROGRESS_MESSAGE_MAX + 99);
    long_msg[PROGRESS_MESSAGE_MAX - 1] = (char)0xC3;
    long_msg[PROGRESS_MESSAGE_MAX] = (char)0xA9;
    progress_offer(&p, 1, -1, long_msg);
    assert_true(progress_drain(&p, &u));
    assert_int_equal(strlen(u.message), PROGRESS_MESSAGE_MAX - 1);
    free(u.message);

    /* Exactly the cap is kept whole; a shorter one as it is. */
    long_msg[PROGRESS_MESSAGE_MAX] = '\0';
    memset(long_msg, 'b', PROGRESS_MESSAGE_MAX);
    progress_offer(&p, 1, -1, long_msg);
    assert_true(progress_drain(&p, &u));
    assert_int_equal(strlen(u.message), PROGRESS_MESSAGE_MAX);
    free(u.message);
    progress_offer(&p, 1, -1, "short é");
    progress_offer(&p, 2, -1, "shorter");
    assert_true(progress_drain(&p, &u));
    assert_string_equal(u.message, "shorter");
    free(u.message);
    free(long_msg);
    progress_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_update_is_shown_at_once),
        cmocka_unit_test(test_updates_within_the_interval_keep_the_latest),
        cmocka_unit_test(test_an_update_after_a_quiet_interval_is_shown_at_once),
        cmocka_unit_test(test_drain_hands_over_the_held_update),
        cmocka_unit_test(test_reset_starts_a_new_execution),
        cmocka_unit_test(test_a_flood_is_paced),
        cmocka_unit_test(test_messages_are_cut_at_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
