/* Unit tests for core/period: UTC days, weeks from Monday and calendar
 * months, their ends and reset times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"
#include "core/period.h"

#define DAY_MS 86400000LL

/* Unix ms of y-m-d h:mi:s.ms UTC. */
static int64_t at(int64_t y, int m, int d, int h, int mi, int s, int ms)
{
    return civil_days_from(y, m, d) * DAY_MS + ((h * 60LL + mi) * 60 + s) * 1000 + ms;
}

static void check(period_kind p, int64_t t, int64_t start, int64_t end)
{
    assert_int_equal(period_start_ms(p, t), start);
    assert_int_equal(period_end_ms(p, t), end);
}

static void test_names(void **state)
{
    (void)state;
    period_kind p;
    assert_string_equal(period_name(PERIOD_DAY), "day");
    assert_string_equal(period_name(PERIOD_WEEK), "week");
    assert_string_equal(period_name(PERIOD_MONTH), "month");
    assert_string_equal(period_name(PERIOD__COUNT), "unknown");
    assert_int_equal(period_parse("week", &p), 0);
    assert_int_equal(p, PERIOD_WEEK);
    assert_int_equal(period_parse("Week", &p), -1);
    assert_int_equal(period_parse("year", &p), -1);
    assert_int_equal(period_parse("", &p), -1);
    assert_int_equal(period_parse(NULL, &p), -1);
}

/* The last millisecond of a day belongs to it; the next one starts the
 * next day. */
static void test_day(void **state)
{
    (void)state;
    check(PERIOD_DAY, at(2026, 12, 3, 8, 30, 0, 0), at(2026, 12, 3, 0, 0, 0, 0),
          at(2026, 12, 4, 0, 0, 0, 0));
    check(PERIOD_DAY, at(2026, 12, 3, 23, 59, 59, 999), at(2026, 12, 3, 0, 0, 0, 0),
          at(2026, 12, 4, 0, 0, 0, 0));
    check(PERIOD_DAY, at(2026, 12, 4, 0, 0, 0, 0), at(2026, 12, 4, 0, 0, 0, 0),
          at(2026, 12, 5, 0, 0, 0, 0));
    check(PERIOD_DAY, at(2026, 12, 31, 23, 59, 59, 0), at(2026, 12, 31, 0, 0, 0, 0),
          at(2027, 1, 1, 0, 0, 0, 0));
    check(PERIOD_DAY, 0, 0, DAY_MS);
    /* Before 1970 a day still starts at its own midnight. */
    check(PERIOD_DAY, -1, -DAY_MS, 0);
    check(PERIOD_DAY, at(1969, 12, 31, 12, 0, 0, 0), -DAY_MS, 0);
}

/* Weeks start on Monday at 00:00 UTC. 2026-11-30 is a Monday. */
static void test_week(void **state)
{
    (void)state;
    int64_t mon = at(2026, 11, 30, 0, 0, 0, 0), next = at(2026, 12, 7, 0, 0, 0, 0);
    check(PERIOD_WEEK, mon, mon, next);
    check(PERIOD_WEEK, at(2026, 12, 3, 8, 30, 0, 0), mon, next);
    check(PERIOD_WEEK, at(2026, 12, 6, 23, 59, 59, 999), mon, next);
    check(PERIOD_WEEK, next, next, at(2026, 12, 14, 0, 0, 0, 0));
    check(PERIOD_WEEK, mon - 1, at(2026, 11, 23, 0, 0, 0, 0), mon);
    /* A week across a new year: Monday 2026-12-28 to Monday 2027-01-04. */
    check(PERIOD_WEEK, at(2027, 1, 1, 10, 0, 0, 0), at(2026, 12, 28, 0, 0, 0, 0),
          at(2027, 1, 4, 0, 0, 0, 0));
    /* 1970-01-01 was a Thursday: its week began Monday 1969-12-29. */
    check(PERIOD_WEEK, 0, at(1969, 12, 29, 0, 0, 0, 0), at(1970, 1, 5, 0, 0, 0, 0));
    check(PERIOD_WEEK, at(1969, 12, 28, 23, 0, 0, 0), at(1969, 12, 22, 0, 0, 0, 0),
          at(1969, 12, 29, 0, 0, 0, 0));
}

static void test_month(void **state)
{
    (void)state;
    check(PERIOD_MONTH, at(2026, 12, 3, 8, 30, 0, 0), at(2026, 12, 1, 0, 0, 0, 0),
          at(2027, 1, 1, 0, 0, 0, 0));
    check(PERIOD_MONTH, at(2026, 11, 30, 23, 59, 59, 999), at(2026, 11, 1, 0, 0, 0, 0),
          at(2026, 12, 1, 0, 0, 0, 0));
    check(PERIOD_MONTH, at(2026, 4, 30, 12, 0, 0, 0), at(2026, 4, 1, 0, 0, 0, 0),
          at(2026, 5, 1, 0, 0, 0, 0));
    check(PERIOD_MONTH, at(2026, 1, 31, 23, 59, 59, 999), at(2026, 1, 1, 0, 0, 0, 0),
          at(2026, 2, 1, 0, 0, 0, 0));
    /* February: 28 days, 29 in a leap year (2028, 2000), 28 in 2100. */
    check(PERIOD_MONTH, at(2026, 2, 28, 23, 59, 59, 999), at(2026, 2, 1, 0, 0, 0, 0),
          at(2026, 3, 1, 0, 0, 0, 0));
    assert_int_equal(period_end_ms(PERIOD_MONTH, at(2026, 2, 10, 0, 0, 0, 0)) -
                         period_start_ms(PERIOD_MONTH, at(2026, 2, 10, 0, 0, 0, 0)),
                     28 * DAY_MS);
    check(PERIOD_MONTH, at(2028, 2, 29, 23, 59, 59, 999), at(2028, 2, 1, 0, 0, 0, 0),
          at(2028, 3, 1, 0, 0, 0, 0));
    assert_int_equal(period_end_ms(PERIOD_MONTH, at(2028, 2, 1, 0, 0, 0, 0)) -
                         at(2028, 2, 1, 0, 0, 0, 0),
                     29 * DAY_MS);
    assert_int_equal(period_end_ms(PERIOD_MONTH, at(2000, 2, 15, 0, 0, 0, 0)),
                     at(2000, 3, 1, 0, 0, 0, 0));
    assert_int_equal(period_end_ms(PERIOD_MONTH, at(2000, 2, 15, 0, 0, 0, 0)) -
                         at(2000, 2, 1, 0, 0, 0, 0),
                     29 * DAY_MS);
    assert_int_equal(period_end_ms(PERIOD_MONTH, at(2100, 2, 15, 0, 0, 0, 0)) -
                         at(2100, 2, 1, 0, 0, 0, 0),
                     28 * DAY_MS);
    check(PERIOD_MONTH, at(2028, 3, 1, 0, 0, 0, 0), at(2028, 3, 1, 0, 0, 0, 0),
          at(2028, 4, 1, 0, 0, 0, 0));
    check(PERIOD_MONTH, -1, at(1969, 12, 1, 0, 0, 0, 0), 0);
}

/* Every day of 2024 (a leap year) lies inside its day, week and month,
 * which are 1 day, 7 days, and 28 to 31 days long, each starting where the
 * one before ended. */
static void test_periods_tile(void **state)
{
    (void)state;
    for (period_kind p = PERIOD_DAY; p < PERIOD__COUNT; p++) {
        int64_t t = at(2024, 1, 1, 0, 0, 0, 0), prev_end = period_start_ms(p, t);
        while (t < at(2025, 1, 1, 0, 0, 0, 0)) {
            int64_t s = period_start_ms(p, t), e = period_end_ms(p, t);
            assert_true(s <= t && t < e);
            assert_int_equal(s, prev_end);
            int64_t len = (e - s) / DAY_MS;
            if (p == PERIOD_DAY) assert_int_equal(len, 1);
            if (p == PERIOD_WEEK) assert_int_equal(len, 7);
            if (p == PERIOD_MONTH) assert_true(len >= 28 && len <= 31);
            assert_int_equal(period_start_ms(p, e - 1), s);
            assert_int_equal(period_start_ms(p, e), e);
            prev_end = e;
            t = e;
        }
    }
}

static void test_format_time(void **state)
{
    (void)state;
    char out[PERIOD_TIME_LEN];
    period_format_time(at(2026, 12, 4, 0, 0, 0, 0), out);
    assert_string_equal(out, "2026-12-04T00:00:00Z");
    period_format_time(at(2028, 2, 29, 23, 59, 59, 999), out);
    assert_string_equal(out, "2028-02-29T23:59:59Z");
    period_format_time(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    period_format_time(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),        cmocka_unit_test(test_day),
        cmocka_unit_test(test_week),         cmocka_unit_test(test_month),
        cmocka_unit_test(test_periods_tile), cmocka_unit_test(test_format_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
