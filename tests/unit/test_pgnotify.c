/* Unit tests for store/pgnotify: the events payload "session_id:seq" that
 * instances send each other, parsed exactly. (The connection itself is
 * tested against a real server in tests/store/test_pgnotify.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/pgnotify.h"

static void test_parses_session_and_seq(void **state)
{
    (void)state;
    char sid[PGNOTIFY_SESSION_MAX];
    int64_t seq = 0;
    assert_int_equal(pgnotify_parse_events("ses_01a2:42", sid, sizeof sid, &seq), 0);
    assert_string_equal(sid, "ses_01a2");
    assert_int_equal(seq, 42);
    /* The seq follows the last colon, so a session id may hold colons. */
    assert_int_equal(pgnotify_parse_events("a:b:9223372036854775807", sid, sizeof sid, &seq), 0);
    assert_string_equal(sid, "a:b");
    assert_int_equal(seq, INT64_MAX);
}

static void test_refuses_malformed_payloads(void **state)
{
    (void)state;
    char sid[8] = "keep";
    int64_t seq = 7;
    const char *bad[] = {
        "",           "ses",    ":5",     "ses:",   "ses:0",
        "ses:07",     "ses:-1", "ses:1x", "ses: 1", "ses:9223372036854775808",
        "12345678:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pgnotify_parse_events(bad[i], sid, sizeof sid, &seq), -1);
        assert_string_equal(sid, "keep");
        assert_int_equal(seq, 7);
    }
    /* The longest session id that fits. */
    assert_int_equal(pgnotify_parse_events("1234567:1", sid, sizeof sid, &seq), 0);
    assert_string_equal(sid, "1234567");
    assert_int_equal(seq, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_session_and_seq),
        cmocka_unit_test(test_refuses_malformed_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
