/* Unit tests for core/status: the run statuses of docs/runs.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/status.h"

static void test_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[STATUS__COUNT] = {
        "thinking", "responding",           "tool_running",     "retrying",
        "stopping", "waiting_for_approval", "waiting_for_input"};
    for (int i = 0; i < STATUS__COUNT; i++) {
        assert_string_equal(status_name((run_status)i), names[i]);
        run_status s = STATUS__COUNT;
        assert_int_equal(status_parse(names[i], &s), 0);
        assert_int_equal(s, i);
    }
}

static void test_unknown_names(void **state)
{
    (void)state;
    run_status s = STATUS_STOPPING;
    assert_int_equal(status_parse("idle", &s), -1);
    assert_int_equal(status_parse("Thinking", &s), -1);
    assert_int_equal(status_parse("", &s), -1);
    assert_int_equal(status_parse(NULL, &s), -1);
    assert_int_equal(s, STATUS_STOPPING);
    assert_string_equal(status_name(STATUS__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_unknown_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
