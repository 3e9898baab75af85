/* Unit tests for engine/llm_chain: names, order, and the circuit of each
 * provider (three failed steps in a row rest it; the first step after the
 * rest tries it again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/llm.h"

/* Providers that are never called: the chain only names and weighs them. */
static llm model_a = {.ops = NULL, .provider = "openai", .model = "gpt-mock"};
static llm model_b = {.ops = NULL, .provider = "anthropic", .model = "claude-mock"};

static llm_chain *two(int64_t rest_ms)
{
    llm_chain *c = llm_chain_new(rest_ms);
    budget_price price = {1.0, 5.0, true};
    llm_chain_add(c, "primary", &model_a, false, NULL);
    llm_chain_add(c, "backup", &model_b, false, &price);
    return c;
}

static void test_names_and_prices(void **state)
{
    (void)state;
    llm_chain *c = two(1000);
    assert_int_equal(llm_chain_size(c), 2);
    assert_ptr_equal(llm_chain_model(c, 1), &model_b);
    assert_string_equal(llm_chain_name(c, 0), "primary");
    assert_string_equal(llm_chain_label(c, 0), "primary/gpt-mock");
    assert_string_equal(llm_chain_label(c, 1), "backup/claude-mock");
    assert_null(llm_chain_price(c, 0));
    assert_true(llm_chain_price(c, 1)->output_per_mtok == 5.0);
    assert_int_equal(llm_chain_next(c, 0, 0), 0);
    assert_int_equal(llm_chain_next(c, 1, 0), 1);
    assert_int_equal(llm_chain_next(c, 2, 0), -1);
    llm_chain_free(c);
}

static void test_circuit(void **state)
{
    (void)state;
    llm_chain *c = two(1000);
    /* Two failures and a success: the count starts again. */
    assert_false(llm_chain_step_failed(c, 0, 10));
    assert_false(llm_chain_step_failed(c, 0, 20));
    llm_chain_step_ok(c, 0, 30);
    assert_false(llm_chain_step_failed(c, 0, 40));
    assert_false(llm_chain_step_failed(c, 0, 50));
    assert_false(llm_chain_resting(c, 0, 50));
    /* The third in a row opens it for the rest time. */
    assert_true(llm_chain_step_failed(c, 0, 100));
    assert_true(llm_chain_resting(c, 0, 100));
    assert_true(llm_chain_resting(c, 0, 1099));
    assert_int_equal(llm_chain_next(c, 0, 500), 1);
    assert_false(llm_chain_resting(c, 1, 500));
    /* After the rest it is tried again; one more failure rests it again. */
    assert_false(llm_chain_resting(c, 0, 1100));
    assert_int_equal(llm_chain_next(c, 0, 1100), 0);
    assert_true(llm_chain_step_failed(c, 0, 1200));
    assert_true(llm_chain_resting(c, 0, 2199));
    /* Both resting: none left. */
    for (int i = 0; i < 3; i++) llm_chain_step_failed(c, 1, 1300);
    assert_int_equal(llm_chain_next(c, 0, 1500), -1);
    /* A success after the rest closes it for good. */
    llm_chain_step_ok(c, 0, 2300);
    assert_false(llm_chain_resting(c, 0, 2300));
    assert_false(llm_chain_step_failed(c, 0, 2400));
    assert_false(llm_chain_resting(c, 0, 2400));
    llm_chain_free(c);
}

static void test_no_rest(void **state)
{
    (void)state;
    llm_chain *c = two(0);
    for (int i = 0; i < 3; i++) llm_chain_step_failed(c, 0, 7);
    assert_false(llm_chain_resting(c, 0, 7));
    llm_chain_free(c);
    llm_chain_free(NULL);

    /* A lone provider never rests. */
    c = llm_chain_new(1000);
    llm_chain_add(c, "primary", &model_a, false, NULL);
    for (int i = 0; i < 5; i++) assert_false(llm_chain_step_failed(c, 0, 7));
    assert_false(llm_chain_resting(c, 0, 7));
    assert_int_equal(llm_chain_next(c, 0, 7), 0);
    llm_chain_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_prices),
        cmocka_unit_test(test_circuit),
        cmocka_unit_test(test_no_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
