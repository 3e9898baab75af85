/*
 * The engine (src/engine/engine.c): the registry of active runs, starts
 * through the read pool (the session claimed, the run row and the user
 * message written in one transaction), the answers it refuses, stops and
 * mode changes routed to the run, control messages, heartbeats and
 * shutdown. On a real loop, writer and read pool over a temporary SQLite
 * file, with the scripted model; the phases of a run itself are
 * tests/engine/test_run.c.
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

#include "core/control.h"
#include "engine_fixture.h"
#include "lib/clock.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static mode test_mode(void)
{
    mode m = *mode_preset("standard");
    m.limits.seconds = MODE_UNLIMITED;
    return m;
}

static efix *begin(void **state, const scripted_step *steps, size_t n, const engine_options *opt)
{
    efix *f = efix_new(steps, n, opt);
    *state = f;
    mode m = test_mode();
    efix_set_mode(f, &m);
    return f;
}

static int teardown(void **state)
{
    efix_free(*state);
    return 0;
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool finished_once(efix *f, const void *arg)
{
    (void)arg;
    return f->finished >= 1;
}

static bool calls_waiting(efix *f, const void *arg)
{
    size_t n = *(const size_t *)arg;
    return scripted_llm_calls(f->model) == n && scripted_llm_in_flight(f->model) == n;
}

/* Runs the loop until n model calls are in flight. */
static void wait_calls(efix *f, size_t n)
{
    efix_loop_until(f, calls_waiting, &n, 5000, "the model calls to start");
}

static void test_start_claims_the_session_and_names_it(void **state)
{
    static const scripted_step script[] = {{.hold = true, .pieces = {"Done."}}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    /* 70 characters, a line break among them and one of two bytes. */
    const char *message = "Plan a trip\nto Zürich for the whole family in spring, with trains "
                          "only.";
    int64_t before = clock_mono_ns();
    assert_int_equal(efix_start(f, sid, message, NULL, rid), 0);
    /* Background work holds back after a start (core/holdback.h). */
    assert_in_range(db_background_held_ns(), before, clock_mono_ns());
    assert_string_equal(str_of(f->run, "status"), "running");
    assert_string_equal(engine_active_run_id(f->e, sid), rid);
    assert_int_equal(engine_active_count(f->e), 1);

    store_session ses = {0};
    assert_int_equal(store_session_get(f->db, sid, NULL, &ses), 0);
    assert_string_equal(ses.active_run_id, rid);
    assert_string_equal(ses.title, "Plan a trip to Zürich for the whole family in spring, with t");
    store_session_cleanup(&ses);
    store_run row;
    efix_run_row(f, rid, &row);
    assert_string_equal(row.status, "running");
    assert_string_equal(row.owner_instance, "ins_test");
    assert_string_equal(row.mode, "standard");
    assert_null(row.continues);
    store_run_cleanup(&row);
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0].content, message);
    assert_string_equal(ms[0].run_id, rid);
    store_message_list_free(ms, n);

    efix_wait_model(f);
    scripted_llm_release(f->model);
    efix_wait_stopped(f, rid);
    assert_int_equal(f->finished_status, 0);
    assert_null(engine_active_run_id(f->e, sid));
    assert_int_equal(engine_active_count(f->e), 0);
    efix_assert_stored_events(f, sid);
}

static void test_start_with_a_mode_changes_the_session(void **state)
{
    static const scripted_step script[] = {{.pieces = {"Quick."}}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "hi", "quick", rid), 0);
    assert_string_equal(str_of(f->run, "mode"), "quick");
    efix_wait_stopped(f, rid);
    store_session ses = {0};
    assert_int_equal(store_session_get(f->db, sid, NULL, &ses), 0);
    assert_string_equal(ses.mode, "quick");
    store_session_cleanup(&ses);
    json_t *started = efix_event(f, rid, "run_started", 0);
    assert_string_equal(str_of(started, "mode"), "quick");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(started, "limits"), "steps")), 3);
}

static void test_refusals(void **state)
{
    static const scripted_step script[] = {{.hold = true, .pieces = {"Done."}}};
    engine_options opt = efix_default_options();
    opt.active_runs = 1;
    efix *f = begin(state, script, N(script), &opt);
    char a[ID_MAX], b[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", a);
    efix_session(f, "standard", b);

    assert_int_equal(efix_start(f, "ses_missing", "hi", NULL, NULL), ENGINE_ERR_NOT_FOUND);
    assert_null(f->run);
    assert_int_equal(efix_start(f, a, "hi", "huge", NULL), ENGINE_ERR_BAD_MODE);
    /* A continue with no run before it has nothing to continue. */
    assert_int_equal(efix_start(f, a, NULL, NULL, NULL), ENGINE_ERR_NOTHING);
    assert_int_equal(efix_stop(f, a), ENGINE_ERR_NO_RUN);
    assert_int_equal(efix_stop(f, "ses_missing"), ENGINE_ERR_NOT_FOUND);

    assert_int_equal(efix_start(f, a, "hi", NULL, rid), 0);
    assert_int_equal(efix_start(f, a, "again", NULL, NULL), ENGINE_ERR_RUN_ACTIVE);
    assert_int_equal(efix_start(f, b, "hi", NULL, NULL), ENGINE_ERR_TOO_MANY);
    /* Nothing of the refused starts reached the store. */
    store_message *ms;
    size_t n;
    efix_messages(f, b, &ms, &n);
    assert_int_equal(n, 0);
    store_message_list_free(ms, n);

    efix_wait_model(f);
    scripted_llm_release(f->model);
    efix_wait_stopped(f, rid);
    /* A completed run leaves nothing to continue either. */
    assert_int_equal(efix_start(f, a, NULL, NULL, NULL), ENGINE_ERR_NOTHING);
    assert_int_equal(efix_stop(f, a), ENGINE_ERR_NO_RUN);
}

typedef struct two_starts {
    int done, status[2];
    char run_id[2][ID_MAX];
} two_starts;

static void two_starts__cb(void *ud, int status, const json_t *run)
{
    two_starts *t = ud;
    t->status[t->done] = status;
    if (status == 0)
        snprintf(t->run_id[t->done], ID_MAX, "%s", json_string_value(json_object_get(run, "id")));
    t->done++;
}

static bool two_starts__both(efix *f, const void *arg)
{
    (void)f;
    return ((const two_starts *)arg)->done == 2;
}

/*
 * Two starts of one session asked at once are written in one batch of the
 * event log: the first claims the session, the second is refused without
 * failing the batch, nothing of it is stored, and the first run completes.
 */
static void test_two_starts_in_one_batch(void **state)
{
    static const scripted_step script[] = {{.pieces = {"one"}}};
    efix *f = begin(state, script, N(script), NULL);
    char a[ID_MAX];
    efix_session(f, "standard", a);
    two_starts t = {0};
    engine_start_run(f->e, a, "first", NULL, two_starts__cb, &t);
    engine_start_run(f->e, a, "second", NULL, two_starts__cb, &t);
    efix_loop_until(f, two_starts__both, &t, 5000, "both starts answered");
    assert_int_equal(t.status[0], 0);
    assert_int_equal(t.status[1], ENGINE_ERR_RUN_ACTIVE);
    efix_wait_stopped(f, t.run_id[0]);
    store_message *ms;
    size_t n;
    efix_messages(f, a, &ms, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ms[0].content, "first");
    assert_string_equal(ms[1].content, "one");
    store_message_list_free(ms, n);
}

static void test_shutdown_interrupts_every_run(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}, {.end = SCRIPTED_STALL}};
    efix *f = begin(state, script, N(script), NULL);
    char a[ID_MAX], b[ID_MAX], ra[ID_MAX], rb[ID_MAX];
    efix_session(f, "standard", a);
    efix_session(f, "standard", b);
    assert_int_equal(efix_start(f, a, "one", NULL, ra), 0);
    assert_int_equal(efix_start(f, b, "two", NULL, rb), 0);
    wait_calls(f, 2);
    engine_shutdown(f->e);
    efix_wait_stopped(f, ra);
    efix_wait_stopped(f, rb);
    for (int i = 0; i < 2; i++) {
        const char *rid = i ? rb : ra;
        efix_assert_events(f, rid,
                           "message:user run_started status:thinking run_stopped:interrupted");
        assert_string_equal(str_of(efix_event(f, rid, "run_stopped", 0), "detail"),
                            "the server shut down during the run");
        efix_assert_stored_events(f, i ? b : a);
    }
    assert_int_equal(f->finished, 2);
    assert_int_equal(engine_active_count(f->e), 0);
    assert_int_equal(scripted_llm_in_flight(f->model), 0);
    /* A closing engine starts nothing; it answers at once. */
    assert_int_equal(efix_start(f, a, "three", NULL, NULL), ENGINE_ERR_UNAVAILABLE);
}

/* A start whose transaction is in flight when the engine shuts down still
 * starts (its rows are written) and is interrupted at once. */
static void test_a_start_in_flight_at_shutdown_is_interrupted(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX];
    efix_session(f, "standard", sid);
    efix_start_async(f, sid, "late", NULL);
    assert_false(f->answered);
    engine_shutdown(f->e);
    assert_int_equal(efix_wait_answer(f), 0);
    char rid[ID_MAX];
    snprintf(rid, sizeof rid, "%s", str_of(f->run, "id"));
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid, "message:user run_started run_stopped:interrupted");
    assert_int_equal(scripted_llm_calls(f->model), 0);
    store_session ses = {0};
    assert_int_equal(store_session_get(f->db, sid, NULL, &ses), 0);
    assert_null(ses.active_run_id);
    store_session_cleanup(&ses);
    efix_assert_stored_events(f, sid);
}

static void test_put_mode_reaches_running_runs(void **state)
{
    static const scripted_step script[] = {
        {.hold = true, .calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}}},
    };
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_model(f);
    mode m = test_mode();
    m.limits.steps = 1;
    engine_put_mode(f->e, &m);
    assert_int_equal(engine_mode(f->e, "standard")->limits.steps, 1);
    scripted_llm_release(f->model);
    efix_wait_stopped(f, rid);
    /* The step already running finishes with its tools; then the new
     * limit stops the run before another model call. */
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking budget message:assistant+calls "
                       "budget tool_started:calc status:tool_running tool_finished:calc:ok "
                       "message:tool budget run_stopped:max_steps");
    json_t *limits = json_object_get(efix_event(f, rid, "budget", 0), "limits");
    assert_int_equal(json_integer_value(json_object_get(limits, "steps")), 1);
    assert_int_equal(scripted_llm_calls(f->model), 1);
    efix_assert_stored_events(f, sid);
}

static void test_control_messages(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL, .pieces = {"So far"}}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_model(f);
    /* Messages for another instance, for a run this instance does not
     * have, and a mode it does not know are ignored. */
    control_msg other = {.kind = CONTROL_STOP, .instance = "ins_other", .run_id = rid};
    control_msg gone = {.kind = CONTROL_STOP, .instance = "ins_test", .run_id = "run_gone"};
    control_msg unknown = {
        .kind = CONTROL_MODE, .instance = "ins_test", .run_id = rid, .mode_name = "nope"};
    engine_control(f->e, &other);
    engine_control(f->e, &gone);
    engine_control(f->e, &unknown);
    assert_string_equal(engine_active_run_id(f->e, sid), rid);
    assert_int_equal(scripted_llm_in_flight(f->model), 1);
    /* A mode change, then a stop, for this instance's run. */
    control_msg to_quick = {
        .kind = CONTROL_MODE, .instance = "ins_test", .run_id = rid, .mode_name = "quick"};
    control_msg stop = {.kind = CONTROL_STOP, .instance = "ins_test", .run_id = rid};
    engine_control(f->e, &to_quick);
    engine_control(f->e, &stop);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token budget "
                       "status:stopping message:assistant:partial run_stopped:user_stopped");
    json_t *limits = json_object_get(efix_event(f, rid, "budget", 0), "limits");
    assert_int_equal(json_integer_value(json_object_get(limits, "steps")), 3);
    store_run row;
    efix_run_row(f, rid, &row);
    assert_string_equal(row.mode, "quick");
    assert_string_equal(row.stop_reason, "user_stopped");
    store_run_cleanup(&row);
    efix_assert_stored_events(f, sid);
}

typedef struct stops {
    int answers;
    char reasons[2][32];
} stops;

static void stop_answer(void *ud, int status, const json_t *run)
{
    stops *s = ud;
    assert_int_equal(status, 0);
    assert_true(s->answers < 2);
    snprintf(s->reasons[s->answers++], sizeof s->reasons[0], "%s",
             json_string_value(json_object_get(run, "stop_reason")));
}

static bool two_answers(efix *f, const void *arg)
{
    (void)f;
    return ((const stops *)arg)->answers == 2;
}

/* Two stop requests before the first is committed: both are answered with
 * the stopped run, and the run stops once. */
static void test_two_stops_stop_once(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_model(f);
    stops s = {0};
    engine_stop_run(f->e, sid, stop_answer, &s);
    engine_stop_run(f->e, sid, stop_answer, &s);
    assert_int_equal(s.answers, 0);
    efix_loop_until(f, two_answers, &s, 5000, "both stops to be answered");
    assert_string_equal(s.reasons[0], "user_stopped");
    assert_string_equal(s.reasons[1], "user_stopped");
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:stopping "
                       "run_stopped:user_stopped");
    assert_int_equal(f->finished, 1);
    efix_assert_stored_events(f, sid);
}

/* A run that another instance stopped (here: recovery on the test's own
 * connection) is given up at the next heartbeat without writing more. */
static void test_heartbeat_abandons_a_run_stopped_elsewhere(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_model(f);
    /* A heartbeat of a live run changes nothing. */
    engine_heartbeat(f->e, f->pool);
    int64_t until = clock_mono_ms() + 100;
    while (clock_mono_ms() < until) event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->finished, 0);

    eventlog_flush(f->log);
    assert_int_equal(store_recover_interrupted(f->db, INT64_MAX, clock_wall_ms()), 1);
    engine_heartbeat(f->e, f->pool);
    efix_loop_until(f, finished_once, NULL, 5000, "the run to be abandoned");
    assert_int_equal(f->finished_status, STORE_CONFLICT);
    assert_int_equal(engine_active_count(f->e), 0);
    assert_int_equal(scripted_llm_in_flight(f->model), 0);
    assert_true(scripted_llm_request(f->model, 0)->aborted);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    /* This instance wrote no run_stopped; the one in the store is the
     * recovery's. */
    assert_int_equal(efix_count(f, rid, "run_stopped"), 0);
    store_run row;
    efix_run_row(f, rid, &row);
    assert_string_equal(row.stop_reason, "interrupted");
    store_run_cleanup(&row);
}

/* A write of the run that the database refuses (its session was deleted
 * underneath it) stops the run as interrupted, cancelling the tool in
 * flight; its last write fails too, and the engine still lets the run go,
 * reporting the failure. */
static void test_a_refused_write_stops_the_run(void **state)
{
    static const scripted_step script[] = {{.calls = {{"h", "hold", "{}"}}}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_tool(f);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    size_t before = json_array_size(f->events);
    assert_int_equal(store_session_delete(f->db, sid), 0);
    /* The progress event cannot be stored. */
    assert_int_equal(scripted_tool_progress(f->held, 1, -1, NULL), 0);
    efix_loop_until(f, finished_once, NULL, 5000, "the run to give up");
    assert_true(f->finished_status < 0);
    assert_int_equal(engine_active_count(f->e), 0);
    assert_null(engine_active_run_id(f->e, sid));
    assert_int_equal(scripted_tool_cancelled(f->held), 1);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    /* Nothing after the refusal was committed. */
    assert_int_equal(json_array_size(f->events), before);
    store_run row = {0};
    assert_int_equal(store_run_get(f->db, rid, &row), STORE_NOT_FOUND);
}

/* Editing one mode touches only the runs of that mode: the run of the
 * edited mode gets a budget event with the new limits, the run of another
 * mode gets nothing. */
static void test_put_mode_touches_only_runs_of_that_mode(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}, {.end = SCRIPTED_STALL}};
    efix *f = begin(state, script, N(script), NULL);
    char a[ID_MAX], b[ID_MAX], ra[ID_MAX], rb[ID_MAX];
    efix_session(f, "standard", a);
    efix_session(f, "quick", b);
    assert_int_equal(efix_start(f, a, "one", NULL, ra), 0);
    assert_int_equal(efix_start(f, b, "two", NULL, rb), 0);
    wait_calls(f, 2);
    mode q = *mode_preset("quick");
    q.limits.steps = 2;
    engine_put_mode(f->e, &q);
    engine_shutdown(f->e);
    efix_wait_stopped(f, ra);
    efix_wait_stopped(f, rb);
    assert_int_equal(efix_count(f, rb, "budget"), 1);
    json_t *limits = json_object_get(efix_event(f, rb, "budget", 0), "limits");
    assert_int_equal(json_integer_value(json_object_get(limits, "steps")), 2);
    assert_int_equal(efix_count(f, ra, "budget"), 0);
    assert_int_equal(engine_mode(f->e, "quick")->limits.steps, 2);
    assert_int_equal(engine_mode(f->e, "standard")->limits.steps,
                     mode_preset("standard")->limits.steps);
}

/* Every refused write of a run stops it (docs/architecture.md); the row
 * write of a mid-run mode change (record_run) does not report its failure,
 * so the run goes on unrecorded. */
static void test_a_refused_run_row_write_stops_the_run(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL, .pieces = {"So far"}}};
    efix *f = begin(state, script, N(script), NULL);
    char sid[ID_MAX], rid[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_model(f);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    assert_int_equal(store_session_delete(f->db, sid), 0);
    engine_session_mode_changed(f->e, sid, "quick");
    efix_loop_until(f, finished_once, NULL, 2000, "the run to give up");
}

/* More runs than the registry of active runs has buckets (1,024), so that
 * some share one: each session finds its own run, a stop by run id reaches
 * that run alone, and the registry is empty once every run has ended, in
 * an order unlike the starts'. */
#define MANY_RUNS 1100

static bool finished_n(efix *f, const void *arg)
{
    return f->finished >= *(const size_t *)arg;
}

static void test_the_registry_finds_each_of_many_runs(void **state)
{
    static scripted_step script[MANY_RUNS];
    for (size_t i = 0; i < MANY_RUNS; i++) script[i] = (scripted_step){.end = SCRIPTED_STALL};
    engine_options opt = efix_default_options();
    opt.active_runs = MANY_RUNS;
    efix *f = begin(state, script, MANY_RUNS, &opt);
    char(*sid)[ID_MAX] = calloc(MANY_RUNS, ID_MAX);
    char(*rid)[ID_MAX] = calloc(MANY_RUNS, ID_MAX);
    assert_non_null(sid);
    assert_non_null(rid);
    for (size_t i = 0; i < MANY_RUNS; i++) {
        efix_session(f, "standard", sid[i]);
        assert_int_equal(efix_start(f, sid[i], "go", NULL, rid[i]), 0);
    }
    assert_int_equal(engine_active_count(f->e), MANY_RUNS);
    for (size_t i = 0; i < MANY_RUNS; i++)
        assert_string_equal(engine_active_run_id(f->e, sid[i]), rid[i]);
    /* The even ones first, then the odd ones from the last backwards. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < MANY_RUNS; k++) {
            size_t i = pass == 0 ? k : MANY_RUNS - 1 - k;
            if ((i % 2 == 0) != (pass == 0)) continue;
            control_msg stop = {.kind = CONTROL_STOP, .instance = "ins_test", .run_id = rid[i]};
            engine_control(f->e, &stop);
        }
        size_t ended = pass == 0 ? (MANY_RUNS + 1) / 2 : MANY_RUNS;
        efix_loop_until(f, finished_n, &ended, 60000, "the stopped runs to end");
        assert_int_equal(f->finished, ended);
        assert_int_equal(engine_active_count(f->e), MANY_RUNS - ended);
        for (size_t i = 0; i < MANY_RUNS; i++) {
            if (pass == 0 && i % 2 == 1)
                assert_string_equal(engine_active_run_id(f->e, sid[i]), rid[i]);
            else
                assert_null(engine_active_run_id(f->e, sid[i]));
        }
    }
    assert_int_equal(scripted_llm_in_flight(f->model), 0);
    free(sid);
    free(rid);
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_start_claims_the_session_and_names_it),
        T(test_start_with_a_mode_changes_the_session),
        T(test_refusals),
        T(test_two_starts_in_one_batch),
        T(test_shutdown_interrupts_every_run),
        T(test_a_start_in_flight_at_shutdown_is_interrupted),
        T(test_put_mode_reaches_running_runs),
        T(test_control_messages),
        T(test_two_stops_stop_once),
        T(test_heartbeat_abandons_a_run_stopped_elsewhere),
        T(test_a_refused_write_stops_the_run),
        T(test_put_mode_touches_only_runs_of_that_mode),
        T(test_a_refused_run_row_write_stops_the_run),
        T(test_the_registry_finds_each_of_many_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
