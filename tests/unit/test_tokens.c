/* Unit tests for core/tokens: the bytes-per-token estimate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/context.h"
#include "core/tokens.h"

static void test_rounds_up(void **state)
{
    (void)state;
    assert_int_equal(tokens_estimate(0), 0);
    assert_int_equal(tokens_estimate(1), 1);
    assert_int_equal(tokens_estimate(4), 1);
    assert_int_equal(tokens_estimate(5), 2);
    assert_int_equal(tokens_estimate(8), 2);
    assert_int_equal(tokens_estimate(1000001), 250001);
}

/* The prompt estimate is the same rule applied to the compact JSON. */
static void test_context_uses_it(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "a", "bcd"); /* {"a":"bcd"}: 11 bytes */
    assert_int_equal(context_estimate_tokens(v), 3);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounds_up),
        cmocka_unit_test(test_context_uses_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
