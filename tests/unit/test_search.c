/* Unit tests for core/search: the checked search text and its LIKE and
 * FTS5 forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/search.h"

static void assert_pattern(const char *q, const char *want)
{
    char *p = search_like_pattern(q);
    assert_string_equal(p, want);
    free(p);
}

static void assert_phrase(const char *q, const char *want)
{
    char *p = search_fts_phrase(q);
    assert_string_equal(p, want);
    free(p);
}

static void test_like_pattern_escapes_and_folds_ascii(void **state)
{
    (void)state;
    assert_pattern("", "%%");
    assert_pattern("Lisbon", "%lisbon%");
    assert_pattern("100% SURE", "%100\\% sure%");
    assert_pattern("snake_Case", "%snake\\_case%");
    assert_pattern("C:\\Temp", "%c:\\\\temp%");
    assert_pattern("%_\\", "%\\%\\_\\\\%");
    /* Only A-Z fold; other letters and bytes stay as they are. */
    assert_pattern("ÉCOLE", "%École%");
    assert_pattern("[@`{Z]", "%[@`{z]%");
}

static void test_fts_phrase_quotes(void **state)
{
    (void)state;
    assert_phrase("", "\"\"");
    assert_phrase("zebra", "\"zebra\"");
    assert_phrase("ZEBRA Über", "\"zebra Über\"");
    assert_phrase("say \"hi\"", "\"say \"\"hi\"\"\"");
    assert_phrase("a OR b*", "\"a or b*\"");
    assert_phrase("\"", "\"\"\"\"");
}

static void test_text_check(void **state)
{
    (void)state;
    char err[128] = "";
    char q[SEARCH_TEXT_MAX + 2];
    memset(q, 'x', SEARCH_TEXT_MAX);
    q[SEARCH_TEXT_MAX] = '\0';
    assert_int_equal(search_text_check(q, err, sizeof err), 0);
    assert_int_equal(search_text_check("", err, sizeof err), 0);
    assert_int_equal(search_text_check("Écol€", err, sizeof err), 0);
    q[SEARCH_TEXT_MAX] = 'x';
    q[SEARCH_TEXT_MAX + 1] = '\0';
    assert_int_equal(search_text_check(q, err, sizeof err), -1);
    assert_string_equal(err, "q must be at most 200 bytes, got 201");
    assert_int_equal(search_text_check("\xE9t\xE9", err, sizeof err), -1);
    assert_string_equal(err, "q must be UTF-8 text");
    assert_int_equal(search_text_check("\xED\xA0\x80", err, sizeof err), -1);
}

static void test_text_chars(void **state)
{
    (void)state;
    assert_int_equal(search_text_chars(""), 0);
    assert_int_equal(search_text_chars("ab"), 2);
    /* Three characters in six bytes: enough for a trigram. */
    assert_int_equal(search_text_chars("été"), 3);
    assert_int_equal(search_text_chars("€€"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_like_pattern_escapes_and_folds_ascii),
        cmocka_unit_test(test_fts_phrase_quotes),
        cmocka_unit_test(test_text_check),
        cmocka_unit_test(test_text_chars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
