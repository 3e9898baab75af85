/*
 * The measure a run's start reads its history by (src/engine/engine.c,
 * engine__message_tokens): never above the token estimate that trimming
 * counts for the same message, and equal to it for plain text, so the
 * start reads no less than trimming can keep (docs/storage.md, Reading a
 * long session). Includes engine.c to reach its statics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/engine.c"

/* The estimate trimming counts for m. */
static int64_t estimate(const store_message *m)
{
    json_t *x = engine__context_message(m);
    int64_t t = context_estimate_tokens(x);
    json_decref(x);
    return t;
}

static void test_bound_is_the_estimate_for_plain_text(void **state)
{
    (void)state;
    json_t *calls = json_pack("[{s:s,s:s,s:{s:s,s:s}}]", "id", "call_1", "type", "function",
                              "function", "name", "calc", "arguments", "{\"expression\":\"6*7\"}");
    char *long_text = calloc(1, 1001);
    memset(long_text, 'a', 1000);
    store_message ms[] = {
        {.role = "user", .content = "what is 6*7?"},
        {.role = "user", .content = ""},
        {.role = "user", .content = long_text},
        {.role = "assistant", .content = "6*7 = 42."},
        {.role = "assistant", .content = ""},
        {.role = "assistant", .content = "", .tool_calls = calls},
        {.role = "assistant", .content = "Let me work it out.", .tool_calls = calls},
        {.role = "tool", .content = "42", .tool_call_id = "call_1"},
        {.role = "tool", .content = "", .tool_call_id = "call_1"},
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        /* Every length from 0 to 7 bytes past a multiple of 4. */
        for (int pad = 0; pad < 8; pad++) {
            store_message m = ms[i];
            char *text = NULL;
            if (pad) {
                size_t len = strlen(m.content);
                text = calloc(1, len + 9);
                memcpy(text, m.content, len);
                memset(text + len, 'b', (size_t)pad);
                m.content = text;
            }
            assert_int_equal(engine__message_tokens(&m, NULL), estimate(&m));
            free(text);
        }
    }
    free(long_text);
    json_decref(calls);
}

/* Escaped characters, non-ASCII text and a tool result past what the model
 * is shown keep the bound at or under the estimate. */
static void test_bound_never_exceeds_the_estimate(void **state)
{
    (void)state;
    size_t big = CONTEXT_TOOL_RESULT_MAX + 5000;
    char *huge = calloc(1, big + 1);
    memset(huge, 'x', big);
    /* A 3-byte character across the cut. */
    memcpy(huge + CONTEXT_TOOL_RESULT_MAX - 1, "\xe2\x82\xac", 3);
    store_message ms[] = {
        {.role = "user", .content = "a \"quoted\" line\nand a tab\t and a \\ backslash"},
        {.role = "assistant", .content = "caf\xc3\xa9 \xe2\x82\xac 5 \xf0\x9f\x98\x80"},
        {.role = "tool", .content = huge, .tool_call_id = "call_big"},
        {.role = "tool", .content = "\x01\x02 control", .tool_call_id = NULL},
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        int64_t bound = engine__message_tokens(&ms[i], NULL), est = estimate(&ms[i]);
        assert_true(bound <= est);
        assert_true(bound > 0);
    }
    /* The cut result counts what the model sees, not the stored 37 KiB. */
    assert_true(engine__message_tokens(&ms[2], NULL) >= (CONTEXT_TOOL_RESULT_MAX - 3) / 4);
    assert_true(engine__message_tokens(&ms[2], NULL) < (CONTEXT_TOOL_RESULT_MAX + 200) / 4);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_is_the_estimate_for_plain_text),
        cmocka_unit_test(test_bound_never_exceeds_the_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
