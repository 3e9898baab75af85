/* Unit tests for core/budget: the ledger of a run, its stop and wrap-up
 * decisions, warnings and JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/budget.h"

#define T0 INT64_C(1000000)

static void assert_json(json_t *v, const char *expected)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_non_null(s);
    assert_string_equal(s, expected);
    free(s);
    json_decref(v);
}

static void assert_decision(budget_decision d, budget_verdict v, budget_dim dim)
{
    assert_int_equal(d.verdict, v);
    if (v != BUDGET_GO) assert_int_equal(d.dim, dim);
}

/* A fresh ledger with the limits of a preset, started at T0, no price. */
static void init_preset(budget *b, const char *mode_name)
{
    budget_init(b, &mode_preset(mode_name)->limits, NULL, T0);
}

static const mode_limits unlimited = {
    .steps = MODE_UNLIMITED,
    .seconds = MODE_UNLIMITED,
    .tokens = MODE_UNLIMITED,
    .tool_calls = MODE_UNLIMITED,
    .retries = MODE_UNLIMITED,
    .cost_usd = MODE_UNLIMITED,
};

static void test_dim_names_and_reasons(void **state)
{
    (void)state;
    static const char *const names[BUDGET__COUNT] = {"steps",      "seconds", "tokens",
                                                     "tool_calls", "retries", "cost_usd"};
    static const stop_reason reasons[BUDGET__COUNT] = {STOP_MAX_STEPS,   STOP_MAX_SECONDS,
                                                       STOP_MAX_TOKENS,  STOP_MAX_TOOL_CALLS,
                                                       STOP_MAX_RETRIES, STOP_MAX_COST};
    for (int d = 0; d < BUDGET__COUNT; d++) {
        assert_string_equal(budget_dim_name((budget_dim)d), names[d]);
        assert_int_equal(budget_dim_reason((budget_dim)d), reasons[d]);
    }
}

static void test_fresh_run_goes(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    assert_decision(budget_check_step(&b, T0, 500), BUDGET_GO, 0);
    assert_decision(budget_check_tool(&b, T0), BUDGET_GO, 0);
    assert_json(
        budget_to_json(&b),
        "{\"limits\":{\"steps\":10,\"seconds\":120,\"tokens\":50000,\"tool_calls\":15,"
        "\"retries\":3,\"cost_usd\":null},\"usage\":{\"steps\":0,\"seconds\":0.0,"
        "\"tokens\":0,\"tool_calls\":0,\"retries\":0,\"cost_usd\":0.0,\"waiting_seconds\":0.0},"
        "\"warnings\":[]}");
}

/* (a): the step about to start is number limits.steps. */
static void test_wrap_up_last_step(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    for (int i = 0; i < 8; i++) budget_on_step(&b);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_GO, 0); /* step 9 of 10 */
    budget_on_step(&b);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_WRAP_UP, BUDGET_STEPS);
    budget_on_step(&b);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_STOP, BUDGET_STEPS);
    assert_int_equal(budget_dim_reason(BUDGET_STEPS), STOP_MAX_STEPS);
}

/* (b): less than max(10 % of limits.seconds, 5 s) remains. */
static void test_wrap_up_time(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard"); /* 120 s: the margin is 12 s */
    assert_decision(budget_check_step(&b, T0 + 107999, 100), BUDGET_GO, 0);
    assert_decision(budget_check_step(&b, T0 + 108000, 100), BUDGET_GO, 0);
    assert_decision(budget_check_step(&b, T0 + 108001, 100), BUDGET_WRAP_UP, BUDGET_SECONDS);
    assert_decision(budget_check_step(&b, T0 + 119999, 100), BUDGET_WRAP_UP, BUDGET_SECONDS);
    assert_decision(budget_check_step(&b, T0 + 120000, 100), BUDGET_STOP, BUDGET_SECONDS);
    assert_true(b.usage.seconds == 120.0);

    init_preset(&b, "quick"); /* 30 s: 10 % is 3 s, so the margin is 5 s */
    assert_decision(budget_check_step(&b, T0 + 25000, 100), BUDGET_GO, 0);
    assert_decision(budget_check_step(&b, T0 + 25001, 100), BUDGET_WRAP_UP, BUDGET_SECONDS);
    assert_decision(budget_check_step(&b, T0 + 30000, 100), BUDGET_STOP, BUDGET_SECONDS);
}

/* (c): the tokens left would not cover the estimated prompt plus 1024. */
static void test_wrap_up_tokens(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    budget_on_tokens(&b, 40000, 8000); /* 2000 left */
    assert_decision(budget_check_step(&b, T0, 976), BUDGET_GO, 0);
    assert_decision(budget_check_step(&b, T0, 977), BUDGET_WRAP_UP, BUDGET_TOKENS);
    budget_on_tokens(&b, 0, 1999);
    assert_decision(budget_check_step(&b, T0, 0), BUDGET_WRAP_UP, BUDGET_TOKENS);
    budget_on_tokens(&b, 0, 1);
    assert_decision(budget_check_step(&b, T0, 0), BUDGET_STOP, BUDGET_TOKENS);
}

/* (d): the tool-call budget is used up. */
static void test_wrap_up_tool_calls(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    for (int i = 0; i < 14; i++) budget_on_tool_call(&b);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_GO, 0);
    budget_on_tool_call(&b);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_WRAP_UP, BUDGET_TOOL_CALLS);
    /* Used up is never a stop before a model call: the wrap-up answers. */
    budget_on_tool_call(&b);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_WRAP_UP, BUDGET_TOOL_CALLS);
}

/* A price of 1 USD per prompt token and 2 USD per completion token keeps
 * the arithmetic exact. */
static const budget_price price = {.input_per_mtok = 1e6, .output_per_mtok = 2e6, .set = true};

/* (e): the cost left would not cover the prompt plus 1024 completion tokens. */
static void test_wrap_up_cost(void **state)
{
    (void)state;
    mode_limits l = unlimited;
    l.cost_usd = 5000;
    budget b;
    budget_init(&b, &l, &price, T0);
    /* A step of a 100-token prompt costs 100 + 2 * 1024 = 2148 USD. */
    budget_on_tokens(&b, 2852, 0);
    assert_true(b.usage.cost_usd == 2852.0);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_GO, 0);
    budget_on_tokens(&b, 1, 0);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_WRAP_UP, BUDGET_COST);
    budget_on_tokens(&b, 0, 1073); /* 2853 + 2146 = 4999 */
    assert_decision(budget_check_step(&b, T0, 0), BUDGET_WRAP_UP, BUDGET_COST);
    budget_on_tokens(&b, 1, 0);
    assert_true(b.usage.cost_usd == 5000.0);
    assert_decision(budget_check_step(&b, T0, 0), BUDGET_STOP, BUDGET_COST);
}

static void test_cost_needs_price_and_limit(void **state)
{
    (void)state;
    mode_limits l = unlimited;
    l.cost_usd = 1;
    budget b;
    /* Without a price cost is not tracked and never limits. */
    budget_init(&b, &l, NULL, T0);
    budget_on_tokens(&b, 1000000, 1000000);
    assert_true(b.usage.cost_usd == 0.0);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_GO, 0);
    assert_int_equal(budget_warnings(&b), 0);
    /* With a price and no cost limit it is tracked but never limits. */
    budget_init(&b, &unlimited, &price, T0);
    budget_on_tokens(&b, 3, 4);
    assert_true(b.usage.cost_usd == 11.0);
    assert_int_equal(b.usage.prompt_tokens, 3);
    assert_int_equal(b.usage.completion_tokens, 4);
    assert_int_equal(b.usage.tokens, 7);
    assert_decision(budget_check_step(&b, T0, 100), BUDGET_GO, 0);
    assert_int_equal(budget_warnings(&b), 0);
}

static void test_first_rule_wins(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    for (int i = 0; i < 9; i++) budget_on_step(&b);
    for (int i = 0; i < 15; i++) budget_on_tool_call(&b);
    budget_on_tokens(&b, 49000, 0);
    /* (a), (b), (c) and (d) all hold: (a) is reported. */
    assert_decision(budget_check_step(&b, T0 + 110000, 100), BUDGET_WRAP_UP, BUDGET_STEPS);
    /* A dimension used up stops before any wrap-up rule. */
    assert_decision(budget_check_step(&b, T0 + 120000, 100), BUDGET_STOP, BUDGET_SECONDS);
    budget_on_step(&b);
    assert_decision(budget_check_step(&b, T0 + 120000, 100), BUDGET_STOP, BUDGET_STEPS);
}

static void test_unlimited_never_triggers(void **state)
{
    (void)state;
    budget b;
    budget_init(&b, &unlimited, &price, T0);
    for (int i = 0; i < 1000; i++) {
        budget_on_step(&b);
        budget_on_tool_call(&b);
        assert_true(budget_take_retry(&b));
    }
    budget_on_tokens(&b, INT64_C(1) << 40, 0);
    int64_t later = T0 + INT64_C(86400000) * 365;
    assert_decision(budget_check_step(&b, later, INT64_C(1) << 40), BUDGET_GO, 0);
    assert_decision(budget_check_tool(&b, later), BUDGET_GO, 0);
    assert_int_equal(budget_warnings(&b), 0);
    assert_int_equal(b.usage.retries, 1000);
    assert_int_equal(budget_max_completion_tokens(&b, 100), -1);
    assert_true(budget_deadline_ms(&b) == INT64_MAX);
}

static void test_zero_limits(void **state)
{
    (void)state;
    mode_limits l = unlimited;
    l.tool_calls = 0;
    budget b;
    budget_init(&b, &l, NULL, T0);
    assert_decision(budget_check_step(&b, T0, 0), BUDGET_WRAP_UP, BUDGET_TOOL_CALLS);
    assert_decision(budget_check_tool(&b, T0), BUDGET_SKIP, BUDGET_TOOL_CALLS);
    l.tool_calls = MODE_UNLIMITED;
    l.steps = 0;
    budget_set_limits(&b, &l);
    assert_decision(budget_check_step(&b, T0, 0), BUDGET_STOP, BUDGET_STEPS);
}

static void test_tool_checks(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "quick"); /* 3 tool calls, 30 s */
    for (int i = 0; i < 3; i++) {
        assert_decision(budget_check_tool(&b, T0 + 1000), BUDGET_GO, 0);
        budget_on_tool_call(&b);
    }
    assert_decision(budget_check_tool(&b, T0 + 29999), BUDGET_SKIP, BUDGET_TOOL_CALLS);
    /* Time running out stops the run even when tool calls are also used up. */
    assert_decision(budget_check_tool(&b, T0 + 30000), BUDGET_STOP, BUDGET_SECONDS);
    init_preset(&b, "quick");
    assert_decision(budget_check_tool(&b, T0 + 29999), BUDGET_GO, 0);
    assert_decision(budget_check_tool(&b, T0 + 30000), BUDGET_STOP, BUDGET_SECONDS);
    assert_true(b.usage.seconds == 30.0);
}

/* A turn asks for more tools than remain: the calls that fit run, the rest
 * are skipped, and the next step is the wrap-up. */
static void test_tool_budget_exhausted_mid_turn(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    budget_on_step(&b);
    for (int i = 0; i < 13; i++) budget_on_tool_call(&b);
    int ran = 0, skipped = 0;
    for (int i = 0; i < 4; i++) {
        budget_decision d = budget_check_tool(&b, T0 + 2000);
        if (d.verdict == BUDGET_GO) {
            budget_on_tool_call(&b);
            ran++;
        } else {
            assert_decision(d, BUDGET_SKIP, BUDGET_TOOL_CALLS);
            skipped++;
        }
    }
    assert_int_equal(ran, 2);
    assert_int_equal(skipped, 2);
    assert_int_equal(b.usage.tool_calls, 15);
    assert_decision(budget_check_step(&b, T0 + 3000, 100), BUDGET_WRAP_UP, BUDGET_TOOL_CALLS);
}

static void test_mode_change_mid_run(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    for (int i = 0; i < 3; i++) budget_on_step(&b);
    for (int i = 0; i < 3; i++) budget_on_tool_call(&b);
    assert_decision(budget_check_step(&b, T0 + 1000, 100), BUDGET_GO, 0);
    budget_set_limits(&b, &mode_preset("quick")->limits);
    assert_decision(budget_check_step(&b, T0 + 1000, 100), BUDGET_STOP, BUDGET_STEPS);
    assert_decision(budget_check_tool(&b, T0 + 1000), BUDGET_SKIP, BUDGET_TOOL_CALLS);
    assert_true(budget_deadline_ms(&b) == T0 + 30000);
    budget_set_limits(&b, &mode_preset("deep")->limits);
    assert_decision(budget_check_step(&b, T0 + 1000, 100), BUDGET_GO, 0);
    assert_decision(budget_check_tool(&b, T0 + 1000), BUDGET_GO, 0);
    assert_true(budget_deadline_ms(&b) == T0 + 900000);
    /* Usage is kept across the change. */
    assert_int_equal(b.usage.steps, 3);
    assert_int_equal(b.usage.tool_calls, 3);
}

static void test_warnings_once(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    for (int i = 0; i < 7; i++) budget_on_step(&b);
    assert_int_equal(budget_new_warnings(&b), 0);
    budget_on_step(&b); /* 8 of 10 */
    assert_int_equal(budget_warnings(&b), 1u << BUDGET_STEPS);
    assert_int_equal(budget_new_warnings(&b), 1u << BUDGET_STEPS);
    assert_int_equal(budget_new_warnings(&b), 0);
    budget_on_step(&b);
    assert_int_equal(budget_new_warnings(&b), 0);
    assert_int_equal(budget_warnings(&b), 1u << BUDGET_STEPS);

    budget_on_tokens(&b, 39999, 0);
    budget_tick(&b, T0 + 95999);
    for (int i = 0; i < 11; i++) budget_on_tool_call(&b);
    assert_true(budget_take_retry(&b));
    assert_true(budget_take_retry(&b));
    assert_int_equal(budget_new_warnings(&b), 0);
    budget_on_tokens(&b, 0, 1);         /* 40000 of 50000 */
    budget_tick(&b, T0 + 96000);        /* 96 of 120 s */
    budget_on_tool_call(&b);            /* 12 of 15 */
    assert_true(budget_take_retry(&b)); /* 3 of 3 */
    assert_int_equal(budget_new_warnings(&b), (1u << BUDGET_TOKENS) | (1u << BUDGET_SECONDS) |
                                                  (1u << BUDGET_TOOL_CALLS) |
                                                  (1u << BUDGET_RETRIES));
    assert_int_equal(budget_new_warnings(&b), 0);
    assert_json(budget_dims_to_json(budget_warnings(&b)),
                "[\"steps\",\"seconds\",\"tokens\",\"tool_calls\",\"retries\"]");
}

static void test_cost_warning(void **state)
{
    (void)state;
    mode_limits l = unlimited;
    l.cost_usd = 100;
    budget b;
    budget_init(&b, &l, &price, T0);
    budget_on_tokens(&b, 79, 0);
    assert_int_equal(budget_new_warnings(&b), 0);
    budget_on_tokens(&b, 1, 0);
    assert_int_equal(budget_new_warnings(&b), 1u << BUDGET_COST);
    assert_int_equal(budget_new_warnings(&b), 0);
}

static void test_set_limits_rearms_warnings(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    for (int i = 0; i < 8; i++) budget_on_step(&b);
    assert_int_equal(budget_new_warnings(&b), 1u << BUDGET_STEPS);
    /* 8 of 40: no longer past 80 %, so the bit is cleared... */
    budget_set_limits(&b, &mode_preset("deep")->limits);
    assert_int_equal(budget_warnings(&b), 0);
    assert_int_equal(b.warned, 0);
    assert_int_equal(budget_new_warnings(&b), 0);
    /* ...and crossing again warns again. */
    budget_set_limits(&b, &mode_preset("standard")->limits);
    assert_int_equal(budget_new_warnings(&b), 1u << BUDGET_STEPS);
    /* A smaller mode puts other dimensions past 80 %: they warn next time. */
    budget_on_tool_call(&b);
    budget_on_tool_call(&b);
    budget_on_tool_call(&b);
    budget_set_limits(&b, &mode_preset("quick")->limits);
    assert_int_equal(budget_new_warnings(&b), 1u << BUDGET_TOOL_CALLS);
    assert_int_equal(b.warned, (1u << BUDGET_STEPS) | (1u << BUDGET_TOOL_CALLS));
}

static void test_max_completion_tokens(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    assert_int_equal(budget_max_completion_tokens(&b, 2000), 48000);
    budget_on_tokens(&b, 1000, 0);
    assert_int_equal(budget_max_completion_tokens(&b, 2000), 47000);
    budget_on_tokens(&b, 47000, 1990);
    assert_int_equal(budget_max_completion_tokens(&b, 9), 1);
    assert_int_equal(budget_max_completion_tokens(&b, 10), 1);
    assert_int_equal(budget_max_completion_tokens(&b, 5000), 1);
    budget_on_tokens(&b, 0, 9);
    assert_int_equal(budget_max_completion_tokens(&b, 0), 1);
}

static void test_deadline_and_tick(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    assert_true(budget_deadline_ms(&b) == T0 + 120000);
    budget_tick(&b, T0 + 1234);
    assert_true(b.usage.seconds == 1.234);
    /* A clock that reads earlier than the start counts as no time. */
    budget_tick(&b, T0 - 5);
    assert_true(b.usage.seconds == 0.0);
}

static void test_retries(void **state)
{
    (void)state;
    budget b;
    init_preset(&b, "standard");
    assert_true(budget_take_retry(&b));
    assert_true(budget_take_retry(&b));
    assert_true(budget_take_retry(&b));
    assert_false(budget_take_retry(&b));
    assert_false(budget_take_retry(&b));
    assert_int_equal(b.usage.retries, 3);
    mode_limits l = unlimited;
    l.retries = 0;
    budget_init(&b, &l, NULL, T0);
    assert_false(budget_take_retry(&b));
    assert_int_equal(b.usage.retries, 0);
}

static void test_json(void **state)
{
    (void)state;
    budget b;
    mode_limits l = mode_preset("standard")->limits;
    l.cost_usd = 0.5;
    budget_price p = {.input_per_mtok = 3, .output_per_mtok = 15, .set = true};
    budget_init(&b, &l, &p, T0);
    budget_on_step(&b);
    budget_on_tokens(&b, 1000, 200);
    budget_on_tool_call(&b);
    budget_tick(&b, T0 + 12345);
    assert_json(budget_usage_to_json(&b.usage),
                "{\"steps\":1,\"seconds\":12.345,\"tokens\":1200,\"tool_calls\":1,"
                "\"retries\":0,\"cost_usd\":0.006,\"waiting_seconds\":0.0}");
    for (int i = 0; i < 7; i++) budget_on_step(&b);
    assert_json(budget_to_json(&b),
                "{\"limits\":{\"steps\":10,\"seconds\":120,\"tokens\":50000,\"tool_calls\":15,"
                "\"retries\":3,\"cost_usd\":0.5},\"usage\":{\"steps\":8,\"seconds\":12.345,"
                "\"tokens\":1200,\"tool_calls\":1,\"retries\":0,\"cost_usd\":0.006,"
                "\"waiting_seconds\":0.0},"
                "\"warnings\":[\"steps\"]}");
    /* Seconds are reported to the millisecond. */
    budget_usage u = {.seconds = 2.0004999};
    json_t *j = budget_usage_to_json(&u);
    assert_true(json_real_value(json_object_get(j, "seconds")) == 2.0);
    json_decref(j);
    assert_json(budget_dims_to_json(0), "[]");
    assert_json(budget_dims_to_json((1u << BUDGET_COST) | (1u << BUDGET_STEPS)),
                "[\"steps\",\"cost_usd\"]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dim_names_and_reasons),
        cmocka_unit_test(test_fresh_run_goes),
        cmocka_unit_test(test_wrap_up_last_step),
        cmocka_unit_test(test_wrap_up_time),
        cmocka_unit_test(test_wrap_up_tokens),
        cmocka_unit_test(test_wrap_up_tool_calls),
        cmocka_unit_test(test_wrap_up_cost),
        cmocka_unit_test(test_cost_needs_price_and_limit),
        cmocka_unit_test(test_first_rule_wins),
        cmocka_unit_test(test_unlimited_never_triggers),
        cmocka_unit_test(test_zero_limits),
        cmocka_unit_test(test_tool_checks),
        cmocka_unit_test(test_tool_budget_exhausted_mid_turn),
        cmocka_unit_test(test_mode_change_mid_run),
        cmocka_unit_test(test_warnings_once),
        cmocka_unit_test(test_cost_warning),
        cmocka_unit_test(test_set_limits_rearms_warnings),
        cmocka_unit_test(test_max_completion_tokens),
        cmocka_unit_test(test_deadline_and_tick),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
