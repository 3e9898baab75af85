/* Unit tests for core/approval: the policy of docs/runs.md, Approvals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/approval.h"

static void test_glob(void **state)
{
    (void)state;
    assert_true(approval_glob_match("files__read_*", "files__read_file"));
    assert_true(approval_glob_match("files__read_*", "files__read_"));
    assert_false(approval_glob_match("files__read_*", "files__write_file"));
    assert_true(approval_glob_match("*", ""));
    assert_true(approval_glob_match("*", "calc"));
    assert_false(approval_glob_match("", "calc"));
    assert_true(approval_glob_match("", ""));
    assert_true(approval_glob_match("calc", "calc"));
    assert_false(approval_glob_match("calc", "calcx"));
    assert_false(approval_glob_match("calc", "cal"));
    assert_true(approval_glob_match("c?lc", "calc"));
    assert_false(approval_glob_match("c?lc", "clc"));
    assert_true(approval_glob_match("*__delete*", "fs__delete_all"));
    assert_true(approval_glob_match("a*b*c", "aXXbYYbZc"));
    assert_false(approval_glob_match("a*b*c", "aXXbYYbZ"));
    assert_true(approval_glob_match("**x", "x"));
    assert_true(approval_glob_match("a*", "a"));
    /* Case matters: tool names are compared byte for byte. */
    assert_false(approval_glob_match("Calc", "calc"));
}

static void test_names(void **state)
{
    (void)state;
    static const char *const pol[] = {"never", "risky", "always"};
    for (int i = 0; i < APPROVAL__POLICY_COUNT; i++) {
        approval_policy p = APPROVAL__POLICY_COUNT;
        assert_string_equal(approval_policy_name((approval_policy)i), pol[i]);
        assert_int_equal(approval_policy_parse(pol[i], &p), 0);
        assert_int_equal(p, i);
    }
    static const char *const act[] = {"allow", "ask", "deny"};
    for (int i = 0; i < APPROVAL__ACTION_COUNT; i++) {
        approval_action a = APPROVAL__ACTION_COUNT;
        assert_string_equal(approval_action_name((approval_action)i), act[i]);
        assert_int_equal(approval_action_parse(act[i], &a), 0);
        assert_int_equal(a, i);
    }
    static const char *const st[] = {"pending", "approved", "denied", "expired", "cancelled"};
    for (int i = 0; i < APPROVAL__STATUS_COUNT; i++) {
        approval_status s = APPROVAL__STATUS_COUNT;
        assert_string_equal(approval_status_name((approval_status)i), st[i]);
        assert_int_equal(approval_status_parse(st[i], &s), 0);
        assert_int_equal(s, i);
    }
    static const char *const rem[] = {"once", "run", "session"};
    for (int i = 0; i < APPROVAL__REMEMBER_COUNT; i++) {
        approval_remember r = APPROVAL__REMEMBER_COUNT;
        assert_string_equal(approval_remember_name((approval_remember)i), rem[i]);
        assert_int_equal(approval_remember_parse(rem[i], &r), 0);
        assert_int_equal(r, i);
    }
    approval_policy p = APPROVAL_NEVER;
    assert_int_equal(approval_policy_parse("Risky", &p), -1);
    assert_int_equal(approval_policy_parse(NULL, &p), -1);
    assert_int_equal(p, APPROVAL_NEVER);
    approval_action a = APPROVAL_ALLOW;
    assert_int_equal(approval_action_parse("block", &a), -1);
    assert_int_equal(a, APPROVAL_ALLOW);
    approval_status s = APPROVAL_PENDING;
    assert_int_equal(approval_status_parse("", &s), -1);
    approval_remember r = APPROVAL_ONCE;
    assert_int_equal(approval_remember_parse("always", &r), -1);
    assert_string_equal(approval_policy_name(APPROVAL__POLICY_COUNT), "unknown");
    assert_string_equal(approval_action_name(APPROVAL__ACTION_COUNT), "unknown");
    assert_string_equal(approval_status_name(APPROVAL__STATUS_COUNT), "unknown");
    assert_string_equal(approval_remember_name(APPROVAL__REMEMBER_COUNT), "unknown");
}

static const approval_rule rules[] = {
    {"files__read_*", APPROVAL_ALLOW},
    {"files__*", APPROVAL_ASK},
    {"shell__*", APPROVAL_DENY},
};

static approval_action decide(approval_policy p, const char *tool, bool ro, char *reason)
{
    return approval_decide(rules, 3, p, "deep", tool, ro, reason, APPROVAL_REASON_MAX);
}

/* The first matching rule decides, whatever the policy and read-only. */
static void test_rules_first_match(void **state)
{
    (void)state;
    char reason[APPROVAL_REASON_MAX];
    assert_int_equal(decide(APPROVAL_ALWAYS, "files__read_file", false, reason), APPROVAL_ALLOW);
    assert_string_equal(reason, "rule files__read_*");
    assert_int_equal(decide(APPROVAL_NEVER, "files__write", true, reason), APPROVAL_ASK);
    assert_string_equal(reason, "rule files__*");
    assert_int_equal(decide(APPROVAL_NEVER, "shell__run", true, reason), APPROVAL_DENY);
    assert_string_equal(reason, "rule shell__*");
}

/* Without a matching rule: never allows, risky asks unless read-only,
 * always asks every call. */
static void test_policies(void **state)
{
    (void)state;
    char reason[APPROVAL_REASON_MAX];
    assert_int_equal(decide(APPROVAL_NEVER, "db__drop", false, reason), APPROVAL_ALLOW);
    assert_string_equal(reason, "");
    assert_int_equal(decide(APPROVAL_RISKY, "db__drop", false, reason), APPROVAL_ASK);
    assert_string_equal(reason, "the tool is not marked read-only");
    assert_int_equal(decide(APPROVAL_RISKY, "calc", true, reason), APPROVAL_ALLOW);
    assert_string_equal(reason, "");
    assert_int_equal(decide(APPROVAL_ALWAYS, "calc", true, reason), APPROVAL_ASK);
    assert_string_equal(reason, "mode deep asks for every call");
    assert_int_equal(
        approval_decide(NULL, 0, APPROVAL_RISKY, "standard", "x", false, reason, sizeof reason),
        APPROVAL_ASK);
}

static void test_denied_result(void **state)
{
    (void)state;
    char *t = approval_denied_result("not today");
    assert_string_equal(t, "The user denied this call: not today. Do not retry it; answer "
                           "without it or ask the user.");
    free(t);
    t = approval_denied_result(NULL);
    assert_string_equal(t, "The user denied this call: no reason given. Do not retry it; answer "
                           "without it or ask the user.");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_rules_first_match),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_denied_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
