/* Unit tests for core/mode: the presets, their JSON and strict partial updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mode.h"

/* Dumps v compactly and compares it with the expected text; frees v. */
static void assert_json(json_t *v, const char *expected)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_non_null(s);
    assert_string_equal(s, expected);
    free(s);
    json_decref(v);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    return v;
}

static void test_presets_match_docs(void **state)
{
    (void)state;
    const mode *m = mode_presets();
    assert_string_equal(m[0].name, "quick");
    assert_string_equal(m[1].name, "standard");
    assert_string_equal(m[2].name, "deep");
    assert_json(mode_limits_to_json(&m[0].limits),
                "{\"steps\":3,\"seconds\":30,\"tokens\":8000,\"tool_calls\":3,\"retries\":1,"
                "\"cost_usd\":null}");
    assert_json(mode_limits_to_json(&m[1].limits),
                "{\"steps\":10,\"seconds\":120,\"tokens\":50000,\"tool_calls\":15,\"retries\":3,"
                "\"cost_usd\":null}");
    assert_json(mode_limits_to_json(&m[2].limits),
                "{\"steps\":40,\"seconds\":900,\"tokens\":400000,\"tool_calls\":80,\"retries\":6,"
                "\"cost_usd\":null}");
    for (int i = 0; i < MODE_PRESET_COUNT; i++)
        assert_json(mode_guard_to_json(&m[i].guard),
                    "{\"loop_warn\":3,\"loop_stop\":4,\"fail_warn\":2,\"fail_stop\":3,"
                    "\"stale_steps\":4}");
    assert_string_equal(MODE_DEFAULT, "standard");
}

static void test_preset_lookup_and_next_larger(void **state)
{
    (void)state;
    assert_ptr_equal(mode_preset("quick"), &mode_presets()[0]);
    assert_ptr_equal(mode_preset("deep"), &mode_presets()[2]);
    assert_null(mode_preset("Deep"));
    assert_null(mode_preset(""));
    assert_null(mode_preset(NULL));
    assert_string_equal(mode_next_larger("quick"), "standard");
    assert_string_equal(mode_next_larger("standard"), "deep");
    assert_null(mode_next_larger("deep"));
    assert_null(mode_next_larger("custom"));
    assert_null(mode_next_larger(NULL));
}

static void test_mode_to_json(void **state)
{
    (void)state;
    assert_json(mode_to_json(mode_preset("quick")),
                "{\"name\":\"quick\",\"description\":\"Short answers: a few steps and tool "
                "calls.\",\"limits\":{\"steps\":3,\"seconds\":30,\"tokens\":8000,\"tool_calls\":3,"
                "\"retries\":1,\"cost_usd\":null},\"guard\":{\"loop_warn\":3,\"loop_stop\":4,"
                "\"fail_warn\":2,\"fail_stop\":3,\"stale_steps\":4},\"approval\":\"risky\"}");
    assert_string_equal(mode_preset("standard")->description,
                        "Everyday tasks: room for several tool calls.");
    assert_string_equal(mode_preset("deep")->description,
                        "Long investigations: many steps, tools and tokens.");
}

static void test_limits_unlimited_and_cost(void **state)
{
    (void)state;
    mode_limits l = {.steps = MODE_UNLIMITED,
                     .seconds = 0,
                     .tokens = MODE_UNLIMITED,
                     .tool_calls = 2,
                     .retries = MODE_UNLIMITED,
                     .cost_usd = 0.25};
    assert_json(mode_limits_to_json(&l), "{\"steps\":null,\"seconds\":0,\"tokens\":null,"
                                         "\"tool_calls\":2,\"retries\":null,\"cost_usd\":0.25}");
    l.cost_usd = 0;
    json_t *j = mode_limits_to_json(&l);
    assert_true(json_is_real(json_object_get(j, "cost_usd")));
    assert_json(j, "{\"steps\":null,\"seconds\":0,\"tokens\":null,\"tool_calls\":2,"
                   "\"retries\":null,\"cost_usd\":0.0}");
}

static void test_limits_apply_partial(void **state)
{
    (void)state;
    mode_limits l = mode_preset("standard")->limits;
    char err[128] = "";
    json_t *p = parse("{\"steps\":12,\"tokens\":null,\"cost_usd\":1,\"retries\":0}");
    assert_int_equal(mode_limits_apply_json(&l, p, "limits", err, sizeof err), 0);
    json_decref(p);
    assert_json(mode_limits_to_json(&l), "{\"steps\":12,\"seconds\":120,\"tokens\":null,"
                                         "\"tool_calls\":15,\"retries\":0,\"cost_usd\":1.0}");
    p = parse("{\"cost_usd\":null,\"seconds\":5}");
    assert_int_equal(mode_limits_apply_json(&l, p, "limits", err, sizeof err), 0);
    json_decref(p);
    assert_true(l.cost_usd < 0);
    assert_int_equal(l.seconds, 5);
    p = parse("{}");
    assert_int_equal(mode_limits_apply_json(&l, p, "limits", err, sizeof err), 0);
    json_decref(p);
    assert_int_equal(l.steps, 12);
}

/* Applies text onto the standard limits, expects err_expected and checks
 * that the limits did not change. */
static void expect_limits_error(const char *text, const char *prefix, const char *err_expected)
{
    mode_limits l = mode_preset("standard")->limits;
    char err[128] = "";
    json_t *p = parse(text);
    assert_int_equal(mode_limits_apply_json(&l, p, prefix, err, sizeof err), -1);
    json_decref(p);
    assert_string_equal(err, err_expected);
    assert_memory_equal(&l, &mode_preset("standard")->limits, sizeof l);
}

static void test_limits_apply_errors(void **state)
{
    (void)state;
    expect_limits_error("{\"steps\":5,\"foo\":1}", "limits", "limits.foo is not a known field");
    expect_limits_error("{\"steps\":-1}", "limits",
                        "limits.steps must be a non-negative integer or null");
    expect_limits_error("{\"tokens\":2.5}", "limits",
                        "limits.tokens must be a non-negative integer or null");
    expect_limits_error("{\"seconds\":\"60\"}", "modes.quick",
                        "modes.quick.seconds must be a non-negative integer or null");
    expect_limits_error("{\"steps\":3,\"tool_calls\":true}", "limits",
                        "limits.tool_calls must be a non-negative integer or null");
    expect_limits_error("{\"retries\":1000000000000001}", "limits",
                        "limits.retries must be at most 1000000000000000 or null");
    expect_limits_error("{\"cost_usd\":-0.5}", "limits",
                        "limits.cost_usd must be a non-negative number or null");
    expect_limits_error("{\"cost_usd\":\"1\"}", NULL,
                        "cost_usd must be a non-negative number or null");
    expect_limits_error("[1]", "limits", "limits must be an object");
    expect_limits_error("[1]", NULL, "limits must be an object");
}

static void test_guard_apply(void **state)
{
    (void)state;
    mode_guard g = mode_preset("deep")->guard;
    char err[128] = "";
    /* Raising both thresholds at once is fine even though loop_warn 6 alone
     * would not be below the old loop_stop 4. */
    json_t *p = parse("{\"loop_warn\":6,\"loop_stop\":8,\"stale_steps\":1000}");
    assert_int_equal(mode_guard_apply_json(&g, p, "guard", err, sizeof err), 0);
    json_decref(p);
    assert_json(mode_guard_to_json(&g), "{\"loop_warn\":6,\"loop_stop\":8,\"fail_warn\":2,"
                                        "\"fail_stop\":3,\"stale_steps\":1000}");
}

static void expect_guard_error(const char *text, const char *err_expected)
{
    mode_guard g = mode_preset("standard")->guard;
    char err[128] = "";
    json_t *p = parse(text);
    assert_int_equal(mode_guard_apply_json(&g, p, "guard", err, sizeof err), -1);
    json_decref(p);
    assert_string_equal(err, err_expected);
    assert_memory_equal(&g, &mode_preset("standard")->guard, sizeof g);
}

static void test_guard_apply_errors(void **state)
{
    (void)state;
    expect_guard_error("{\"loop\":3}", "guard.loop is not a known field");
    expect_guard_error("{\"loop_warn\":0}", "guard.loop_warn must be an integer from 1 to 1000");
    expect_guard_error("{\"fail_stop\":1001}", "guard.fail_stop must be an integer from 1 to 1000");
    expect_guard_error("{\"stale_steps\":null}",
                       "guard.stale_steps must be an integer from 1 to 1000");
    expect_guard_error("{\"loop_warn\":4}", "guard.loop_warn must be less than guard.loop_stop");
    expect_guard_error("{\"fail_stop\":2}", "guard.fail_warn must be less than guard.fail_stop");
    expect_guard_error("\"x\"", "guard must be an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_match_docs),
        cmocka_unit_test(test_preset_lookup_and_next_larger),
        cmocka_unit_test(test_mode_to_json),
        cmocka_unit_test(test_limits_unlimited_and_cost),
        cmocka_unit_test(test_limits_apply_partial),
        cmocka_unit_test(test_limits_apply_errors),
        cmocka_unit_test(test_guard_apply),
        cmocka_unit_test(test_guard_apply_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
