/* Unit tests for tool_model_name: the names the model sees for MCP tools
 * (docs/runs.md, Model context). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/tool_source.h"

static void check_name(const char *server, const char *tool, const char *want)
{
    char *got = tool_model_name(server, tool);
    if (strcmp(got, want) != 0) fail_msg("tool_model_name = \"%s\", want \"%s\"", got, want);
    free(got);
}

static void test_joined(void **state)
{
    (void)state;
    check_name("fs", "read_file", "fs__read_file");
    check_name("fake", "lookup", "fake__lookup");
    check_name("a-b_c", "X-9", "a-b_c__X-9");
    check_name("", "", "__");
}

static void test_bare(void **state)
{
    (void)state;
    check_name(NULL, "calc", "calc");
    check_name(NULL, "a b.c", "a_b_c");
    check_name(NULL, NULL, "");
}

static void test_sanitized(void **state)
{
    (void)state;
    check_name("my server", "get.thing", "my_server__get_thing");
    check_name("git@hub", "a/b:c", "git_hub__a_b_c");
    /* One '_' per character, however many bytes it takes in UTF-8. */
    check_name("caf\xc3\xa9", "na\xc3\xafve", "caf___na_ve");
    check_name("\xe2\x82\xac", "\xf0\x9f\x99\x82x", "____x");
    /* A stray continuation byte after ASCII is a character of its own. */
    check_name("\x80x", "y", "_x__y");
    /* Bytes that are not UTF-8 are taken as a decoder takes them: each
     * stray byte and each overlong form's byte is one '_', a lead byte and
     * the continuation bytes that could have completed it one together. */
    check_name("\x80\x80", "\xc0\xaf", "______");
    check_name("\xe2\x82x", "\xed\xa0\x80", "_x_____");
}

static void test_cut_at_64(void **state)
{
    (void)state;
    char server[100], tool[100], want[100];
    /* A long tool name is cut. */
    memset(tool, 't', 99);
    tool[99] = '\0';
    memcpy(want, "s__", 3);
    memset(want + 3, 't', 61);
    want[64] = '\0';
    check_name("s", tool, want);
    /* A long server name leaves no room for the tool. */
    memset(server, 's', 70);
    server[70] = '\0';
    memset(want, 's', 64);
    want[64] = '\0';
    check_name(server, "x", want);
    /* The cut may fall inside the separator. */
    memset(server, 's', 63);
    server[63] = '\0';
    memset(want, 's', 63);
    want[63] = '_';
    want[64] = '\0';
    check_name(server, "x", want);
    /* Exactly 64 is kept whole. */
    memset(server, 's', 61);
    server[61] = '\0';
    memset(want, 's', 61);
    memcpy(want + 61, "__x", 4);
    check_name(server, "x", want);
    char *got = tool_model_name(server, "xy");
    assert_int_equal(strlen(got), 64);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joined),
        cmocka_unit_test(test_bare),
        cmocka_unit_test(test_sanitized),
        cmocka_unit_test(test_cut_at_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
