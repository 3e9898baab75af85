/* Unit tests for lib/buf: the capped growable buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"

static void test_append_and_nul(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_append_str(&b, "hello"), 0);
    assert_int_equal(buf_append_char(&b, ' '), 0);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "hello 42-x");
    buf_cleanup(&b);
}

static void test_cap_is_exact(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append_str(&b, "12345678"), 0);
    assert_int_equal(buf_append_char(&b, '9'), BUF_TOOBIG);
    assert_int_equal(buf_printf(&b, "%s", "x"), BUF_TOOBIG);
    /* A failed append leaves the contents as they were. */
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    buf_cleanup(&b);
}

/* With its room allocated up to the cap, appends take the way without a
 * call, and still stop exactly at the cap. */
static void test_room_then_cap(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_reserve(&b, 8), 0);
    assert_int_equal(b.alloc, 9);
    assert_int_equal(buf_append(&b, "1234567", 7), 0);
    assert_int_equal(buf_append_char(&b, '8'), 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append_char(&b, '9'), BUF_TOOBIG);
    assert_int_equal(buf_append_str(&b, "9"), BUF_TOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    /* Emptied, the same room takes a whole cap again. */
    buf_reset(&b);
    assert_int_equal(buf_append_str(&b, "abcdefgh"), 0);
    assert_int_equal(buf_append(&b, "i", 1), BUF_TOOBIG);
    assert_string_equal(b.data, "abcdefgh");
    assert_int_equal(b.alloc, 9);
    buf_cleanup(&b);
    /* An empty append to a buffer never written allocates its string. */
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, NULL, 0), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    buf_cleanup(&b);
}

static void test_consume_and_reset(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64);
    buf_append_str(&b, "abcdef");
    buf_consume(&b, 2);
    assert_string_equal(b.data, "cdef");
    buf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_append_str(&b, "z");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
}

static void test_detach(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64);
    size_t len = 99;
    char *empty = buf_detach(&b, &len);
    assert_string_equal(empty, "");
    assert_int_equal(len, 0);
    free(empty);
    buf_append_str(&b, "grow me past the first allocation of sixty-four bytes? no.");
    char *s = buf_detach(&b, &len);
    assert_int_equal(len, strlen(s));
    assert_null(b.data);
    free(s);
}

static void test_i64_text(void **state)
{
    (void)state;
    char t[BUF_I64_LEN];
    assert_int_equal(buf_i64_text(t, 0), 1);
    assert_string_equal(t, "0");
    assert_int_equal(buf_i64_text(t, 7), 1);
    assert_string_equal(t, "7");
    assert_int_equal(buf_i64_text(t, -42), 3);
    assert_string_equal(t, "-42");
    assert_int_equal(buf_i64_text(t, 1732000000123), 13);
    assert_string_equal(t, "1732000000123");
    assert_int_equal(buf_i64_text(t, INT64_MAX), 19);
    assert_string_equal(t, "9223372036854775807");
    assert_int_equal(buf_i64_text(t, INT64_MIN), 20);
    assert_string_equal(t, "-9223372036854775808");

    buf b;
    buf_init(&b, 6);
    assert_int_equal(buf_append_i64(&b, -12345), 0);
    assert_string_equal(b.data, "-12345");
    /* Past the cap: refused whole, the contents unchanged. */
    buf_reset(&b);
    assert_int_equal(buf_append_str(&b, "ab"), 0);
    assert_int_equal(buf_append_i64(&b, 12345), BUF_TOOBIG);
    assert_string_equal(b.data, "ab");
    buf_cleanup(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 1000);
    assert_int_equal(buf_reserve(&b, 300), 0);
    assert_true(b.alloc >= 301);
    char *before = b.data;
    for (int i = 0; i < 300; i++) assert_int_equal(buf_append_char(&b, 'x'), 0);
    /* No growth was needed for what was reserved. */
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.len, 300);
    assert_int_equal(buf_reserve(&b, 701), BUF_TOOBIG);
    assert_int_equal(buf_reserve(&b, 700), 0);
    buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_nul), cmocka_unit_test(test_cap_is_exact),
        cmocka_unit_test(test_room_then_cap),  cmocka_unit_test(test_consume_and_reset),
        cmocka_unit_test(test_detach),         cmocka_unit_test(test_i64_text),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
