/* Unit tests for core/tzif: offsets from POSIX TZ rules, from hand-built
 * TZif data, and from the system's zone files when they are installed. The
 * expected values were checked against Python's zoneinfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/tzif.h"

static int32_t posix_at(const char *tz, int64_t t)
{
    int32_t off = -99999;
    if (tzif_posix_offset(tz, t, &off) != 0) fail_msg("\"%s\" did not parse", tz);
    return off;
}

static void test_posix_fixed(void **state)
{
    (void)state;
    assert_int_equal(posix_at("UTC0", 0), 0);
    assert_int_equal(posix_at("IST-5:30", 1767225600), 19800);
    assert_int_equal(posix_at("<-03>3", 1767225600), -10800);
    assert_int_equal(posix_at("<+0330>-3:30", 0), 12600);
    assert_int_equal(posix_at("XYZ+1:02:03", 0), -3723);
}

static void test_posix_northern(void **state)
{
    (void)state;
    const char *paris = "CET-1CEST,M3.5.0,M10.5.0/3";
    assert_int_equal(posix_at(paris, 1795514400), 3600); /* 2026-11-24T10:00Z */
    assert_int_equal(posix_at(paris, 1782907200), 7200); /* 2026-07-01T12:00Z */
    assert_int_equal(posix_at(paris, 1774745999), 3600); /* 2026-03-29T00:59:59Z */
    assert_int_equal(posix_at(paris, 1774746000), 7200); /* 2026-03-29T01:00:00Z */
    assert_int_equal(posix_at(paris, 1792889999), 7200); /* 2026-10-25T00:59:59Z */
    assert_int_equal(posix_at(paris, 1792890000), 3600); /* 2026-10-25T01:00:00Z */
    const char *ny = "EST5EDT,M3.2.0,M11.1.0";
    assert_int_equal(posix_at(ny, 1772953199), -18000);
    assert_int_equal(posix_at(ny, 1772953200), -14400);
    assert_int_equal(posix_at(ny, 1793512799), -14400);
    assert_int_equal(posix_at(ny, 1793512800), -18000);
    assert_int_equal(posix_at(ny, 4118083200), -14400); /* 2100-07-01 */
    /* Without rules the United States ones apply. */
    assert_int_equal(posix_at("EST5EDT", 1772953200), -14400);
}

static void test_posix_southern(void **state)
{
    (void)state;
    const char *sydney = "AEST-10AEDT,M10.1.0,M4.1.0/3";
    assert_int_equal(posix_at(sydney, 1775318399), 39600); /* 2026-04-04T15:59:59Z */
    assert_int_equal(posix_at(sydney, 1775318400), 36000);
    assert_int_equal(posix_at(sydney, 1791043199), 36000); /* 2026-10-03T15:59:59Z */
    assert_int_equal(posix_at(sydney, 1791043200), 39600);
    assert_int_equal(posix_at(sydney, 1767225600), 39600); /* 2026-01-01 */
}

static void test_posix_julian_rules(void **state)
{
    (void)state;
    /* DST from day 60 (March 1, Feb 29 never counted) to zero-based day 300,
     * at midnight; 2024 is a leap year. */
    const char *tz = "AAA0BBB,J60/0,300/0";
    assert_int_equal(posix_at(tz, 1709251199), 0);    /* 2024-02-29T23:59:59Z */
    assert_int_equal(posix_at(tz, 1709251200), 3600); /* 2024-03-01T00:00:00Z */
    /* Zero-based day 300 of 2024 is October 27; it ends at 00:00 BBB. */
    assert_int_equal(posix_at(tz, 1729983599), 3600); /* 2024-10-26T22:59:59Z */
    assert_int_equal(posix_at(tz, 1729983600), 0);
    /* Permanent daylight time, as RFC 8536 writes it. */
    assert_int_equal(posix_at("XXX3YYY,0/0,J365/25", 1767225600), -7200);
    assert_int_equal(posix_at("XXX3YYY,0/0,J365/25", 1782907200), -7200);
}

static void test_posix_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "U0",
                         "UTC",
                         "UTC+25",
                         "<UTC0",
                         "CET-1CEST,",
                         "CET-1CEST,M3",
                         "CET-1CEST,M13.1.0,M10.5.0",
                         "CET-1CEST,M3.6.0,M10.5.0",
                         "CET-1CEST,M3.5.7,M10.5.0",
                         "CET-1CEST,M3.5.0,M10.5.0/168",
                         "CET-1CEST,J0,J5",
                         "CET-1CEST,M3.5.0,M10.5.0x",
                         "UTC0 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t off = 12345;
        if (tzif_posix_offset(bad[i], 0, &off) != -1) fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(off, 12345);
    }
    int32_t off;
    assert_int_equal(tzif_posix_offset(NULL, 0, &off), -1);
}

/* A hand-built TZif file: a minimal version 1 block, then a version 2 block
 * with types 0 (+100 s) and 1 (+3600 s), transitions at 1000 (to 1) and
 * 2000 (to 0), and the footer. */
typedef struct tzif_builder {
    unsigned char data[512];
    size_t len;
} tzif_builder;

static void put32(tzif_builder *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--) b->data[b->len++] = (unsigned char)(v >> (8 * i));
}

static void put_header(tzif_builder *b, char version, uint32_t timecnt, uint32_t typecnt)
{
    memcpy(b->data + b->len, "TZif", 4);
    b->data[b->len + 4] = (unsigned char)version;
    memset(b->data + b->len + 5, 0, 15);
    b->len += 20;
    put32(b, 0);       /* isutcnt */
    put32(b, 0);       /* isstdcnt */
    put32(b, 0);       /* leapcnt */
    put32(b, timecnt); /* timecnt */
    put32(b, typecnt); /* typecnt */
    put32(b, 4);       /* charcnt */
}

static void put_type(tzif_builder *b, int32_t utoff)
{
    put32(b, (uint32_t)utoff);
    b->data[b->len++] = 0; /* isdst */
    b->data[b->len++] = 0; /* desigidx */
}

static void build(tzif_builder *b, char version, const char *footer, unsigned char last_type)
{
    b->len = 0;
    if (version >= '2') {
        put_header(b, version, 0, 1);
        put_type(b, 0);
        memcpy(b->data + b->len, "ABC", 4), b->len += 4;
    }
    put_header(b, version, 2, 2);
    int tsize = version >= '2' ? 8 : 4;
    if (tsize == 8) put32(b, 0);
    put32(b, 1000);
    if (tsize == 8) put32(b, 0);
    put32(b, 2000);
    b->data[b->len++] = 1;
    b->data[b->len++] = last_type;
    put_type(b, 100);
    put_type(b, 3600);
    memcpy(b->data + b->len, "ABC", 4), b->len += 4;
    if (footer) {
        size_t n = strlen(footer);
        memcpy(b->data + b->len, footer, n);
        b->len += n;
    }
}

static int32_t tzif_at(const tzif_builder *b, int64_t t)
{
    int32_t off = -99999;
    if (tzif_offset(b->data, b->len, t, &off) != 0) fail_msg("the data did not parse");
    return off;
}

static void test_tzif_built(void **state)
{
    (void)state;
    tzif_builder b;
    build(&b, '2', "\nXYZ-2\n", 0);
    assert_int_equal(tzif_at(&b, -5000), 100); /* before the first: type 0 */
    assert_int_equal(tzif_at(&b, 999), 100);
    assert_int_equal(tzif_at(&b, 1000), 3600);
    assert_int_equal(tzif_at(&b, 1999), 3600);
    assert_int_equal(tzif_at(&b, 2000), 7200); /* from the last: the footer */
    assert_int_equal(tzif_at(&b, INT64_MAX), 7200);

    /* An empty footer: the last transition's type stays in force. */
    build(&b, '3', "\n\n", 0);
    assert_int_equal(tzif_at(&b, 5000), 100);
    build(&b, '2', "", 1);
    assert_int_equal(tzif_at(&b, 5000), 3600);

    /* Version 1: 32-bit times, no footer. */
    build(&b, '\0', NULL, 1);
    assert_int_equal(tzif_at(&b, 1500), 3600);
    assert_int_equal(tzif_at(&b, 99999), 3600);
    assert_int_equal(tzif_at(&b, INT64_MIN), 100);
}

static void test_tzif_malformed(void **state)
{
    (void)state;
    tzif_builder b;
    int32_t off = 12345;
    build(&b, '2', "\nXYZ-2\n", 0);
    /* Every truncation that cuts into the data blocks is refused. */
    for (size_t n = 0; n < b.len - 7; n++)
        if (tzif_offset(b.data, n, 1500, &off) != -1) fail_msg("accepted %zu bytes", n);
    /* A footer without its final newline, or not starting with one. */
    assert_int_equal(tzif_offset(b.data, b.len - 1, 1500, &off), -1);
    b.data[b.len - 7] = 'x';
    assert_int_equal(tzif_offset(b.data, b.len, 1500, &off), -1);
    /* A footer that is not a TZ rule, used for times after the last. */
    build(&b, '2', "\nnope\n", 0);
    assert_int_equal(tzif_offset(b.data, b.len, 5000, &off), -1);
    /* A transition naming a type that does not exist. */
    build(&b, '2', "", 7);
    assert_int_equal(tzif_offset(b.data, b.len, 5000, &off), -1);
    /* Bad magic. */
    build(&b, '2', "", 0);
    b.data[0] = 'X';
    assert_int_equal(tzif_offset(b.data, b.len, 5000, &off), -1);
    assert_int_equal(tzif_offset(NULL, 0, 5000, &off), -1);
    assert_int_equal(off, 12345);
}

/* Reads a system zone file; returns NULL when it is not installed. */
static unsigned char *read_zone(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *data = malloc(1 << 20);
    *len = fread(data, 1, 1 << 20, f);
    fclose(f);
    return data;
}

static void test_system_zones(void **state)
{
    (void)state;
    static const struct {
        const char *zone;
        int64_t t;
        int32_t offset;
    } cases[] = {
        {"Europe/Paris", 1795514400, 3600},
        {"Europe/Paris", 1782907200, 7200},
        {"Europe/Paris", 1774745999, 3600},
        {"Europe/Paris", 1774746000, 7200},
        {"Europe/Paris", 1792889999, 7200},
        {"Europe/Paris", 1792890000, 3600},
        {"Europe/Paris", -3029443200, 561},
        {"Europe/Paris", -820540800, 3600},
        {"America/New_York", 1772953200, -14400},
        {"America/New_York", 4118083200, -14400},
        {"Australia/Sydney", 1775318400, 36000},
        {"Asia/Kolkata", 1767225600, 19800},
        {"UTC", 1767225600, 0},
    };
    size_t len;
    unsigned char *probe = read_zone("Europe/Paris", &len);
    if (!probe) skip();
    free(probe);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *data = read_zone(cases[i].zone, &len);
        assert_non_null(data);
        int32_t off = -99999;
        assert_int_equal(tzif_offset(data, len, cases[i].t, &off), 0);
        if (off != cases[i].offset)
            fail_msg("%s at %lld: %d, want %d", cases[i].zone, (long long)cases[i].t, off,
                     cases[i].offset);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posix_fixed),     cmocka_unit_test(test_posix_northern),
        cmocka_unit_test(test_posix_southern),  cmocka_unit_test(test_posix_julian_rules),
        cmocka_unit_test(test_posix_malformed), cmocka_unit_test(test_tzif_built),
        cmocka_unit_test(test_tzif_malformed),  cmocka_unit_test(test_system_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
