/* Unit tests for core/context: model call layout, trimming, repair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/context.h"

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT);
}

static void assert_json(const json_t *v, const char *expected)
{
    char *s = dump(v);
    assert_string_equal(s, expected);
    free(s);
}

static json_t *call(const char *id, const char *name, const char *args)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name",
                     name, "arguments", args);
}

static void test_layout(void **state)
{
    (void)state;
    json_t *h = json_array();
    json_array_append_new(h, context_user("hi"));
    json_t *notes = json_pack("[s]", "nudge");
    context_params p = {.system_prompt = "sys",
                        .budget_note = "step 1 of 10",
                        .history = h,
                        .keep_from = 0,
                        .notes = notes,
                        .context_tokens = 1000};
    int64_t est = 0;
    json_t *m = context_build(&p, &est);
    assert_json(m, "[{\"role\":\"system\",\"content\":\"sys\"},"
                   "{\"role\":\"system\",\"content\":\"Budget: step 1 of 10.\"},"
                   "{\"role\":\"user\",\"content\":\"hi\"},"
                   "{\"role\":\"system\",\"content\":\"nudge\"}]");
    /* The estimate: the system part, the notes and each history message. */
    json_t *sys = json_pack("[O,O]", json_array_get(m, 0), json_array_get(m, 1));
    json_t *tail = json_pack("[O]", json_array_get(m, 3));
    assert_int_equal(est, context_estimate_tokens(sys) + context_estimate_tokens(tail) +
                              context_estimate_tokens(json_array_get(m, 2)));
    json_decref(sys);
    json_decref(tail);
    json_decref(m);
    json_decref(h);
    json_decref(notes);
}

/* A frontend's context joins the budget in the one system note, and stands
 * alone without a budget note. */
static void test_client_note(void **state)
{
    (void)state;
    json_t *h = json_array();
    json_array_append_new(h, context_user("hi"));
    context_params p = {.budget_note = "step 1 of 10",
                        .client_note = "The frontend gave this context:\n- page: /billing",
                        .history = h,
                        .context_tokens = 1000};
    int64_t est = 0;
    json_t *m = context_build(&p, &est);
    assert_json(m,
                "[{\"role\":\"system\",\"content\":\"Budget: step 1 of 10.\\n\\nThe frontend "
                "gave this context:\\n- page: /billing\"},{\"role\":\"user\",\"content\":\"hi\"}]");
    json_decref(m);
    p.budget_note = NULL;
    m = context_build(&p, &est);
    assert_json(m, "[{\"role\":\"system\",\"content\":\"The frontend gave this context:\\n- "
                   "page: /billing\"},{\"role\":\"user\",\"content\":\"hi\"}]");
    json_decref(m);
    json_decref(h);
}

static void test_estimate(void **state)
{
    (void)state;
    json_t *v = json_string("abcdef"); /* "abcdef" with quotes: 8 bytes */
    assert_int_equal(context_estimate_tokens(v), 2);
    json_decref(v);
    v = json_string("abcdefg"); /* 9 bytes: rounds up */
    assert_int_equal(context_estimate_tokens(v), 3);
    json_decref(v);
}

static void test_trim_keeps_current_user_and_groups(void **state)
{
    (void)state;
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_t *h = json_array();
    json_array_append_new(h, context_user(big)); /* 0: old user */
    json_t *calls = json_pack("[o]", call("c1", "calc", "{}"));
    json_array_append_new(h, context_assistant(NULL, calls));        /* 1 */
    json_array_append_new(h, context_tool("c1", big, strlen(big)));  /* 2 */
    json_array_append_new(h, context_assistant("old answer", NULL)); /* 3 */
    json_array_append_new(h, context_user("now"));                   /* 4: current run */
    context_params p = {.history = h, .keep_from = 4, .context_tokens = 150};
    json_t *m = context_build(&p, NULL);
    /* The old user message (100+ tokens) and the assistant+tool group go;
     * the tool result never stays without its assistant message. */
    assert_json(m, "[{\"role\":\"assistant\",\"content\":\"old answer\"},"
                   "{\"role\":\"user\",\"content\":\"now\"}]");
    json_decref(m);

    /* A tiny limit still keeps the current user message. */
    p.context_tokens = 1;
    m = context_build(&p, NULL);
    assert_json(m, "[{\"role\":\"user\",\"content\":\"now\"}]");
    json_decref(m);

    /* A generous limit keeps everything. */
    p.context_tokens = 100000;
    m = context_build(&p, NULL);
    assert_int_equal(json_array_size(m), 5);
    json_decref(m);
    json_decref(calls);
    json_decref(h);
}

static void test_budget_note(void **state)
{
    (void)state;
    const mode_limits l = {10, 120, 50000, 15, 3, -1};
    budget b;
    budget_init(&b, &l, NULL, 1000);
    b.usage.steps = 2;
    b.usage.tool_calls = 3;
    char *s = context_budget_note(&b, 3, 1000 + 25500);
    assert_string_equal(s, "step 3 of 10, 94 s, 12 tool calls left");
    free(s);
    b.usage.tool_calls = 14;
    s = context_budget_note(&b, 3, 1000 + 200000);
    assert_string_equal(s, "step 3 of 10, 0 s, 1 tool call left");
    free(s);
    const mode_limits open = {-1, -1, -1, -1, -1, -1};
    budget_set_limits(&b, &open);
    s = context_budget_note(&b, 3, 0);
    assert_string_equal(s, "step 3");
    free(s);
}

static void test_tool_result_cut(void **state)
{
    (void)state;
    size_t len = CONTEXT_TOOL_RESULT_MAX + 10;
    char *big = malloc(len);
    memset(big, 'a', len);
    /* A two-byte character straddles the cut. */
    big[CONTEXT_TOOL_RESULT_MAX - 1] = (char)0xC3;
    big[CONTEXT_TOOL_RESULT_MAX] = (char)0xA9;
    json_t *m = context_tool("c1", big, len);
    const char *c = json_string_value(json_object_get(m, "content"));
    assert_non_null(c);
    assert_int_equal(
        strncmp(c + CONTEXT_TOOL_RESULT_MAX - 1, "\n[result cut: 32767 of 32778 bytes shown]", 41),
        0);
    json_decref(m);
    free(big);
}

static void test_repair(void **state)
{
    (void)state;
    json_t *h = json_array();
    json_array_append_new(h, context_tool("orphan", "x", 1));
    json_array_append_new(h, context_user("q"));
    json_t *calls = json_pack("[o,o]", call("a", "calc", "{}"), call("b", "clock", "{}"));
    json_array_append_new(h, context_assistant("", calls));
    json_array_append_new(h, context_tool("a", "1", 1));
    json_array_append_new(h, context_tool("zzz", "stray", 5));
    json_array_append_new(h, context_user("again"));
    assert_int_equal(context_repair(h), 3);
    assert_json(h, "[{\"role\":\"user\",\"content\":\"q\"},"
                   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                   "{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"calc\","
                   "\"arguments\":\"{}\"}},"
                   "{\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"clock\","
                   "\"arguments\":\"{}\"}}]},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"1\"},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"b\",\"content\":\"not executed: the run "
                   "stopped before this call\"},"
                   "{\"role\":\"user\",\"content\":\"again\"}]");
    /* A valid history is left alone. */
    assert_int_equal(context_repair(h), 0);

    /* Missing results at the very end are added too. */
    json_t *h2 = json_array();
    json_array_append_new(h2, context_assistant(NULL, calls));
    assert_int_equal(context_repair(h2), 2);
    assert_int_equal(json_array_size(h2), 3);
    json_decref(h2);
    json_decref(calls);
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_client_note),
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_trim_keeps_current_user_and_groups),
        cmocka_unit_test(test_budget_note),
        cmocka_unit_test(test_tool_result_cut),
        cmocka_unit_test(test_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
