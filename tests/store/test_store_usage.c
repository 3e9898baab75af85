/*
 * Budgets per owner and period in the store (store/store_usage.c): budgets
 * set and replaced, a reservation settled or released, a stop that holds
 * nothing, periods that roll over by their start, the holds of runs that
 * stopped given back by recovery, and many connections reserving for one
 * owner at once never holding more than the limit.
 *
 * CHATPLANE_TEST_DB_URL names the database as for the store suite; every
 * test uses owners of its own, so a shared database is fine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <unistd.h>

#include "core/civil.h"
#include "core/mode.h"
#include "core/owner_budget.h"
#include "store/store.h"

#include "fixture.h"

typedef fixture fx;

#define DAY_MS 86400000LL

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (fixture_start(f, "chatplane-store-usage") != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_stop(*state);
    free(*state);
    return 0;
}

/* An owner name no other run of the suite on a shared database uses. */
static void owner_name(char *out, size_t len, const char *base)
{
    static int counter;
    snprintf(out, len, "%s-%d-%d", base, (int)getpid(), counter++);
}

static owner_budget_spec spec(const char *text)
{
    owner_budget_spec b;
    char err[OWNER_BUDGET_ERR_MAX];
    assert_int_equal(owner_budget_parse(text, &b, err, sizeof err), 0);
    return b;
}

/* 2026-12-03 08:30 UTC, a Thursday. */
static int64_t now_ms(void)
{
    return civil_days_from(2026, 12, 3) * DAY_MS + (8 * 60 + 30) * 60000LL;
}

static void test_set_list_replace_clear(void **state)
{
    fx *f = *state;
    char owner[64];
    owner_name(owner, sizeof owner, "set");
    owner_budget_spec b[2] = {spec("tokens=2000000/month"), spec("cost_usd=20/day")};
    assert_int_equal(store_owner_budget_set(f->s, owner, b, 2), 0);
    store_owner_budget *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_owner_budget_list(f->s, owner, &rows, &n), 0);
    assert_int_equal(n, 2);
    /* By dimension, then period. */
    assert_string_equal(rows[0].owner, owner);
    assert_string_equal(rows[0].dimension, "cost_usd");
    assert_string_equal(rows[0].period, "day");
    assert_int_equal(rows[0].limit_amount, 20000000);
    assert_string_equal(rows[1].dimension, "tokens");
    assert_string_equal(rows[1].period, "month");
    assert_int_equal(rows[1].limit_amount, 2000000);
    store_owner_budget_list_free(rows, n);

    owner_budget_spec c = spec("cost_usd=50/week");
    assert_int_equal(store_owner_budget_set(f->s, owner, &c, 1), 0);
    assert_int_equal(store_owner_budget_list(f->s, owner, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].period, "week");
    assert_int_equal(rows[0].limit_amount, 50000000);
    store_owner_budget_list_free(rows, n);

    /* Every owner's list holds this one among others. */
    assert_int_equal(store_owner_budget_list(f->s, NULL, &rows, &n), 0);
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) mine += strcmp(rows[i].owner, owner) == 0;
    assert_int_equal(mine, 1);
    store_owner_budget_list_free(rows, n);

    assert_int_equal(store_owner_budget_set(f->s, owner, NULL, 0), 0);
    assert_int_equal(store_owner_budget_list(f->s, owner, &rows, &n), 0);
    assert_int_equal(n, 0);
    store_owner_budget_list_free(rows, n);
}

/* Reads the one budget's usage of owner at t. */
static owner_budget_state read_one(store *s, const char *owner, int64_t t)
{
    owner_budget_state st[OWNER_BUDGET_MAX];
    size_t n = 0;
    assert_int_equal(store_usage_read(s, owner, t, st, OWNER_BUDGET_MAX, &n), 0);
    assert_int_equal(n, 1);
    return st[0];
}

static void test_reserve_settle_release(void **state)
{
    fx *f = *state;
    char owner[64];
    owner_name(owner, sizeof owner, "hold");
    owner_budget_spec b = spec("tokens=1000/day");
    assert_int_equal(store_owner_budget_set(f->s, owner, &b, 1), 0);

    owner_budget_plan plan;
    store_usage_hold hold;
    assert_int_equal(
        store_usage_reserve(f->s, owner, "run-a", now_ms(), 100, 300, NULL, &plan, &hold), 0);
    assert_false(plan.stop);
    assert_int_equal(plan.max_completion_tokens, 300);
    assert_int_equal(hold.n, 1);
    assert_int_equal(hold.amount[0], 400);
    assert_int_equal(hold.st[0].period_start_ms, civil_days_from(2026, 12, 3) * DAY_MS);
    owner_budget_state st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 0);
    assert_int_equal(st.reserved, 400);

    /* A second call meanwhile sees the first one's hold: 600 left, so 500
     * completion tokens at most. */
    owner_budget_plan plan2;
    store_usage_hold hold2;
    assert_int_equal(
        store_usage_reserve(f->s, owner, "run-a", now_ms(), 100, -1, NULL, &plan2, &hold2), 0);
    assert_false(plan2.stop);
    assert_int_equal(plan2.max_completion_tokens, 500);
    assert_int_equal(hold2.amount[0], 600);
    st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.reserved, 1000);

    /* The first used 120 + 80; the second failed. */
    assert_int_equal(store_usage_settle(f->s, owner, &hold, 120, 80, NULL), 0);
    assert_int_equal(hold.st[0].used, 200);
    assert_int_equal(hold.st[0].reserved, 600);
    assert_int_equal(store_usage_release(f->s, owner, &hold2), 0);
    assert_int_equal(hold2.st[0].used, 200);
    assert_int_equal(hold2.st[0].reserved, 0);
    st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 200);
    assert_int_equal(st.reserved, 0);
}

static void test_over_budget_holds_nothing(void **state)
{
    fx *f = *state;
    char owner[64];
    owner_name(owner, sizeof owner, "over");
    owner_budget_spec b = spec("tokens=500/week");
    assert_int_equal(store_owner_budget_set(f->s, owner, &b, 1), 0);
    owner_budget_plan plan;
    store_usage_hold hold;
    assert_int_equal(
        store_usage_reserve(f->s, owner, "run-a", now_ms(), 100, 400, NULL, &plan, &hold), 0);
    assert_false(plan.stop);
    assert_int_equal(store_usage_settle(f->s, owner, &hold, 100, 380, NULL), 0);
    /* 20 left: a prompt of 20 leaves no completion token. */
    assert_int_equal(
        store_usage_reserve(f->s, owner, "run-a", now_ms(), 20, 400, NULL, &plan, &hold), 0);
    assert_true(plan.stop);
    assert_int_equal(plan.over, 0);
    assert_int_equal(hold.st[0].used, 480);
    assert_int_equal(hold.st[0].reserved, 0);
    assert_int_equal(hold.st[0].period_start_ms, civil_days_from(2026, 11, 30) * DAY_MS);
    char *detail = owner_budget_stop_detail("alice", &hold.st[0]);
    assert_string_equal(detail, "alice used 480 of 500 tokens this week; it resets at "
                                "2026-12-07T00:00:00Z");
    free(detail);
    owner_budget_state st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 480);
    assert_int_equal(st.reserved, 0);
    /* An owner without budgets passes with the cap it asked for. */
    char none[64];
    owner_name(none, sizeof none, "none");
    assert_int_equal(
        store_usage_reserve(f->s, none, "run-a", now_ms(), 100, 77, NULL, &plan, &hold), 0);
    assert_false(plan.stop);
    assert_int_equal(plan.max_completion_tokens, 77);
    assert_int_equal(hold.n, 0);
    assert_int_equal(store_usage_settle(f->s, none, &hold, 100, 50, NULL), 0);
}

/* A new day is a new row: yesterday's use does not count, and a call that
 * started yesterday settles into yesterday. */
static void test_period_rolls_over(void **state)
{
    fx *f = *state;
    char owner[64];
    owner_name(owner, sizeof owner, "roll");
    owner_budget_spec b = spec("cost_usd=0.001/day");
    budget_price price = {.input_per_mtok = 1, .output_per_mtok = 1, .set = true};
    assert_int_equal(store_owner_budget_set(f->s, owner, &b, 1), 0);
    int64_t late = civil_days_from(2026, 12, 3) * DAY_MS + DAY_MS - 1; /* 23:59:59.999 */
    owner_budget_plan plan;
    store_usage_hold hold;
    assert_int_equal(
        store_usage_reserve(f->s, owner, "run-a", late, 100, 2000, &price, &plan, &hold), 0);
    assert_false(plan.stop);
    assert_int_equal(plan.max_completion_tokens, 900);
    assert_int_equal(hold.amount[0], 1000);
    /* The next millisecond is the next day, with all of its budget. */
    owner_budget_state st = read_one(f->s, owner, late + 1);
    assert_int_equal(st.period_start_ms, late + 1);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.reserved, 0);
    assert_int_equal(store_usage_settle(f->s, owner, &hold, 100, 900, &price), 0);
    st = read_one(f->s, owner, late);
    assert_int_equal(st.used, 1000);
    assert_int_equal(st.reserved, 0);
    st = read_one(f->s, owner, late + 1);
    assert_int_equal(st.used, 0);
}

/* A running run of a new session of owner; returns its id (freed by the
 * caller). */
static char *running_run(store *s, const char *owner)
{
    static int counter;
    char sid[ID_MAX], rid[ID_MAX];
    id_new(sid, "ses", 1700000000000 + counter);
    id_new(rid, "run", 1700000000000 + counter++);
    store_session ses = {.id = sid,
                         .owner = (char *)owner,
                         .title = "t",
                         .mode = "quick",
                         .created_ms = 1000,
                         .updated_ms = 1000};
    assert_int_equal(store_session_insert(s, &ses), 0);
    json_t *limits = mode_limits_to_json(&mode_preset("quick")->limits);
    json_t *usage = json_object();
    store_run row = {.id = rid,
                     .session_id = sid,
                     .mode = "quick",
                     .status = "running",
                     .limits = limits,
                     .usage = usage,
                     .started_ms = 1000,
                     .heartbeat_ms = 1000};
    assert_int_equal(store_run_insert(s, &row), 0);
    json_decref(limits);
    json_decref(usage);
    return strdup(rid);
}

/* A process that died during a call leaves its hold; recovery gives back
 * the holds of every run that is not running, and a settle that comes
 * after that adds the use without taking the hold off a second time. */
static void test_holds_of_stopped_runs_are_given_back(void **state)
{
    fx *f = *state;
    char owner[64];
    owner_name(owner, sizeof owner, "stale");
    owner_budget_spec b = spec("tokens=1000/day");
    assert_int_equal(store_owner_budget_set(f->s, owner, &b, 1), 0);
    char *live = running_run(f->s, owner);
    owner_budget_plan plan;
    store_usage_hold gone, going;
    assert_int_equal(
        store_usage_reserve(f->s, owner, "run-gone", now_ms(), 100, 200, NULL, &plan, &gone), 0);
    assert_int_equal(
        store_usage_reserve(f->s, owner, live, now_ms(), 100, 300, NULL, &plan, &going), 0);
    assert_int_equal(read_one(f->s, owner, now_ms()).reserved, 700);
    /* Only the hold of the run that is not running goes back. */
    assert_int_equal(store_usage_release_stale(f->s), 1);
    owner_budget_state st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 0);
    assert_int_equal(st.reserved, 400);
    assert_int_equal(store_usage_release_stale(f->s), 0);
    /* The late settle of the hold given back counts its use only. */
    assert_int_equal(store_usage_settle(f->s, owner, &gone, 100, 150, NULL), 0);
    st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 250);
    assert_int_equal(st.reserved, 400);
    assert_int_equal(store_usage_release(f->s, owner, &going), 0);
    st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 250);
    assert_int_equal(st.reserved, 0);
    free(live);
}

/* Many connections reserving for one owner at once. */
typedef struct racer {
    const char *url, *owner;
    int64_t used; /* what this connection's calls used */
    int calls, stops;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    store *s = fixture_open(r->url);
    for (;;) {
        owner_budget_plan plan;
        store_usage_hold hold;
        int rc = store_usage_reserve(s, r->owner, "run-race", now_ms(), 10, 90, NULL, &plan, &hold);
        if (rc != 0) {
            print_error("reserve: %s\n", store_errmsg(s));
            break;
        }
        if (plan.stop) {
            r->stops++;
            break;
        }
        /* Each call uses all it may. */
        if (store_usage_settle(s, r->owner, &hold, 10, plan.max_completion_tokens, NULL) != 0) {
            print_error("settle: %s\n", store_errmsg(s));
            break;
        }
        r->used += 10 + plan.max_completion_tokens;
        r->calls++;
    }
    store_close(s);
    return NULL;
}

static void test_concurrent_reservations_hold_the_limit(void **state)
{
    fx *f = *state;
    char owner[64];
    owner_name(owner, sizeof owner, "race");
    owner_budget_spec b = spec("tokens=2345/day");
    assert_int_equal(store_owner_budget_set(f->s, owner, &b, 1), 0);
    enum { N = 6 };
    racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.url = f->url, .owner = owner};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int64_t used = 0;
    int calls = 0, stops = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        used += r[i].used;
        calls += r[i].calls;
        stops += r[i].stops;
    }
    /* Every call used exactly its reservation, so the owner ends at the
     * limit to the token: 23 calls of 100 and one capped at 10 + 35, the
     * rest stopped with no room beyond their prompt. */
    assert_int_equal(stops, N);
    assert_int_equal(calls, 24);
    assert_int_equal(used, 2345);
    owner_budget_state st = read_one(f->s, owner, now_ms());
    assert_int_equal(st.used, 2345);
    assert_int_equal(st.reserved, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_list_replace_clear),
        cmocka_unit_test(test_reserve_settle_release),
        cmocka_unit_test(test_over_budget_holds_nothing),
        cmocka_unit_test(test_period_rolls_over),
        cmocka_unit_test(test_holds_of_stopped_runs_are_given_back),
        cmocka_unit_test(test_concurrent_reservations_hold_the_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
