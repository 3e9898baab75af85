/* Unit tests for core/civil: proleptic Gregorian dates as day numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/civil.h"

static void check_date(int64_t days, int64_t y, int m, int d)
{
    assert_int_equal(civil_days_from(y, m, d), days);
    int64_t gy;
    int gm, gd;
    civil_from_days(days, &gy, &gm, &gd);
    assert_int_equal(gy, y);
    assert_int_equal(gm, m);
    assert_int_equal(gd, d);
}

static void test_known_dates(void **state)
{
    (void)state;
    check_date(0, 1970, 1, 1);
    check_date(-1, 1969, 12, 31);
    check_date(59, 1970, 3, 1);
    check_date(10957, 2000, 1, 1);
    check_date(11016, 2000, 2, 29);
    check_date(11017, 2000, 3, 1);
    check_date(20781, 2026, 11, 24);
    check_date(2932896, 9999, 12, 31);
    check_date(-719528, 0, 1, 1);
    check_date(-719469, 0, 2, 29); /* year 0 is a leap year */
    check_date(-719468, 0, 3, 1);
    check_date(-719529, -1, 12, 31);
    check_date(-25567, 1900, 1, 1);
    check_date(-25508, 1900, 3, 1); /* 1900 has no February 29 */
}

/* Every day for 3000 years around 1970 follows the day before it. */
static void test_round_trip_is_continuous(void **state)
{
    (void)state;
    int64_t y;
    int m, d;
    civil_from_days(-548000, &y, &m, &d);
    for (int64_t days = -548000; days < 548000; days++) {
        assert_int_equal(civil_days_from(y, m, d), days);
        int64_t ny;
        int nm, nd;
        civil_from_days(days + 1, &ny, &nm, &nd);
        if (d < civil_month_days(y, m)) {
            assert_true(ny == y && nm == m && nd == d + 1);
        } else if (m < 12) {
            assert_true(ny == y && nm == m + 1 && nd == 1);
        } else {
            assert_true(ny == y + 1 && nm == 1 && nd == 1);
        }
        y = ny, m = nm, d = nd;
    }
}

/* The callers' far ends (tzif clamps times to about ±300000 years). */
static void test_far_years(void **state)
{
    (void)state;
    int64_t y;
    int m, d;
    int64_t days = civil_days_from(317000, 6, 15);
    civil_from_days(days, &y, &m, &d);
    assert_true(y == 317000 && m == 6 && d == 15);
    days = civil_days_from(-317000, 6, 15);
    civil_from_days(days, &y, &m, &d);
    assert_true(y == -317000 && m == 6 && d == 15);
    /* 400 years are always 146097 days. */
    assert_int_equal(civil_days_from(2400, 1, 1) - civil_days_from(2000, 1, 1), 146097);
    assert_int_equal(civil_days_from(-400, 1, 1) - civil_days_from(-800, 1, 1), 146097);
}

static void test_leap_and_month_days(void **state)
{
    (void)state;
    assert_true(civil_is_leap(2000));
    assert_true(civil_is_leap(2024));
    assert_true(civil_is_leap(0));
    assert_true(civil_is_leap(-4));
    assert_false(civil_is_leap(1900));
    assert_false(civil_is_leap(2100));
    assert_false(civil_is_leap(2023));
    assert_false(civil_is_leap(-1));
    static const int days_2023[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) {
        assert_int_equal(civil_month_days(2023, m), days_2023[m - 1]);
        assert_int_equal(civil_month_days(2024, m), m == 2 ? 29 : days_2023[m - 1]);
    }
    assert_int_equal(civil_month_days(1900, 2), 28);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_dates),
        cmocka_unit_test(test_round_trip_is_continuous),
        cmocka_unit_test(test_far_years),
        cmocka_unit_test(test_leap_and_month_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
