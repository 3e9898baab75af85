/* Unit tests for core/jsonw: the same bytes as json_dumps, for every value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/evt.h"
#include "core/jsonw.h"

/* The flags chatplane writes with, and two that go to jansson. */
static const size_t flag_sets[] = {
    JSON_COMPACT,
    JSON_COMPACT | JSON_ENCODE_ANY,
    EVT_JSON_FLAGS,
    EVT_JSON_FLAGS | JSON_ENCODE_ANY,
    JSON_INDENT(2) | JSON_ENCODE_ANY,
    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY,
    JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(1),
    JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(2),
    JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16),
};

/* jsonw_dumps and jsonw_length agree with jansson for v under every flag
 * set, refusals included. */
static void assert_same(const json_t *v)
{
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        size_t f = flag_sets[i];
        char *want = json_dumps(v, f);
        char *got = jsonw_dumps(v, f);
        if (!want) {
            assert_null(got);
            assert_int_equal(jsonw_length(v, f), 0);
            continue;
        }
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(jsonw_length(v, f), strlen(want));
        free(want);
        free(got);
    }
}

static void test_scalars(void **state)
{
    (void)state;
    json_t *vals[] = {
        json_true(),
        json_false(),
        json_null(),
        json_integer(0),
        json_integer(-1),
        json_integer(INT64_MAX),
        json_integer(INT64_MIN),
        json_real(0.0),
        json_real(1.5),
        json_real(-2.5e-7),
        json_real(1e300),
        json_real(0.1),
        json_real(123456789.123456789),
        json_real(3.0),
        json_real(-42.0),
        json_real(-0.0),
        json_real(1e15),
        json_real(-1e15),
        json_real(999999999999999.0),
        json_real(1e16),
        json_real(4503599627370497.0),
        json_real(5.0),
        json_real(10.0),
        json_real(99.0),
        json_real(100.0),
        json_real(100000000000000.0),
        json_string(""),
        json_string("plain"),
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        assert_same(vals[i]);
        json_decref(vals[i]);
    }
}

static void test_every_byte_that_needs_escaping(void **state)
{
    (void)state;
    char s[64];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++) s[n++] = (char)c;
    memcpy(s + n, "\"\\/\x7f", 4);
    n += 4;
    json_t *v = json_stringn(s, n);
    assert_non_null(v);
    assert_same(v);
    json_decref(v);
    /* A NUL inside a string, and text beyond ASCII. */
    v = json_stringn("a\0b", 3);
    assert_same(v);
    json_decref(v);
    v = json_string("caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8 end");
    assert_same(v);
    json_decref(v);
}

/* jsonw looks at eight bytes at a time: every byte that needs escaping,
 * at every place of a longer text, and text beyond ASCII around it. */
static void test_escapes_at_every_offset(void **state)
{
    (void)state;
    const char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x7f, '/'};
    char s[48];
    for (size_t k = 0; k < sizeof specials; k++) {
        for (size_t at = 0; at < 40; at++) {
            for (size_t len = at + 1; len <= 41; len += 5) {
                for (size_t i = 0; i < len; i++) s[i] = (char)('a' + i % 26);
                s[at] = specials[k];
                json_t *v = json_stringn(s, len);
                assert_non_null(v);
                assert_same(v);
                json_decref(v);
            }
        }
        /* After a character beyond ASCII: "\xc3\xa9" is é. */
        memcpy(s,
               "abc\xc3\xa9"
               "defghij",
               12);
        s[10] = specials[k];
        json_t *v = json_stringn(s, 12);
        assert_non_null(v);
        assert_same(v);
        json_decref(v);
    }
}

static void test_containers_keep_their_order(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:[], s:{}, s:[i, {s:s, s:[n, b, f]}], s:{s:{s:i}}}", "z", "a", "m", 1,
                          "q\"uote", "v\n", "k", 1, 2.5, "\t", "deep", "er", -7);
    assert_non_null(v);
    assert_same(v);
    json_decref(v);
    v = json_array();
    assert_same(v);
    json_decref(v);
}

/* A random value: objects and arrays up to depth levels, strings of random
 * bytes that are made valid UTF-8 by jansson's own check (invalid ones
 * are replaced by plain text). */
static json_t *random_value(unsigned *seed, int depth)
{
    int kind = rand_r(seed) % (depth > 0 ? 9 : 7);
    switch (kind) {
    case 0:
        return json_integer((json_int_t)rand_r(seed) * (rand_r(seed) % 2 ? -1 : 1));
    case 1:
        /* Half of them whole numbers, which jsonw writes itself. */
        if (rand_r(seed) % 2)
            return json_real((double)(rand_r(seed) % 2000000 - 1000000) *
                             (double)(rand_r(seed) % 1000000000 + 1));
        return json_real((double)rand_r(seed) / ((double)rand_r(seed) + 1.0));
    case 2: {
        char s[24];
        size_t n = (size_t)(rand_r(seed) % (int)sizeof s);
        for (size_t i = 0; i < n; i++) s[i] = (char)(rand_r(seed) % 256);
        json_t *v = json_stringn(s, n);
        return v ? v : json_string("not utf-8");
    }
    case 3:
        return json_true();
    case 4:
        return json_false();
    case 5:
        return json_null();
    case 6:
        return json_string("text with \"quotes\" and \\ and \x01");
    case 7: {
        json_t *a = json_array();
        int n = rand_r(seed) % 5;
        for (int i = 0; i < n; i++) json_array_append_new(a, random_value(seed, depth - 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = rand_r(seed) % 5;
        for (int i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%d\t%d", rand_r(seed) % 50, i);
            json_object_set_new(o, key, random_value(seed, depth - 1));
        }
        return o;
    }
    }
}

static void test_random_values(void **state)
{
    (void)state;
    unsigned seed = 20261206;
    for (int i = 0; i < 2000; i++) {
        json_t *v = random_value(&seed, 4);
        assert_same(v);
        json_decref(v);
    }
}

static void test_refused_as_jansson_refuses(void **state)
{
    (void)state;
    /* A scalar without JSON_ENCODE_ANY. */
    json_t *v = json_integer(3);
    assert_null(json_dumps(v, JSON_COMPACT));
    assert_null(jsonw_dumps(v, JSON_COMPACT));
    json_decref(v);
    /* A string that skipped jansson's UTF-8 check, alone and in an array. */
    v = json_stringn_nocheck("\xff\xfe", 2);
    assert_same(v);
    json_t *a = json_pack("[o]", v);
    assert_same(a);
    json_decref(a);
    assert_null(jsonw_dumps(NULL, JSON_COMPACT));
}

static void test_a_full_buffer_fails(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "key", "a value longer than the cap");
    buf b;
    buf_init(&b, 10);
    assert_int_equal(jsonw_value(&b, v, JSON_COMPACT), -1);
    assert_true(b.len <= 10);
    buf_cleanup(&b);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_every_byte_that_needs_escaping),
        cmocka_unit_test(test_containers_keep_their_order),
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_escapes_at_every_offset),
        cmocka_unit_test(test_refused_as_jansson_refuses),
        cmocka_unit_test(test_a_full_buffer_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
