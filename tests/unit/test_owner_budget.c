/* Unit tests for core/owner_budget: the text form of a budget, the
 * decision before a model call and the wording of a stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"
#include "core/evt.h"
#include "core/owner_budget.h"

#define DAY_MS 86400000LL

static owner_budget_spec parse_ok(const char *text)
{
    owner_budget_spec b;
    char err[OWNER_BUDGET_ERR_MAX] = "";
    assert_int_equal(owner_budget_parse(text, &b, err, sizeof err), 0);
    assert_string_equal(err, "");
    return b;
}

static void parse_bad(const char *text, const char *want)
{
    owner_budget_spec b;
    char err[OWNER_BUDGET_ERR_MAX] = "";
    assert_int_equal(owner_budget_parse(text, &b, err, sizeof err), -1);
    assert_string_equal(err, want);
}

static void test_parse(void **state)
{
    (void)state;
    owner_budget_spec b = parse_ok("cost_usd=20/day");
    assert_int_equal(b.dim, OWNER_BUDGET_COST);
    assert_int_equal(b.period, PERIOD_DAY);
    assert_int_equal(b.limit, 20000000);
    b = parse_ok("tokens=2000000/month");
    assert_int_equal(b.dim, OWNER_BUDGET_TOKENS);
    assert_int_equal(b.period, PERIOD_MONTH);
    assert_int_equal(b.limit, 2000000);
    b = parse_ok("cost_usd=0.000001/week");
    assert_int_equal(b.limit, 1);
    b = parse_ok("cost_usd=12.5/week");
    assert_int_equal(b.limit, 12500000);

    parse_bad("cost_usd", "budget 'cost_usd' must read DIMENSION=AMOUNT/PERIOD, as in "
                          "cost_usd=20/day");
    parse_bad("day/cost_usd=20", "budget 'day/cost_usd=20' must read DIMENSION=AMOUNT/PERIOD, as "
                                 "in cost_usd=20/day");
    parse_bad("steps=20/day", "budget 'steps=20/day' names an unknown dimension; use tokens or "
                              "cost_usd");
    parse_bad("tokens=20/year", "budget 'tokens=20/year' names an unknown period; use day, week "
                                "or month");
    parse_bad("tokens=1.5/day", "budget 'tokens=1.5/day' needs a whole number of tokens from 1 "
                                "to 10^15");
    parse_bad("tokens=0/day", "budget 'tokens=0/day' needs a whole number of tokens from 1 to "
                              "10^15");
    parse_bad("tokens=/day", "budget 'tokens=/day' needs a whole number of tokens from 1 to "
                             "10^15");
    parse_bad("tokens=1000000000000001/day", "budget 'tokens=1000000000000001/day' needs a whole "
                                             "number of tokens from 1 to 10^15");
    parse_bad("cost_usd=0.0000001/day", "budget 'cost_usd=0.0000001/day' needs an amount of "
                                        "dollars above 0 with at most 6 decimals, up to 10^9");
    parse_bad("cost_usd=-1/day", "budget 'cost_usd=-1/day' needs an amount of dollars above 0 "
                                 "with at most 6 decimals, up to 10^9");
    parse_bad("cost_usd=1./day", "budget 'cost_usd=1./day' needs an amount of dollars above 0 "
                                 "with at most 6 decimals, up to 10^9");
    parse_bad("cost_usd=.5/day", "budget 'cost_usd=.5/day' needs an amount of dollars above 0 "
                                 "with at most 6 decimals, up to 10^9");
    parse_bad("cost_usd=1000000001/day", "budget 'cost_usd=1000000001/day' needs an amount of "
                                         "dollars above 0 with at most 6 decimals, up to 10^9");
}

static void test_format(void **state)
{
    (void)state;
    char out[64];
    owner_budget_spec b = parse_ok("cost_usd=12.50/week");
    owner_budget_format_spec(&b, out, sizeof out);
    assert_string_equal(out, "cost_usd=12.5/week");
    b = parse_ok("tokens=2000000/month");
    owner_budget_format_spec(&b, out, sizeof out);
    assert_string_equal(out, "tokens=2000000/month");
    owner_budget_format_amount(OWNER_BUDGET_COST, 20000000, out, sizeof out);
    assert_string_equal(out, "$20.00");
    owner_budget_format_amount(OWNER_BUDGET_COST, 21300, out, sizeof out);
    assert_string_equal(out, "$0.0213");
    owner_budget_format_amount(OWNER_BUDGET_COST, 1, out, sizeof out);
    assert_string_equal(out, "$0.000001");
    owner_budget_format_amount(OWNER_BUDGET_TOKENS, 1, out, sizeof out);
    assert_string_equal(out, "1 token");
    owner_budget_format_amount(OWNER_BUDGET_TOKENS, 2000, out, sizeof out);
    assert_string_equal(out, "2000 tokens");
    assert_true(owner_budget_api_amount(OWNER_BUDGET_COST, 2500000) == 2.5);
    assert_true(owner_budget_api_amount(OWNER_BUDGET_TOKENS, 2500000) == 2500000.0);
}

static owner_budget_state state_of(const char *text, int64_t used, int64_t reserved)
{
    owner_budget_state s = {.spec = parse_ok(text), .used = used, .reserved = reserved};
    return s;
}

/* A tokens budget caps the completion at the room after the prompt and
 * holds the whole call. */
static void test_decide_tokens(void **state)
{
    (void)state;
    owner_budget_state st[1] = {state_of("tokens=1000/day", 300, 200)};
    owner_budget_plan p = owner_budget_decide(st, 1, 100, 1000, NULL);
    assert_false(p.stop);
    assert_int_equal(p.max_completion_tokens, 400);
    assert_int_equal(p.reserve[0], 500);
    /* The run's own cap wins when it is smaller. */
    p = owner_budget_decide(st, 1, 100, 50, NULL);
    assert_false(p.stop);
    assert_int_equal(p.max_completion_tokens, 50);
    assert_int_equal(p.reserve[0], 150);
    /* An unlimited run (-1) gets the owner's room. */
    p = owner_budget_decide(st, 1, 100, -1, NULL);
    assert_int_equal(p.max_completion_tokens, 400);
    /* Room for the prompt and one token is still a call. */
    p = owner_budget_decide(st, 1, 499, -1, NULL);
    assert_false(p.stop);
    assert_int_equal(p.max_completion_tokens, 1);
    assert_int_equal(p.reserve[0], 500);
    /* No room beyond the prompt: stop. */
    p = owner_budget_decide(st, 1, 500, -1, NULL);
    assert_true(p.stop);
    assert_int_equal(p.over, 0);
    st[0].used = 800;
    p = owner_budget_decide(st, 1, 0, -1, NULL);
    assert_true(p.stop);
}

/* A cost budget with a price caps the completion by the dollars left;
 * the tightest of several budgets decides and each holds the call. */
static void test_decide_cost_and_several(void **state)
{
    (void)state;
    budget_price price = {.input_per_mtok = 1.0, .output_per_mtok = 2.0, .set = true};
    /* $0.001 = 1000 micro-dollars: 100 prompt tokens cost 100, so 900 are
     * left for 450 completion tokens. */
    owner_budget_state st[2] = {state_of("cost_usd=0.001/day", 0, 0),
                                state_of("tokens=10000/month", 0, 0)};
    owner_budget_plan p = owner_budget_decide(st, 2, 100, 4000, &price);
    assert_false(p.stop);
    assert_int_equal(p.max_completion_tokens, 450);
    assert_int_equal(p.reserve[0], 1000);
    assert_int_equal(p.reserve[1], 550);
    /* The tokens budget is tighter now. */
    st[1].used = 9700;
    p = owner_budget_decide(st, 2, 100, 4000, &price);
    assert_int_equal(p.max_completion_tokens, 200);
    assert_int_equal(p.reserve[0], 500);
    assert_int_equal(p.reserve[1], 300);
    /* The cost budget has nothing left: it is the one named. */
    st[0].used = 950;
    st[0].reserved = 50;
    p = owner_budget_decide(st, 2, 100, 4000, &price);
    assert_true(p.stop);
    assert_int_equal(p.over, 0);
    /* Without a price a cost budget holds nothing back and stops only once
     * used reaches it. */
    st[0].used = 10;
    st[0].reserved = 0;
    st[1].used = 0;
    p = owner_budget_decide(st, 2, 100, 4000, NULL);
    assert_false(p.stop);
    assert_int_equal(p.max_completion_tokens, 4000);
    assert_int_equal(p.reserve[0], 0);
    assert_int_equal(p.reserve[1], 4100);
    st[0].used = 1000;
    p = owner_budget_decide(st, 2, 100, 4000, NULL);
    assert_true(p.stop);
    assert_int_equal(p.over, 0);
}

static void test_amount(void **state)
{
    (void)state;
    budget_price price = {.input_per_mtok = 0.15, .output_per_mtok = 0.6, .set = true};
    assert_int_equal(owner_budget_amount(OWNER_BUDGET_TOKENS, 120, 30, &price), 150);
    /* 120 * 0.15 = 18, 30 * 0.6 = 18. */
    assert_int_equal(owner_budget_amount(OWNER_BUDGET_COST, 120, 30, &price), 36);
    /* A fraction of a micro-dollar rounds up. */
    assert_int_equal(owner_budget_amount(OWNER_BUDGET_COST, 1, 0, &price), 1);
    assert_int_equal(owner_budget_amount(OWNER_BUDGET_COST, 120, 30, NULL), 0);
    assert_int_equal(owner_budget_amount(OWNER_BUDGET_TOKENS, -1, 5, NULL), 5);
}

static void test_stop_detail(void **state)
{
    (void)state;
    int64_t dec3 = civil_days_from(2026, 12, 3) * DAY_MS;
    owner_budget_state s = state_of("cost_usd=20/day", 20000000, 0);
    s.period_start_ms = dec3;
    char *d = owner_budget_stop_detail("alice", &s);
    assert_string_equal(d, "alice used $20.00 of $20.00 this day; it resets at "
                           "2026-12-04T00:00:00Z");
    free(d);
    s = state_of("tokens=2000/week", 1500, 300);
    s.period_start_ms = civil_days_from(2026, 11, 30) * DAY_MS;
    d = owner_budget_stop_detail("bob", &s);
    assert_string_equal(d, "bob used 1500 of 2000 tokens (300 tokens more held by calls in "
                           "flight) this week; it resets at 2026-12-07T00:00:00Z");
    free(d);
    s = state_of("tokens=1/month", 1, 0);
    s.period_start_ms = civil_days_from(2028, 2, 1) * DAY_MS;
    d = owner_budget_stop_detail("carol", &s);
    assert_string_equal(d, "carol used 1 of 1 token this month; it resets at "
                           "2028-03-01T00:00:00Z");
    free(d);
}

/* A budget as GET /api/usage shows it (with the API's 15 digits): tokens
 * as integers, cost in dollars, the reset with milliseconds. */
static void test_to_json(void **state)
{
    (void)state;
    owner_budget_state s = state_of("cost_usd=20/day", 3250000, 400000);
    s.period_start_ms = civil_days_from(2026, 12, 3) * DAY_MS;
    json_t *o = owner_budget_to_json(&s);
    char *text = json_dumps(o, EVT_JSON_FLAGS);
    assert_string_equal(text, "{\"dimension\":\"cost_usd\",\"period\":\"day\",\"limit\":20.0,"
                              "\"used\":3.25,\"reserved\":0.4,\"resets_at\":"
                              "\"2026-12-04T00:00:00.000Z\"}");
    free(text);
    json_decref(o);
    s = state_of("tokens=2000000/month", 120500, 0);
    s.period_start_ms = civil_days_from(2026, 12, 1) * DAY_MS;
    o = owner_budget_to_json(&s);
    text = json_dumps(o, EVT_JSON_FLAGS);
    assert_string_equal(text, "{\"dimension\":\"tokens\",\"period\":\"month\",\"limit\":2000000,"
                              "\"used\":120500,\"reserved\":0,\"resets_at\":"
                              "\"2027-01-01T00:00:00.000Z\"}");
    free(text);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_format),
        cmocka_unit_test(test_decide_tokens), cmocka_unit_test(test_decide_cost_and_several),
        cmocka_unit_test(test_amount),        cmocka_unit_test(test_stop_detail),
        cmocka_unit_test(test_to_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
