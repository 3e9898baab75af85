/* Unit tests for core/timefmt: RFC 3339 UTC timestamps with milliseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/timefmt.h"

/* A time and its text. */
typedef struct {
    int64_t ms;
    const char *text;
} timefmt_case;

/* Pairs checked in both directions; the values were computed independently
 * (Python's datetime in UTC). */
static const timefmt_case known[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {1795514400123, "2026-11-24T10:00:00.123Z"},
    {1709210096789, "2024-02-29T12:34:56.789Z"},
    {951782400000, "2000-02-29T00:00:00.000Z"},
    {4107542399999, "2100-02-28T23:59:59.999Z"},
    {4107542400000, "2100-03-01T00:00:00.000Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {-86400000, "1969-12-31T00:00:00.000Z"},
    {-86400001, "1969-12-30T23:59:59.999Z"},
    {-310405849989, "1960-03-01T08:09:10.011Z"},
    {-2208988800000, "1900-01-01T00:00:00.000Z"},
    {-62135596800000, "0001-01-01T00:00:00.000Z"},
    {-62167219200000, "0000-01-01T00:00:00.000Z"},
};

static void test_format_known(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char out[TIMEFMT_LEN];
        memset(out, 'x', sizeof out);
        timefmt_rfc3339(known[i].ms, out);
        assert_string_equal(out, known[i].text);
        assert_int_equal(strlen(out), TIMEFMT_LEN - 1);
    }
}

/* Times of one second reuse its text; each still gets its own
 * milliseconds, and the next second, or an earlier one, its own text. */
static void test_format_within_a_second(void **state)
{
    (void)state;
    static const timefmt_case seq[] = {
        {1795514400123, "2026-11-24T10:00:00.123Z"},
        {1795514400999, "2026-11-24T10:00:00.999Z"},
        {1795514400000, "2026-11-24T10:00:00.000Z"},
        {1795514401000, "2026-11-24T10:00:01.000Z"},
        {1795514400500, "2026-11-24T10:00:00.500Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-999, "1969-12-31T23:59:59.001Z"},
        {-1000, "1969-12-31T23:59:59.000Z"},
        {-1001, "1969-12-31T23:59:58.999Z"},
        {0, "1970-01-01T00:00:00.000Z"},
        {999, "1970-01-01T00:00:00.999Z"},
        {INT64_MAX, "9999-12-31T23:59:59.999Z"},
        {253402300799000, "9999-12-31T23:59:59.000Z"},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        char out[TIMEFMT_LEN];
        memset(out, 'x', sizeof out);
        timefmt_rfc3339(seq[i].ms, out);
        assert_string_equal(out, seq[i].text);
    }
}

static void test_parse_known(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int64_t ms = 12345;
        assert_int_equal(timefmt_parse(known[i].text, &ms), 0);
        assert_int_equal(ms, known[i].ms);
    }
}

static void test_format_clamps(void **state)
{
    (void)state;
    char out[TIMEFMT_LEN];
    timefmt_rfc3339(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    timefmt_rfc3339(253402300800000, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    timefmt_rfc3339(INT64_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00.000Z");
    timefmt_rfc3339(-62167219200001, out);
    assert_string_equal(out, "0000-01-01T00:00:00.000Z");
}

static void test_parse_without_ms(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(timefmt_parse("2026-11-24T10:00:00Z", &ms), 0);
    assert_int_equal(ms, 1795514400000);
    assert_int_equal(timefmt_parse("1969-12-31T23:59:59Z", &ms), 0);
    assert_int_equal(ms, -1000);
}

/*
 * Every day from year 0000 to 9999, each at a different time of day: the
 * text parses back to the same instant, and the texts sort in time order,
 * which together with the known pairs pins the calendar down.
 */
static void test_round_trip_every_day(void **state)
{
    (void)state;
    const int64_t day = 86400000;
    char prev[TIMEFMT_LEN] = "";
    int64_t first = -62167219200000 / day;
    int64_t last = 253402300799999 / day;
    for (int64_t d = first; d <= last; d++) {
        int64_t ms = d * day + (d * 7919777 % day + day) % day;
        char out[TIMEFMT_LEN];
        int64_t back = 0;
        timefmt_rfc3339(ms, out);
        assert_int_equal(timefmt_parse(out, &back), 0);
        if (back != ms)
            fail_msg("%s parsed as %lld, want %lld", out, (long long)back, (long long)ms);
        if (strcmp(prev, out) >= 0) fail_msg("%s does not sort after %s", out, prev);
        memcpy(prev, out, sizeof prev);
    }
    assert_string_equal(prev, "9999-12-31T05:31:24.192Z");
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "2026-11-24",
        "2026-11-24T10:00:00",
        "2026-11-24T10:00:00.123",
        "2026-11-24T10:00:00.123z",
        "2026-11-24t10:00:00.123Z",
        "2026-11-24 10:00:00.123Z",
        "2026-11-24T10:00:00.123+00:00",
        "2026-11-24T10:00:00+01:00",
        "2026-11-24T10:00:00.123Zx",
        "2026-11-24T10:00:00.123Z\n",
        " 2026-11-24T10:00:00.123Z",
        "2026-11-24T10:00:00.12Z",
        "2026-11-24T10:00:00.1234Z",
        "2026-11-24T10:00:00,123Z",
        "2026-11-24T10:00:00.Z",
        "2026-11-24T10:00:00.12aZ",
        "2026-1-24T10:00:00.123Z",
        "+026-11-24T10:00:00.123Z",
        "-026-11-24T10:00:00.123Z",
        "20261124T100000Z",
        "2026-13-01T00:00:00.000Z",
        "2026-00-01T00:00:00.000Z",
        "2026-11-00T00:00:00.000Z",
        "2026-11-31T00:00:00.000Z",
        "2026-02-30T00:00:00.000Z",
        "2023-02-29T00:00:00.000Z",
        "2100-02-29T00:00:00.000Z",
        "2026-11-24T24:00:00.000Z",
        "2026-11-24T10:60:00.000Z",
        "2026-11-24T10:00:60.000Z",
        "2026-11-24T1a:00:00.000Z",
        "2026-11-24T10-00-00.000Z",
        "2026/11/24T10:00:00.000Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 777;
        if (timefmt_parse(bad[i], &ms) != -1) fail_msg("accepted \"%s\"", bad[i]);
        /* A failed parse leaves the output alone. */
        assert_int_equal(ms, 777);
    }
    int64_t ms = 777;
    assert_int_equal(timefmt_parse(NULL, &ms), -1);
    /* The edges of each range are accepted. */
    assert_int_equal(timefmt_parse("2024-12-31T23:59:59.999Z", &ms), 0);
    assert_int_equal(ms, 1735689599999);
    assert_int_equal(timefmt_parse("2026-01-01T00:00:00.000Z", &ms), 0);
    assert_int_equal(ms, 1767225600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known),           cmocka_unit_test(test_parse_known),
        cmocka_unit_test(test_format_clamps),          cmocka_unit_test(test_parse_without_ms),
        cmocka_unit_test(test_round_trip_every_day),   cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_format_within_a_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
