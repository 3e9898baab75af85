/* Unit tests for cli/term: columns, cutting and scrubbing of terminal text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/term.h"

static void test_cols_count_characters(void **state)
{
    (void)state;
    assert_int_equal(term_cols("", 0), 0);
    assert_int_equal(term_cols("abc", 3), 3);
    assert_int_equal(term_cols("a·b", strlen("a·b")), 3);
    assert_int_equal(term_cols("⠋ x", strlen("⠋ x")), 3);
    assert_int_equal(term_cols("😀", 4), 1);
    /* Bytes that are not UTF-8 take the column of the U+FFFD shown for
     * them: stray continuation bytes one each, a cut-off character one. */
    assert_int_equal(term_cols("\x80\x80", 2), 2);
    assert_int_equal(term_cols("a\xe2\x82", 3), 2);
}

static void test_fit_ends_on_a_character(void **state)
{
    (void)state;
    const char *s = "a·b·c";
    assert_int_equal(term_fit(s, strlen(s), 0), 0);
    assert_int_equal(term_fit(s, strlen(s), 1), 1);
    assert_int_equal(term_fit(s, strlen(s), 2), 3); /* "a·" */
    assert_int_equal(term_fit(s, strlen(s), 3), 4);
    assert_int_equal(term_fit(s, strlen(s), 99), strlen(s));
    assert_int_equal(term_fit("\x80\x80x", 3, 1), 1);
}

/* Cleans s with keep and repl and compares with want. */
static void check_clean(const char *s, const char *keep, const char *repl, const char *want)
{
    buf b;
    buf_init(&b, 1024);
    assert_int_equal(term_clean(&b, s, strlen(s), keep, repl), 0);
    assert_string_equal(b.data ? b.data : "", want);
    buf_cleanup(&b);
}

static void test_clean_replaces_controls(void **state)
{
    (void)state;
    check_clean("plain text", "", "?", "plain text");
    check_clean("a\033[31mred\a", "", "?", "a?[31mred?");
    check_clean("tab\there\nline", "\n\t", "?", "tab\there\nline");
    check_clean("tab\there\nline", "", " ", "tab here line");
    check_clean("del\x7f", "", "?", "del?");
    /* C1 controls as UTF-8 (U+009B is CSI), but not U+00A0 or other text. */
    check_clean("x\xC2\x9B"
                "2J\xC2\xA0é",
                "", "?", "x?2J\xC2\xA0é");
    check_clean("end\xC2", "", "?", "end\xC2");
    check_clean("", "", "?", "");
}

static void test_clean_drops_cr_before_a_kept_lf(void **state)
{
    (void)state;
    check_clean("one\r\ntwo\r", "\n", "\xEF\xBF\xBD", "one\ntwo\xEF\xBF\xBD");
    check_clean("one\r\ntwo", "", " ", "one  two");
}

static void test_clean_respects_the_cap(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 4);
    assert_int_equal(term_clean(&b, "ab\033cd", 5, "", "?"), BUF_TOOBIG);
    assert_string_equal(b.data, "ab?");
    buf_cleanup(&b);
}

static void test_env(void **state)
{
    (void)state;
    unsetenv("LC_ALL");
    unsetenv("LC_CTYPE");
    setenv("LANG", "en_US.UTF-8", 1);
    assert_true(term_env_utf8());
    setenv("LC_CTYPE", "C", 1);
    assert_false(term_env_utf8());
    setenv("LC_ALL", "de_DE.utf8", 1);
    assert_true(term_env_utf8());
    unsetenv("NO_COLOR");
    assert_true(term_env_color());
    setenv("NO_COLOR", "", 1);
    assert_true(term_env_color());
    setenv("NO_COLOR", "1", 1);
    assert_false(term_env_color());
    setenv("TERM", "dumb", 1);
    assert_false(term_env_capable());
    setenv("TERM", "xterm-256color", 1);
    assert_true(term_env_capable());
    unsetenv("TERM");
    assert_false(term_env_capable());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cols_count_characters),
        cmocka_unit_test(test_fit_ends_on_a_character),
        cmocka_unit_test(test_clean_replaces_controls),
        cmocka_unit_test(test_clean_drops_cr_before_a_kept_lf),
        cmocka_unit_test(test_clean_respects_the_cap),
        cmocka_unit_test(test_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
