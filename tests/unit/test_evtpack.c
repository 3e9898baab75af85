/* Unit tests for core/evtpack: several encoded events in one text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/evtpack.h"

static const char *J1 = "{\"type\":\"status\",\"seq\":7,\"status\":\"responding\"}";
static const char *J2 = "{\"type\":\"token\",\"seq\":8,\"text\":\"a\\tb\"}";

static void test_lines_read_back(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 4096);
    assert_int_equal(evtpack_append(&b, 7, "status", J1, strlen(J1)), 0);
    assert_int_equal(evtpack_append(&b, 8, "token", J2, strlen(J2)), 0);
    assert_int_equal(b.len, strlen(J1) + strlen(J2) + strlen("7\tstatus\t\n8\ttoken\t\n"));
    const char *at = b.data, *end = b.data + b.len;
    evtpack_item it;
    assert_true(evtpack_next(&at, end, &it));
    assert_int_equal(it.seq, 7);
    assert_string_equal(it.type, "status");
    assert_int_equal(it.json_len, strlen(J1));
    assert_memory_equal(it.json, J1, it.json_len);
    assert_true(evtpack_next(&at, end, &it));
    assert_int_equal(it.seq, 8);
    assert_string_equal(it.type, "token");
    assert_int_equal(it.json_len, strlen(J2));
    assert_memory_equal(it.json, J2, it.json_len);
    assert_ptr_equal(at, end);
    assert_false(evtpack_next(&at, end, &it));
    buf_cleanup(&b);
}

static void test_append_past_the_cap(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 20);
    assert_int_equal(evtpack_append(&b, 1, "token", J2, strlen(J2)), BUF_TOOBIG);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
}

/* Reads text; returns how many lines were read before evtpack_next
 * refused one or the text ended. */
static int lines_read(const char *text)
{
    const char *at = text, *end = text + strlen(text);
    evtpack_item it;
    int n = 0;
    while (evtpack_next(&at, end, &it)) n++;
    return n;
}

static void test_what_is_not_a_line_stops_the_read(void **state)
{
    (void)state;
    assert_int_equal(lines_read(""), 0);
    assert_int_equal(lines_read("1\ttoken\t{}\n2\ttoken\t{}\n"), 2);
    /* Each of these stops the read at the second line. */
    const char *bad[] = {
        "1\ttoken\t{}\n0\ttoken\t{}\n",                            /* seq 0 */
        "1\ttoken\t{}\n-2\ttoken\t{}\n",                           /* a sign */
        "1\ttoken\t{}\n02\ttoken\t{}\n",                           /* a leading zero */
        "1\ttoken\t{}\n1234567890123456789\ttoken\t{}\n",          /* 19 digits */
        "1\ttoken\t{}\n2token\t{}\n",                              /* no tab */
        "1\ttoken\t{}\n2\t\t{}\n",                                 /* no type */
        "1\ttoken\t{}\n2\tToken\t{}\n",                            /* not a type name */
        "1\ttoken\t{}\n2\tabcdefghijklmnopqrstuvwxyzabcdef\t{}\n", /* 32 letters */
        "1\ttoken\t{}\n2\ttoken\t{}",                              /* no newline */
        "1\ttoken\t{}\n2\ttoken\t\n",                              /* no JSON */
        "1\ttoken\t{}\n2\ttoken\t[1]\n",                           /* not an object */
        "1\ttoken\t{}\n2\ttoken\t{} \n",                           /* past the object */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(lines_read(bad[i]), 1);
    /* 31 letters are a type name still. */
    assert_int_equal(lines_read("3\tabcdefghijklmnopqrstuvwxyzabcde\t{}\n"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_read_back),
        cmocka_unit_test(test_append_past_the_cap),
        cmocka_unit_test(test_what_is_not_a_line_stops_the_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
