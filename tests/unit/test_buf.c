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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_nul),
        cmocka_unit_test(test_cap_is_exact),
        cmocka_unit_test(test_consume_and_reset),
        cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
