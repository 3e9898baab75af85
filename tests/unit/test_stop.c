/* Unit tests for core/stop: stop reasons, their actions, recovery text and
 * budget details. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/budget.h"
#include "core/stop.h"

static void assert_json(json_t *v, const char *expected)
{
    char *s = json_dumps(v, JSON_COMPACT);
    assert_non_null(s);
    assert_string_equal(s, expected);
    free(s);
    json_decref(v);
}

static const char *const names[STOP__COUNT] = {
    "completed",      "user_stopped", "max_steps",   "max_seconds",      "max_tokens",
    "max_tool_calls", "max_cost",     "max_retries", "loop_detected",    "repeated_failures",
    "no_progress",    "llm_error",    "interrupted", "approval_timeout", "owner_budget",
};

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < STOP__COUNT; i++) {
        assert_string_equal(stop_reason_name((stop_reason)i), names[i]);
        stop_reason r = STOP__COUNT;
        assert_int_equal(stop_reason_parse(names[i], &r), 0);
        assert_int_equal(r, i);
    }
    stop_reason r = STOP_COMPLETED;
    assert_int_equal(stop_reason_parse("max_step", &r), -1);
    assert_int_equal(stop_reason_parse("", &r), -1);
    assert_int_equal(stop_reason_parse(NULL, &r), -1);
    assert_int_equal(r, STOP_COMPLETED);
}

static void test_is_budget(void **state)
{
    (void)state;
    for (int i = 0; i < STOP__COUNT; i++) {
        bool expected = i == STOP_MAX_STEPS || i == STOP_MAX_SECONDS || i == STOP_MAX_TOKENS ||
                        i == STOP_MAX_TOOL_CALLS || i == STOP_MAX_COST;
        assert_int_equal(stop_reason_is_budget((stop_reason)i), expected);
    }
}

/* Every reason's tone, as the page and the terminal colour it. The
 * guardrails and max_retries are bad, not warnings, and interrupted is
 * neutral: it is continued like a stop on request. */
static void test_tone_of_every_reason(void **state)
{
    (void)state;
    static const char *const tones[STOP__COUNT] = {
        "good", "neutral", "warn", "warn", "warn",    "warn",    "warn", "bad",
        "bad",  "bad",     "bad",  "bad",  "neutral", "neutral", "warn",
    };
    for (int i = 0; i < STOP__COUNT; i++)
        assert_string_equal(stop_tone_name(stop_reason_tone((stop_reason)i)), tones[i]);
    assert_int_equal(stop_reason_tone(STOP__COUNT), STOP_TONE_BAD);
    assert_string_equal(stop_tone_name(STOP_TONE_GOOD), "good");
    assert_string_equal(stop_tone_name(STOP__TONE_COUNT), "bad");
}

/* Every reason's exit class (docs/cli.md): max_retries is a failure like
 * llm_error, not a budget stop like the other max_*; interrupted a
 * failure. */
static void test_exit_of_every_reason(void **state)
{
    (void)state;
    static const stop_exit exits[STOP__COUNT] = {
        STOP_EXIT_COMPLETED, STOP_EXIT_USER,    STOP_EXIT_STOPPED, STOP_EXIT_STOPPED,
        STOP_EXIT_STOPPED,   STOP_EXIT_STOPPED, STOP_EXIT_STOPPED, STOP_EXIT_FAILED,
        STOP_EXIT_STOPPED,   STOP_EXIT_STOPPED, STOP_EXIT_STOPPED, STOP_EXIT_FAILED,
        STOP_EXIT_FAILED,    STOP_EXIT_STOPPED, STOP_EXIT_STOPPED,
    };
    for (int i = 0; i < STOP__COUNT; i++)
        assert_int_equal(stop_reason_exit((stop_reason)i), exits[i]);
    assert_int_equal(stop_reason_exit(STOP__COUNT), STOP_EXIT_FAILED);
}

static void test_actions_of_every_reason(void **state)
{
    (void)state;
    const char *cont = "{\"kind\":\"continue\",\"label\":\"Continue\"}";
    char budget_actions[256];
    snprintf(budget_actions, sizeof budget_actions,
             "[%s,{\"kind\":\"switch_mode\",\"mode\":\"deep\",\"label\":\"Switch to deep "
             "mode\"}]",
             cont);
    assert_json(stop_actions(STOP_COMPLETED, "standard"), "[]");
    assert_json(stop_actions(STOP_USER_STOPPED, "standard"),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    for (int r = STOP_MAX_STEPS; r <= STOP_MAX_COST; r++)
        assert_json(stop_actions((stop_reason)r, "standard"), budget_actions);
    assert_json(stop_actions(STOP_MAX_RETRIES, "standard"),
                "[{\"kind\":\"retry\",\"label\":\"Retry\"}]");
    for (int r = STOP_LOOP_DETECTED; r <= STOP_NO_PROGRESS; r++)
        assert_json(stop_actions((stop_reason)r, "standard"),
                    "[{\"kind\":\"rephrase\",\"label\":\"Rephrase\"},"
                    "{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    assert_json(stop_actions(STOP_LLM_ERROR, "standard"), "[]");
    assert_json(stop_actions(STOP_INTERRUPTED, "standard"),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    assert_json(stop_actions(STOP_APPROVAL_TIMEOUT, "standard"),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    /* An owner's budget does not grow by continuing: no action. */
    assert_json(stop_actions(STOP_OWNER_BUDGET, "standard"), "[]");
}

static void test_switch_mode_goes_one_larger(void **state)
{
    (void)state;
    assert_json(stop_actions(STOP_MAX_TOKENS, "quick"),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"},{\"kind\":\"switch_mode\","
                "\"mode\":\"standard\",\"label\":\"Switch to standard mode\"}]");
    assert_json(stop_actions(STOP_MAX_STEPS, "deep"),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    assert_json(stop_actions(STOP_MAX_SECONDS, "custom"),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    assert_json(stop_actions(STOP_MAX_COST, NULL),
                "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
}

static void test_recovery_text(void **state)
{
    (void)state;
    assert_string_equal(stop_recovery(STOP_MAX_STEPS, "standard"),
                        "The run used every step its mode allows. Continue to give it more "
                        "steps, or switch to deep mode for a larger budget.");
    assert_string_equal(stop_recovery(STOP_MAX_STEPS, "quick"),
                        "The run used every step its mode allows. Continue to give it more "
                        "steps, or switch to standard mode for a larger budget.");
    assert_string_equal(stop_recovery(STOP_MAX_STEPS, "deep"),
                        "The run used every step its mode allows. Continue to give it more "
                        "steps.");
    assert_string_equal(stop_recovery(STOP_MAX_TOOL_CALLS, "custom"),
                        "The run made every tool call its mode allows. Continue to give it more "
                        "tool calls.");
    assert_string_equal(stop_recovery(STOP_MAX_RETRIES, "deep"),
                        "The model endpoint kept failing with temporary errors. Check that the "
                        "model server is up and not overloaded, then retry.");
    assert_string_equal(stop_recovery(STOP_OWNER_BUDGET, "quick"),
                        "Your budget for this period is used up. Wait until it resets, or ask an "
                        "administrator to raise it with chatplane token budget.");
    /* Every reason has a suggestion, and only the budget ones depend on the
     * mode; none mentions a switch when there is no larger mode. */
    for (int r = 0; r < STOP__COUNT; r++) {
        const char *q = stop_recovery((stop_reason)r, "quick");
        const char *d = stop_recovery((stop_reason)r, "deep");
        assert_true(strlen(q) > 20);
        assert_int_equal(q[strlen(q) - 1], '.');
        assert_null(strstr(d, "switch"));
        if (stop_reason_is_budget((stop_reason)r))
            assert_non_null(strstr(q, "switch to standard mode"));
        else
            assert_ptr_equal(q, d);
    }
}

static void test_budget_details(void **state)
{
    (void)state;
    mode_limits l = {.steps = 10,
                     .seconds = 120,
                     .tokens = 50000,
                     .tool_calls = 15,
                     .retries = 3,
                     .cost_usd = 0.02};
    budget_usage u = {.steps = 10,
                      .seconds = 121.26,
                      .tokens = 50210,
                      .tool_calls = 15,
                      .retries = 3,
                      .cost_usd = 0.021345};
    struct {
        stop_reason r;
        const char *text;
    } cases[] = {
        {STOP_MAX_STEPS, "used 10 of 10 steps"},
        {STOP_MAX_SECONDS, "used 121.3 of 120 seconds"},
        {STOP_MAX_TOKENS, "used 50210 of 50000 tokens"},
        {STOP_MAX_TOOL_CALLS, "used 15 of 15 tool calls"},
        {STOP_MAX_COST, "spent $0.0213 of $0.0200"},
        {STOP_MAX_RETRIES, "used 3 of 3 retries"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = stop_budget_detail(cases[i].r, &l, &u);
        assert_string_equal(s, cases[i].text);
        free(s);
    }
    assert_null(stop_budget_detail(STOP_COMPLETED, &l, &u));
    assert_null(stop_budget_detail(STOP_LOOP_DETECTED, &l, &u));
}

static void test_budget_details_singular_and_unlimited(void **state)
{
    (void)state;
    mode_limits l = {.steps = 1, .seconds = 1, .tokens = 1, .tool_calls = 1, .retries = 1};
    budget_usage u = {.steps = 1, .seconds = 1.04, .tokens = 7, .tool_calls = 1, .retries = 1};
    char *s = stop_budget_detail(STOP_MAX_RETRIES, &l, &u);
    assert_string_equal(s, "used 1 of 1 retry");
    free(s);
    s = stop_budget_detail(STOP_MAX_TOOL_CALLS, &l, &u);
    assert_string_equal(s, "used 1 of 1 tool call");
    free(s);
    s = stop_budget_detail(STOP_MAX_SECONDS, &l, &u);
    assert_string_equal(s, "used 1.0 of 1 second");
    free(s);
    s = stop_budget_detail(STOP_MAX_TOKENS, &l, &u);
    assert_string_equal(s, "used 7 of 1 token");
    free(s);
    l.steps = MODE_UNLIMITED;
    l.cost_usd = MODE_UNLIMITED;
    u.steps = 4;
    u.cost_usd = 1.5;
    s = stop_budget_detail(STOP_MAX_STEPS, &l, &u);
    assert_string_equal(s, "used 4 steps");
    free(s);
    s = stop_budget_detail(STOP_MAX_COST, &l, &u);
    assert_string_equal(s, "spent $1.5000");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_is_budget),
        cmocka_unit_test(test_tone_of_every_reason),
        cmocka_unit_test(test_exit_of_every_reason),
        cmocka_unit_test(test_actions_of_every_reason),
        cmocka_unit_test(test_switch_mode_goes_one_larger),
        cmocka_unit_test(test_recovery_text),
        cmocka_unit_test(test_budget_details),
        cmocka_unit_test(test_budget_details_singular_and_unlimited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
