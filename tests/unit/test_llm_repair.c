/* Unit tests for engine/llm_repair: which failures are context overflows,
 * the numbers they state, and the turns a condensation drops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/context.h"
#include "engine/llm_repair.h"

static void expect_overflow(int status, const char *code, const char *msg, int64_t n, int64_t m)
{
    llm_overflow o = {0, 0};
    assert_true(llm_repair_is_overflow(status, code, msg, &o));
    assert_int_equal(o.prompt_tokens, n);
    assert_int_equal(o.window, m);
}

static void test_overflow_texts(void **state)
{
    (void)state;
    /* OpenAI: the code, and the message with both numbers. */
    expect_overflow(400, "context_length_exceeded",
                    "HTTP 400 from http://x/v1/chat/completions: This model's maximum context "
                    "length is 8192 tokens. However, you requested 9000 tokens (8000 in the "
                    "messages, 1000 in the completion). Please reduce the length of the messages "
                    "or completion.",
                    9000, 8192);
    expect_overflow(400, "context_length_exceeded", NULL, -1, -1);
    /* Anthropic. */
    expect_overflow(400, "invalid_request_error",
                    "HTTP 400 from http://x/v1/messages: prompt is too long: 210,345 tokens > "
                    "200000 maximum",
                    210345, 200000);
    /* vLLM. */
    expect_overflow(400, NULL,
                    "HTTP 400 from http://x: This model's maximum context length is 4096 tokens. "
                    "However, your messages resulted in 5000 tokens. Please reduce the length of "
                    "the messages.",
                    5000, 4096);
    /* llama.cpp. */
    expect_overflow(400, "exceed_context_size_error",
                    "HTTP 400 from http://x: request (9216 tokens) exceeds the available context "
                    "size (8192 tokens), try increasing it",
                    9216, 8192);
    expect_overflow(500, NULL, "the request exceeds the available context size, try increasing it",
                    -1, -1);
    /* Ollama and the plain request to shorten. */
    expect_overflow(400, NULL, "input length exceeds maximum context length", -1, -1);
    expect_overflow(400, NULL, "Please reduce the length of the messages", -1, -1);
    /* In a stream (no status). */
    expect_overflow(0, NULL, "the model stream carried an error: Prompt Is Too Long", -1, -1);
}

static void test_not_overflow(void **state)
{
    (void)state;
    llm_overflow o;
    assert_false(llm_repair_is_overflow(400, "invalid_request_error", "unknown model", &o));
    assert_int_equal(o.prompt_tokens, -1);
    assert_int_equal(o.window, -1);
    assert_false(
        llm_repair_is_overflow(401, "context_length_exceeded", "maximum context length", NULL));
    assert_false(llm_repair_is_overflow(429, NULL, "prompt is too long", NULL));
    assert_false(llm_repair_is_overflow(503, NULL, NULL, NULL));
}

static void test_target(void **state)
{
    (void)state;
    llm_overflow known = {9000, 8192}, unknown = {-1, -1};
    assert_int_equal(llm_repair_target(&known, 12000), 5734); /* 70 % of 8192 */
    assert_int_equal(llm_repair_target(&unknown, 12000), 8400);
    assert_int_equal(llm_repair_target(NULL, 101), 70);
    assert_int_equal(llm_repair_target(&unknown, -5), 0);
}

/* A message whose estimate is about n tokens. */
static json_t *msg(const char *role, int n, const char *extra_key, const char *extra_value)
{
    char *text = calloc(1, (size_t)n * 4 + 1);
    memset(text, 'x', (size_t)n * 4);
    json_t *m = json_pack("{s:s, s:s}", "role", role, "content", text);
    if (extra_key) json_object_set_new(m, extra_key, json_string(extra_value));
    free(text);
    return m;
}

static json_t *assistant_calls(int n, const char *id)
{
    json_t *m = msg("assistant", n, NULL, NULL);
    json_object_set_new(m, "tool_calls",
                        json_pack("[{s:s, s:s, s:{s:s, s:s}}]", "id", id, "type", "function",
                                  "function", "name", "calc", "arguments", "{}"));
    return m;
}

/* The roles and first characters of what is left: "u a t u". */
static void expect_roles(const json_t *h, const char *want)
{
    char got[256] = "";
    size_t i;
    const json_t *m;
    json_array_foreach(h, i, m)
    {
        const char *r = json_string_value(json_object_get(m, "role"));
        strncat(got, i ? " " : "", sizeof got - strlen(got) - 1);
        strncat(got, r[0] == 'a' ? "a" : r[0] == 'u' ? "u" : "t", sizeof got - strlen(got) - 1);
    }
    assert_string_equal(got, want);
}

static void test_condense_keeps_what_it_must(void **state)
{
    (void)state;
    json_t *h = json_array();
    json_array_append_new(h, msg("user", 100, NULL, NULL));            /* 0 first user: kept */
    json_array_append_new(h, msg("assistant", 1000, NULL, NULL));      /* 1 */
    json_array_append_new(h, msg("user", 1000, NULL, NULL));           /* 2 */
    json_array_append_new(h, assistant_calls(1000, "c1"));             /* 3 with 4 */
    json_array_append_new(h, msg("tool", 1000, "tool_call_id", "c1")); /* 4 */
    json_array_append_new(h, msg("user", 100, NULL, NULL));            /* 5 the run's: kept */
    json_array_append_new(h, assistant_calls(1000, "c2"));             /* 6 with 7 */
    json_array_append_new(h, msg("tool", 1000, "tool_call_id", "c2")); /* 7 */
    size_t keep = 5;
    llm_condense_result r;
    /* Enough to drop 1 and 2 (about 2,000 tokens) but not the pair 3-4. */
    int64_t before = 50;
    for (size_t i = 0; i < json_array_size(h); i++)
        before += context_estimate_tokens(json_array_get(h, i));
    llm_repair_condense(h, &keep, 50, before - 2000, &r);
    assert_int_equal(r.messages_before, 8);
    assert_int_equal(r.messages_after, 6);
    assert_int_equal(r.tokens_before, before);
    assert_true(r.reached);
    assert_true(r.tokens_after <= before - 2000);
    expect_roles(h, "u a t u a t");
    assert_int_equal(keep, 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1), "role")),
                        "assistant");
    assert_non_null(json_object_get(json_array_get(h, 1), "tool_calls"));
    json_decref(h);
}

static void test_condense_never_splits_and_may_fall_short(void **state)
{
    (void)state;
    json_t *h = json_array();
    json_array_append_new(h, msg("tool", 500, "tool_call_id", "orphan")); /* a leading result */
    json_array_append_new(h, msg("user", 100, NULL, NULL));
    json_array_append_new(h, assistant_calls(100, "c1"));
    json_array_append_new(h, msg("tool", 3000, "tool_call_id", "c1"));
    json_array_append_new(h, msg("tool", 10, "tool_call_id", "c1b"));
    json_array_append_new(h, msg("user", 100, NULL, NULL));
    size_t keep = 5;
    llm_condense_result r;
    /* A target nothing can reach: every turn that may go goes, and the
     * call goes with both its results. */
    llm_repair_condense(h, &keep, 0, 10, &r);
    assert_false(r.reached);
    expect_roles(h, "u u");
    assert_int_equal(keep, 1);
    assert_int_equal(r.messages_after, 2);
    json_decref(h);

    /* A history where the first user message is the run's own. */
    h = json_array();
    json_array_append_new(h, msg("user", 10, NULL, NULL));
    json_array_append_new(h, assistant_calls(100, "c1"));
    json_array_append_new(h, msg("tool", 100, "tool_call_id", "c1"));
    keep = 0;
    llm_repair_condense(h, &keep, 0, 1000000, &r);
    assert_true(r.reached);
    assert_int_equal(r.messages_after, 3);
    llm_repair_condense(h, &keep, 0, 1, &r);
    expect_roles(h, "u");
    assert_int_equal(keep, 0);
    json_decref(h);
}

static void test_thousands(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(llm_repair_thousands(b, 0), "0");
    assert_string_equal(llm_repair_thousands(b, 999), "999");
    assert_string_equal(llm_repair_thousands(b, 61000), "61,000");
    assert_string_equal(llm_repair_thousands(b, 1234567), "1,234,567");
    assert_string_equal(llm_repair_thousands(b, -1500), "-1,500");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_texts),
        cmocka_unit_test(test_not_overflow),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_condense_keeps_what_it_must),
        cmocka_unit_test(test_condense_never_splits_and_may_fall_short),
        cmocka_unit_test(test_thousands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
