/*
 * A run's model calls against its owner's budgets (engine/run_owner_budget.c,
 * docs/owner-budgets.md), on the engine fixture's real loop, read pool and
 * store with the scripted model: the call's completion is capped by what
 * the owner has left and its real use settled; a failed call and a run
 * stopped while a call is in flight give the hold back; an owner over
 * budget stops the run before the model is called; a session without an
 * owner is not counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/owner_budget.h"
#include "engine_fixture.h"
#include "lib/clock.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int teardown(void **state)
{
    efix_free(*state);
    return 0;
}

/* The fixture, a session of owner (NULL: none) in sid, and owner's one
 * budget (text NULL: none). */
static efix *begin(void **state, const scripted_step *steps, size_t n, const char *owner,
                   const char *budget_text, char sid[ID_MAX])
{
    engine_options o = efix_default_options();
    efix *f = efix_new(steps, n, &o);
    *state = f;
    int64_t now = clock_wall_ms();
    id_new(sid, "ses", now);
    store_session row = {.id = sid,
                         .owner = (char *)owner,
                         .title = "",
                         .mode = "standard",
                         .status = "idle",
                         .created_ms = now,
                         .updated_ms = now};
    assert_int_equal(store_session_insert(f->db, &row), 0);
    if (budget_text) {
        owner_budget_spec b;
        char err[OWNER_BUDGET_ERR_MAX];
        assert_int_equal(owner_budget_parse(budget_text, &b, err, sizeof err), 0);
        assert_int_equal(store_owner_budget_set(f->db, owner, &b, 1), 0);
    }
    return f;
}

/* alice's one budget as the store has it now. */
static owner_budget_state usage_now(efix *f)
{
    owner_budget_state st[OWNER_BUDGET_MAX];
    size_t n = 0;
    assert_int_equal(store_usage_read(f->db, "alice", clock_wall_ms(), st, OWNER_BUDGET_MAX, &n),
                     0);
    assert_int_equal(n, 1);
    return st[0];
}

typedef struct want_usage {
    int64_t used, reserved;
} want_usage;

static bool usage_is(efix *f, const void *arg)
{
    const want_usage *w = arg;
    owner_budget_state st = usage_now(f);
    return st.used == w->used && st.reserved == w->reserved;
}

static void wait_usage(efix *f, int64_t used, int64_t reserved)
{
    want_usage w = {used, reserved};
    char what[96];
    snprintf(what, sizeof what, "alice's usage at %lld used, %lld reserved", (long long)used,
             (long long)reserved);
    efix_loop_until(f, usage_is, &w, 5000, what);
}

static const char *stop_detail(efix *f, const char *rid)
{
    return json_string_value(json_object_get(efix_event(f, rid, "run_stopped", 0), "detail"));
}

/* The call asks for no more than the owner has left after its prompt,
 * holds that much while it goes, and counts what it used once done. */
static void test_call_capped_held_and_settled(void **state)
{
    scripted_step steps[] = {{.pieces = {"hi"},
                              .usage = true,
                              .prompt_tokens = 100,
                              .completion_tokens = 50,
                              .hold = true}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, steps, N(steps), "alice", "tokens=1000/day", sid);
    assert_int_equal(efix_start(f, sid, "hello", NULL, rid), 0);
    efix_wait_model(f);
    const scripted_request *q = scripted_llm_request(f->model, 0);
    /* The run alone would allow 50000 less the prompt. */
    assert_true(q->max_completion_tokens > 0 && q->max_completion_tokens < 1000);
    owner_budget_state st = usage_now(f);
    assert_int_equal(st.used, 0);
    /* The hold is the prompt estimate plus the cap: the whole budget. */
    assert_int_equal(st.reserved, 1000);
    scripted_llm_release(f->model);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
    wait_usage(f, 150, 0);
}

/* A call that fails gives back what it held; the run's stop is the
 * model's. */
static void test_failed_call_releases(void **state)
{
    scripted_step steps[] = {{.end = SCRIPTED_FATAL, .error = "no such model"}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, steps, N(steps), "alice", "tokens=1000/day", sid);
    assert_int_equal(efix_start(f, sid, "hello", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_string_equal(stop_detail(f, rid), "no such model");
    wait_usage(f, 0, 0);
    assert_int_equal(scripted_llm_calls(f->model), 1);
}

/* A stop while the call streams nothing yet gives the whole hold back. */
static void test_stop_in_flight_releases(void **state)
{
    scripted_step steps[] = {{.end = SCRIPTED_STALL}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, steps, N(steps), "alice", "tokens=1000/day", sid);
    assert_int_equal(efix_start(f, sid, "hello", NULL, rid), 0);
    efix_wait_model(f);
    assert_int_equal(usage_now(f).reserved, 1000);
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid);
    wait_usage(f, 0, 0);
}

/* An owner with nothing left: the run stops before the model is called,
 * saying who used how much of what and when it resets. */
static void test_over_budget_stops_before_the_call(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, 0, "alice", "tokens=10/day", sid);
    assert_int_equal(efix_start(f, sid, "hello", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(scripted_llm_calls(f->model), 0);
    efix_assert_events(f, rid, "message:user run_started run_stopped:owner_budget");
    int64_t day = 86400000LL, now = clock_wall_ms();
    char resets[PERIOD_TIME_LEN], want[128];
    period_format_time((now / day + 1) * day, resets);
    snprintf(want, sizeof want, "alice used 0 of 10 tokens this day; it resets at %s", resets);
    assert_string_equal(stop_detail(f, rid), want);
    store_run row;
    efix_run_row(f, rid, &row);
    assert_string_equal(row.stop_reason, "owner_budget");
    assert_string_equal(row.recovery_suggestion,
                        "Your budget for this period is used up. Wait until it resets, or ask an "
                        "administrator to raise it with chatplane token budget.");
    assert_int_equal(json_array_size(row.actions), 0);
    /* The diagnosis names the budget, with its numbers. */
    char *diag = json_dumps(row.diagnosis, JSON_COMPACT | JSON_SORT_KEYS);
    char resets_ms[64], want_diag[512];
    snprintf(resets_ms, sizeof resets_ms, "%.19s.000Z", resets);
    snprintf(want_diag, sizeof want_diag,
             "{\"evidence\":{\"dimension\":\"tokens\",\"limit\":10,\"owner\":\"alice\","
             "\"period\":\"day\",\"reserved\":0,\"resets_at\":\"%s\",\"used\":0},"
             "\"playbook\":\"owner_budget\",\"summary\":\"The owner's budget for the period is "
             "used up: %s\"}",
             resets_ms, want);
    assert_string_equal(diag, want_diag);
    free(diag);
    store_run_cleanup(&row);
    wait_usage(f, 0, 0);
}

/* A session without an owner (no authentication) has no owner budget: the
 * call asks for what the run allows. */
static void test_no_owner_no_budget(void **state)
{
    scripted_step steps[] = {{.pieces = {"hi"}}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, steps, N(steps), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hello", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_true(scripted_llm_request(f->model, 0)->max_completion_tokens > 40000);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_call_capped_held_and_settled, teardown),
        cmocka_unit_test_teardown(test_failed_call_releases, teardown),
        cmocka_unit_test_teardown(test_stop_in_flight_releases, teardown),
        cmocka_unit_test_teardown(test_over_budget_stops_before_the_call, teardown),
        cmocka_unit_test_teardown(test_no_owner_no_budget, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
