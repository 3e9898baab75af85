/* Unit tests for core/guard: the guardrails of a run (docs/runs.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/guard.h"

static const mode_guard DEFAULTS = {
    .loop_warn = 3, .loop_stop = 4, .fail_warn = 2, .fail_stop = 3, .stale_steps = 4};

/* Loop thresholds out of reach, for tests of the other rules. */
static const mode_guard NO_REPEAT = {
    .loop_warn = 100, .loop_stop = 101, .fail_warn = 2, .fail_stop = 3, .stale_steps = 4};

/* Reports one call; args is JSON text or NULL. Returns the verdict count. */
static size_t call(guard *g, int step, const char *tool, const char *args, const char *status,
                   const char *result, guard_verdict *out)
{
    json_t *a = NULL;
    if (args) {
        a = json_loads(args, 0, NULL);
        assert_non_null(a);
    }
    size_t n = guard_on_tool_result(g, step, tool, a, status, result, out);
    json_decref(a);
    assert_true(n <= GUARD_MAX_VERDICTS);
    return n;
}

/* Reports a call and asserts it produced no verdict. */
static void call_quiet(guard *g, int step, const char *tool, const char *args, const char *status,
                       const char *result)
{
    guard_verdict v[GUARD_MAX_VERDICTS];
    assert_int_equal(call(g, step, tool, args, status, result, v), 0);
}

/* Reports a turn and asserts it produced no verdict. */
static void turn_quiet(guard *g, int step, const char *text, size_t tool_calls)
{
    guard_verdict v[GUARD_MAX_VERDICTS];
    assert_int_equal(guard_on_turn(g, step, text, tool_calls, v), 0);
}

static void assert_evidence(const guard_verdict *v, const char *expected)
{
    assert_non_null(v->evidence);
    char *s = json_dumps(v->evidence, JSON_COMPACT);
    assert_string_equal(s, expected);
    free(s);
}

static void cleanup_all(guard_verdict *v, size_t n)
{
    for (size_t i = 0; i < n; i++) guard_verdict_cleanup(&v[i]);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(guard_check_name(GUARD_LOOP), "loop");
    assert_string_equal(guard_check_name(GUARD_REPEATED_FAILURE), "repeated_failure");
    assert_string_equal(guard_check_name(GUARD_NO_PROGRESS), "no_progress");
    assert_string_equal(guard_action_name(GUARD_WARN), "warn");
    assert_string_equal(guard_action_name(GUARD_STOP), "stop");
    guard_free(NULL);
}

static void test_loop_repeat_warn_then_stop(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"2+2\"}", "ok", "4");
    /* Key order and white space do not change the fingerprint. */
    call_quiet(g, 2, "calc", "{ \"expression\" : \"2+2\" }", "ok", "4");

    assert_int_equal(call(g, 3, "calc", "{\"expression\":\"2+2\"}", "ok", "4", v), 1);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].nudge,
                        "You have called calc with the same arguments 3 times and got the same "
                        "result. Do not repeat it; change approach or answer with what you have.");
    assert_string_equal(v[0].detail, "calc was called 3 times with {\"expression\":\"2+2\"}");
    assert_evidence(&v[0], "{\"tool\":\"calc\",\"arguments\":{\"expression\":\"2+2\"},\"count\":3,"
                           "\"result\":\"4\"}");
    guard_verdict_cleanup(&v[0]);
    assert_null(v[0].detail);
    assert_null(v[0].nudge);
    assert_null(v[0].evidence);

    assert_int_equal(call(g, 4, "calc", "{\"expression\":\"2+2\"}", "ok", "4", v), 1);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_LOOP_DETECTED);
    assert_null(v[0].nudge);
    assert_string_equal(v[0].detail, "calc was called 4 times with {\"expression\":\"2+2\"}");
    assert_evidence(&v[0], "{\"tool\":\"calc\",\"arguments\":{\"expression\":\"2+2\"},\"count\":4,"
                           "\"result\":\"4\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_loop_stop_detail_of_failing_call(void **state)
{
    (void)state;
    mode_guard th = DEFAULTS;
    th.fail_warn = 10;
    th.fail_stop = 11;
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    call_quiet(g, 2, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 3, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    assert_int_equal(call(g, 4, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_string_equal(v[0].detail, "calc was called 4 times with {\"expression\":\"1/0\"}");
    assert_evidence(&v[0], "{\"tool\":\"calc\",\"arguments\":{\"expression\":\"1/0\"},\"count\":4,"
                           "\"result\":\"division by zero\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_loop_changed_outcome_is_not_identical(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    call_quiet(g, 2, "clock", NULL, "ok", "12:01");
    call_quiet(g, 3, "clock", NULL, "ok", "12:00");
    call_quiet(g, 4, "clock", NULL, "ok", "12:01");
    /* The same text with another status is another outcome. */
    call_quiet(g, 5, "clock", NULL, "timeout", "12:00");
    /* {} is the same fingerprint as no arguments: the third identical call. */
    assert_int_equal(call(g, 6, "clock", "{}", "ok", "12:00", v), 1);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].detail, "clock was called 3 times with {}");
    assert_evidence(&v[0],
                    "{\"tool\":\"clock\",\"arguments\":{},\"count\":3,\"result\":\"12:00\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_loop_warns_every_call_below_stop(void **state)
{
    (void)state;
    mode_guard th = DEFAULTS;
    th.loop_warn = 2;
    th.loop_stop = 5;
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1\"}", "ok", "1");
    for (int count = 2; count <= 4; count++) {
        assert_int_equal(call(g, count, "calc", "{\"expression\":\"1\"}", "ok", "1", v), 1);
        assert_int_equal(v[0].action, GUARD_WARN);
        char want[256];
        snprintf(want, sizeof want,
                 "You have called calc with the same arguments %d times and got the same result. "
                 "Do not repeat it; change approach or answer with what you have.",
                 count);
        assert_string_equal(v[0].nudge, want);
        guard_verdict_cleanup(&v[0]);
    }
    assert_int_equal(call(g, 5, "calc", "{\"expression\":\"1\"}", "ok", "1", v), 1);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_string_equal(v[0].detail, "calc was called 5 times with {\"expression\":\"1\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_loop_result_in_evidence_is_capped(void **state)
{
    (void)state;
    mode_guard th = DEFAULTS;
    th.loop_warn = 1;
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    char result[2001];
    memset(result, 'r', 2000);
    result[2000] = '\0';
    assert_int_equal(call(g, 1, "t", NULL, "ok", result, v), 1);
    const char *r = json_string_value(json_object_get(v[0].evidence, "result"));
    assert_int_equal(strlen(r), 1024 + strlen("…"));
    assert_memory_equal(r, result, 1024);
    assert_string_equal(r + 1024, "…");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_alternating_stops(void **state)
{
    (void)state;
    guard *g = guard_new(&NO_REPEAT);
    guard_verdict v[GUARD_MAX_VERDICTS];
    for (int i = 0; i < 2; i++) {
        call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
        call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    }
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    assert_int_equal(call(g, 1, "clock", NULL, "ok", "12:00", v), 1);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_LOOP_DETECTED);
    assert_null(v[0].nudge);
    assert_string_equal(v[0].detail,
                        "calc and clock were called alternately 6 times with unchanged results");
    assert_evidence(&v[0], "{\"tools\":[\"calc\",\"clock\"],\"arguments\":[{\"expression\":"
                           "\"1+1\"},{}],\"count\":6}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_alternating_with_default_thresholds(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    call_quiet(g, 2, "clock", NULL, "ok", "12:00");
    call_quiet(g, 2, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    /* The fifth call is clock's third identical one: a repeat warning. */
    assert_int_equal(call(g, 3, "clock", NULL, "ok", "12:00", v), 1);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    /* The sixth is calc's third too, but the alternating stop replaces that
     * warning of the same check. */
    assert_int_equal(call(g, 3, "calc", "{\"expression\":\"1+1\"}", "ok", "2", v), 1);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_string_equal(v[0].detail,
                        "clock and calc were called alternately 6 times with unchanged results");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_alternating_with_changed_outcome_does_not_fire(void **state)
{
    (void)state;
    guard *g = guard_new(&NO_REPEAT);
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    call_quiet(g, 1, "clock", NULL, "ok", "12:01");
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    call_quiet(g, 1, "clock", NULL, "ok", "12:01");
    guard_free(g);
}

static void test_alternating_needs_the_pattern(void **state)
{
    (void)state;
    guard *g = guard_new(&NO_REPEAT);
    /* A,A,B,B,A,A,B,B: never A,B,A,B,A,B. */
    for (int i = 0; i < 2; i++) {
        call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
        call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
        call_quiet(g, 1, "clock", NULL, "ok", "12:00");
        call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    }
    guard_free(g);

    /* The same call six times is a repeat, not an alternation (A == B). */
    g = guard_new(&NO_REPEAT);
    for (int i = 0; i < 7; i++) call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    guard_free(g);

    /* Five alternating calls are not enough. */
    g = guard_new(&NO_REPEAT);
    call_quiet(g, 1, "other", NULL, "ok", "12:00");
    for (int i = 0; i < 2; i++) {
        call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
        call_quiet(g, 1, "clock", NULL, "ok", "12:00");
    }
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    guard_free(g);
}

static void test_repeat_and_alternating_stop_together(void **state)
{
    (void)state;
    mode_guard th = NO_REPEAT;
    th.loop_warn = 2;
    th.loop_stop = 3;
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "a", NULL, "ok", "1");
    call_quiet(g, 1, "b", NULL, "ok", "1");
    assert_int_equal(call(g, 1, "a", NULL, "ok", "1", v), 1);
    guard_verdict_cleanup(&v[0]);
    assert_int_equal(call(g, 1, "b", NULL, "ok", "1", v), 1);
    guard_verdict_cleanup(&v[0]);
    assert_int_equal(call(g, 1, "a", NULL, "ok", "1", v), 1);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_string_equal(v[0].detail, "a was called 3 times with {}");
    guard_verdict_cleanup(&v[0]);
    /* Sixth call: b's third identical call and A,B,A,B,A,B at once. */
    assert_int_equal(call(g, 1, "b", NULL, "ok", "1", v), 1);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_string_equal(v[0].detail, "b was called 3 times with {}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_failure_warn_then_stop(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 2, "calc", "{\"expression\":\"2/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].nudge,
                        "The last 2 tool calls failed (last: calc: division by zero). Check the "
                        "arguments or try a different approach instead of repeating the call.");
    assert_string_equal(v[0].detail, "2 tool calls failed in a row (last: calc: division by zero)");
    assert_evidence(&v[0], "{\"tool\":\"calc\",\"arguments\":{\"expression\":\"2/0\"},\"count\":2,"
                           "\"error\":\"division by zero\"}");
    guard_verdict_cleanup(&v[0]);

    assert_int_equal(call(g, 3, "calc", "{\"expression\":\"3/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_REPEATED_FAILURES);
    assert_null(v[0].nudge);
    assert_string_equal(v[0].detail, "3 tool calls failed in a row (last: calc: division by zero)");
    assert_evidence(&v[0], "{\"tool\":\"calc\",\"arguments\":{\"expression\":\"3/0\"},\"count\":3,"
                           "\"error\":\"division by zero\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_failure_streak_reset_by_success(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"2/0\"}", "error", "division by zero", v),
                     1);
    guard_verdict_cleanup(&v[0]);
    call_quiet(g, 2, "calc", "{\"expression\":\"2/1\"}", "ok", "2");
    call_quiet(g, 3, "calc", "{\"expression\":\"3/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 3, "calc", "{\"expression\":\"4/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_failure_timeout_counts_cancelled_leaves(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "fetch", "{\"url\":\"a\"}", "error", "HTTP 500");
    call_quiet(g, 1, "fetch", "{\"url\":\"b\"}", "cancelled", "cancelled");
    assert_int_equal(call(g, 1, "fetch", "{\"url\":\"c\"}", "timeout", "timed out after 30 s", v),
                     1);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].detail,
                        "2 tool calls failed in a row (last: fetch: timed out after 30 s)");
    guard_verdict_cleanup(&v[0]);
    call_quiet(g, 2, "fetch", "{\"url\":\"d\"}", "cancelled", "");
    assert_int_equal(call(g, 2, "fetch", "{\"url\":\"e\"}", "timeout", NULL, v), 1);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_string_equal(v[0].detail, "3 tool calls failed in a row (last: fetch)");
    assert_evidence(&v[0], "{\"tool\":\"fetch\",\"arguments\":{\"url\":\"e\"},\"count\":3,"
                           "\"error\":\"\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_failure_error_text_capped_at_boundary(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    /* 199 bytes, then a two-byte character across the 200-byte cap. */
    char error[400];
    memset(error, 'x', 199);
    strcpy(error + 199, "\xc3\xa9");
    memset(error + 201, 'y', 99);
    error[300] = '\0';
    call_quiet(g, 1, "t", "{\"n\":1}", "error", error);
    assert_int_equal(call(g, 1, "t", "{\"n\":2}", "error", error, v), 1);

    char want[400] = "2 tool calls failed in a row (last: t: ";
    size_t at = strlen(want);
    memset(want + at, 'x', 199);
    strcpy(want + at + 199, "…)");
    assert_string_equal(v[0].detail, want);
    /* The evidence keeps up to 1 KiB. */
    assert_string_equal(json_string_value(json_object_get(v[0].evidence, "error")), error);
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    mode_guard th = DEFAULTS;
    th.loop_warn = 1;
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    assert_int_equal(call(g, 1, "t", NULL, "ok",
                          "a\xff"
                          "b\xc3",
                          v),
                     1);
    assert_evidence(&v[0], "{\"tool\":\"t\",\"arguments\":{},\"count\":1,\"result\":\"a?b?\"}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_loop_warn_and_failure_stop_together(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    const char *args = "{\"expression\":\"1/0\"}";
    call_quiet(g, 1, "calc", args, "error", "division by zero");
    assert_int_equal(call(g, 2, "calc", args, "error", "division by zero", v), 1);
    assert_int_equal(v[0].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    /* Third identical failing call: the loop warning first, the stop last. */
    assert_int_equal(call(g, 3, "calc", args, "error", "division by zero", v), 2);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_int_equal(v[1].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[1].action, GUARD_STOP);
    assert_string_equal(v[1].detail, "3 tool calls failed in a row (last: calc: division by zero)");
    cleanup_all(v, 2);
    guard_free(g);
}

static void test_failure_warn_and_loop_stop_together(void **state)
{
    (void)state;
    mode_guard th = {
        .loop_warn = 2, .loop_stop = 3, .fail_warn = 3, .fail_stop = 4, .stale_steps = 4};
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     2);
    assert_int_equal(v[0].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].detail, "3 tool calls failed in a row (last: calc: division by zero)");
    assert_int_equal(v[1].check, GUARD_LOOP);
    assert_int_equal(v[1].action, GUARD_STOP);
    cleanup_all(v, 2);
    guard_free(g);
}

static void test_loop_and_failure_warn_then_one_stop(void **state)
{
    (void)state;
    mode_guard th = {
        .loop_warn = 2, .loop_stop = 3, .fail_warn = 2, .fail_stop = 3, .stale_steps = 4};
    guard *g = guard_new(&th);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     2);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_int_equal(v[1].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[1].action, GUARD_WARN);
    cleanup_all(v, 2);
    /* Both checks reach their stop: the run ends once, with the loop. */
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_LOOP_DETECTED);
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_set_thresholds_takes_effect(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    mode_guard th = {
        .loop_warn = 5, .loop_stop = 6, .fail_warn = 3, .fail_stop = 5, .stale_steps = 2};
    guard_set_thresholds(g, &th);
    /* Would warn at 2 under the defaults; the counts made so far remain. */
    call_quiet(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero");
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     1);
    assert_int_equal(v[0].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].detail, "4 tool calls failed in a row (last: calc: division by zero)");
    guard_verdict_cleanup(&v[0]);
    assert_int_equal(call(g, 1, "calc", "{\"expression\":\"1/0\"}", "error", "division by zero", v),
                     2);
    assert_int_equal(v[0].check, GUARD_LOOP);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(v[0].detail, "calc was called 5 times with {\"expression\":\"1/0\"}");
    assert_int_equal(v[1].check, GUARD_REPEATED_FAILURE);
    assert_int_equal(v[1].action, GUARD_STOP);
    cleanup_all(v, 2);
    guard_free(g);
}

static void test_set_thresholds_stale_steps(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    turn_quiet(g, 1, NULL, 1);
    call_quiet(g, 2, "calc", "{\"expression\":\"2*1\"}", "ok", "2");
    turn_quiet(g, 2, NULL, 1);
    mode_guard th = DEFAULTS;
    th.stale_steps = 2;
    guard_set_thresholds(g, &th);
    call_quiet(g, 3, "calc", "{\"expression\":\"4-2\"}", "ok", "2");
    assert_int_equal(guard_on_turn(g, 3, NULL, 1, v), 1);
    assert_string_equal(v[0].detail,
                        "2 steps in a row produced only results already seen in this run");
    assert_evidence(&v[0], "{\"steps\":2}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_empty_turn_warns_then_stops(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    assert_int_equal(guard_on_turn(g, 1, "", 0, v), 1);
    assert_int_equal(v[0].check, GUARD_NO_PROGRESS);
    assert_int_equal(v[0].action, GUARD_WARN);
    assert_string_equal(
        v[0].nudge, "Your last reply was empty. Answer the user, or call a tool if you need one.");
    assert_string_equal(v[0].detail, "the model returned an empty turn");
    assert_evidence(&v[0], "{\"count\":1}");
    guard_verdict_cleanup(&v[0]);

    assert_int_equal(guard_on_turn(g, 2, NULL, 0, v), 1);
    assert_int_equal(v[0].check, GUARD_NO_PROGRESS);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_NO_PROGRESS);
    assert_null(v[0].nudge);
    assert_string_equal(v[0].detail, "the model returned 2 empty turns in a row");
    assert_evidence(&v[0], "{\"count\":2}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_empty_turn_streak_reset(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    assert_int_equal(guard_on_turn(g, 1, " \n\t", 0, v), 1);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    turn_quiet(g, 2, "Here is the answer.", 0);
    assert_int_equal(guard_on_turn(g, 3, "", 0, v), 1);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    /* No text but a tool call is not an empty turn, and resets too. */
    call_quiet(g, 4, "clock", NULL, "ok", "12:00");
    turn_quiet(g, 4, "", 1);
    assert_int_equal(guard_on_turn(g, 5, "\r\n", 0, v), 1);
    assert_int_equal(v[0].action, GUARD_WARN);
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_monologue_third_time_stops(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    turn_quiet(g, 1, "The answer is 4.", 0);
    turn_quiet(g, 2, "Something else.", 0);
    turn_quiet(g, 3, "  The answer is 4.\n", 0);
    /* Inner white space is part of the text. */
    turn_quiet(g, 4, "The answer  is 4.", 0);
    assert_int_equal(guard_on_turn(g, 5, "\tThe answer is 4. ", 0, v), 1);
    assert_int_equal(v[0].check, GUARD_NO_PROGRESS);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_NO_PROGRESS);
    assert_null(v[0].nudge);
    assert_string_equal(v[0].detail, "the model repeated the same answer 3 times");
    assert_evidence(&v[0], "{\"text\":\"The answer is 4.\",\"count\":3}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

/* Runs one step whose single call returns "2" with fresh arguments. */
static size_t stale_step(guard *g, int step, guard_verdict *v)
{
    char args[64];
    snprintf(args, sizeof args, "{\"expression\":\"%d/%d\"}", 2 * step, step);
    call_quiet(g, step, "calc", args, "ok", "2");
    return guard_on_turn(g, step, NULL, 1, v);
}

static void test_stale_steps_stop(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    /* Step 1 sees "2" for the first time; steps 2 to 4 only repeat it. */
    for (int step = 1; step <= 4; step++) assert_int_equal(stale_step(g, step, v), 0);
    assert_int_equal(stale_step(g, 5, v), 1);
    assert_int_equal(v[0].check, GUARD_NO_PROGRESS);
    assert_int_equal(v[0].action, GUARD_STOP);
    assert_int_equal(v[0].reason, STOP_NO_PROGRESS);
    assert_null(v[0].nudge);
    assert_string_equal(v[0].detail,
                        "4 steps in a row produced only results already seen in this run");
    assert_evidence(&v[0], "{\"steps\":4}");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_stale_streak_reset_by_new_outcome(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    for (int step = 1; step <= 4; step++) assert_int_equal(stale_step(g, step, v), 0);
    /* Step 5 has one seen and one new outcome: not stale. */
    call_quiet(g, 5, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    call_quiet(g, 5, "calc", "{\"expression\":\"1+2\"}", "ok", "3");
    turn_quiet(g, 5, "Let me check.", 2);
    for (int step = 6; step <= 8; step++) assert_int_equal(stale_step(g, step, v), 0);
    assert_int_equal(stale_step(g, 9, v), 1);
    assert_string_equal(v[0].detail,
                        "4 steps in a row produced only results already seen in this run");
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_stale_streak_reset_by_turn_without_tools(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    for (int step = 1; step <= 4; step++) assert_int_equal(stale_step(g, step, v), 0);
    turn_quiet(g, 5, "Thinking it over.", 0);
    for (int step = 6; step <= 8; step++) assert_int_equal(stale_step(g, step, v), 0);
    assert_int_equal(stale_step(g, 9, v), 1);
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

static void test_stale_counts_outcomes_within_a_step(void **state)
{
    (void)state;
    guard *g = guard_new(&DEFAULTS);
    guard_verdict v[GUARD_MAX_VERDICTS];
    /* A step whose outcome is new, even though its second call repeats the
     * first one's outcome, is not stale. */
    call_quiet(g, 1, "calc", "{\"expression\":\"1+1\"}", "ok", "2");
    call_quiet(g, 1, "calc", "{\"expression\":\"2+0\"}", "ok", "2");
    turn_quiet(g, 1, NULL, 2);
    for (int step = 2; step <= 4; step++) assert_int_equal(stale_step(g, step, v), 0);
    /* The status is part of the outcome: "2" as an error is new. */
    call_quiet(g, 5, "calc", "{\"expression\":\"x\"}", "error", "2");
    turn_quiet(g, 5, NULL, 1);
    for (int step = 6; step <= 8; step++) assert_int_equal(stale_step(g, step, v), 0);
    /* A step asking for tools whose results were never reported resets. */
    turn_quiet(g, 9, NULL, 1);
    for (int step = 10; step <= 12; step++) assert_int_equal(stale_step(g, step, v), 0);
    assert_int_equal(stale_step(g, 13, v), 1);
    guard_verdict_cleanup(&v[0]);
    guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_loop_repeat_warn_then_stop),
        cmocka_unit_test(test_loop_stop_detail_of_failing_call),
        cmocka_unit_test(test_loop_changed_outcome_is_not_identical),
        cmocka_unit_test(test_loop_warns_every_call_below_stop),
        cmocka_unit_test(test_loop_result_in_evidence_is_capped),
        cmocka_unit_test(test_alternating_stops),
        cmocka_unit_test(test_alternating_with_default_thresholds),
        cmocka_unit_test(test_alternating_with_changed_outcome_does_not_fire),
        cmocka_unit_test(test_alternating_needs_the_pattern),
        cmocka_unit_test(test_repeat_and_alternating_stop_together),
        cmocka_unit_test(test_failure_warn_then_stop),
        cmocka_unit_test(test_failure_streak_reset_by_success),
        cmocka_unit_test(test_failure_timeout_counts_cancelled_leaves),
        cmocka_unit_test(test_failure_error_text_capped_at_boundary),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
        cmocka_unit_test(test_loop_warn_and_failure_stop_together),
        cmocka_unit_test(test_failure_warn_and_loop_stop_together),
        cmocka_unit_test(test_loop_and_failure_warn_then_one_stop),
        cmocka_unit_test(test_set_thresholds_takes_effect),
        cmocka_unit_test(test_set_thresholds_stale_steps),
        cmocka_unit_test(test_empty_turn_warns_then_stops),
        cmocka_unit_test(test_empty_turn_streak_reset),
        cmocka_unit_test(test_monologue_third_time_stops),
        cmocka_unit_test(test_stale_steps_stop),
        cmocka_unit_test(test_stale_streak_reset_by_new_outcome),
        cmocka_unit_test(test_stale_streak_reset_by_turn_without_tools),
        cmocka_unit_test(test_stale_counts_outcomes_within_a_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
