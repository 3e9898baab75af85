/*
 * The queue of the engine (src/engine/engine.c, docs/runs.md, Queue and
 * interrupt): a run sent while another works waits in its session's row
 * and starts when the active run stops, whatever stops it; an interrupt
 * also stops the active run; a stop drops the queue; at most one run is
 * queued per session. On a real loop, writer and read pool over a
 * temporary SQLite file, with the scripted model; the exact events of
 * each run and their order in the session's log are asserted.
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

#include "engine_fixture.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static efix *begin(void **state, const scripted_step *steps, size_t n)
{
    efix *f = efix_new(steps, n, NULL);
    *state = f;
    mode m = *mode_preset("standard");
    m.limits.seconds = MODE_UNLIMITED;
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

/* The answer of engine_submit_run or engine_stop_run. */
typedef struct answer {
    bool got;
    int status;
    json_t *run;
} answer;

static void on_answer(void *ud, int status, const json_t *run)
{
    answer *a = ud;
    a->got = true;
    a->status = status;
    json_decref(a->run);
    a->run = run ? json_deep_copy(run) : NULL;
}

static bool answered(efix *f, const void *arg)
{
    (void)f;
    return ((const answer *)arg)->got;
}

/* Submits message with how and waits for the answer; the run's id goes
 * into run_id when there is one. */
static int submit(efix *f, const char *sid, const char *message, engine_if_active how,
                  char run_id[ID_MAX], answer *a)
{
    *a = (answer){0};
    engine_submit_run(f->e, sid, message, NULL, how, false, on_answer, a);
    efix_loop_until(f, answered, a, 5000, "the submit to be answered");
    if (a->run && run_id) snprintf(run_id, ID_MAX, "%s", str_of(a->run, "id"));
    return a->status;
}

static int stop(efix *f, const char *sid, answer *a)
{
    *a = (answer){0};
    engine_stop_run(f->e, sid, on_answer, a);
    efix_loop_until(f, answered, a, 5000, "the stop to be answered");
    return a->status;
}

/* The position of the run's first event of type in the session's log;
 * for "status:<status>", its first status event with that status. */
static size_t position(const efix *f, const char *run_id, const char *type)
{
    const char *status = strncmp(type, "status:", 7) == 0 ? type + 7 : NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
    {
        if (strcmp(str_of(ev, "run_id"), run_id) != 0) continue;
        if (status ? strcmp(str_of(ev, "type"), "status") == 0 &&
                         strcmp(str_of(ev, "status"), status) == 0
                   : strcmp(str_of(ev, "type"), type) == 0)
            return i;
    }
    fail_msg("no %s event of run %s", type, run_id);
    return 0;
}

/* The contents of a model request's messages other than system ones, joined
 * with "|". */
static void request_contents(const efix *f, size_t call, char *out, size_t len)
{
    const scripted_request *r = scripted_llm_request(f->model, call);
    size_t i, used = 0;
    json_t *m;
    out[0] = '\0';
    json_array_foreach(r->messages, i, m)
    {
        if (strcmp(str_of(m, "role"), "system") == 0) continue;
        const char *c = str_of(m, "content");
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "|" : "", c ? c : "");
        if (used >= len) return;
    }
}

static void assert_queue(efix *f, const char *sid, const char *want_run, const char *want_message)
{
    store_session ses = {0};
    assert_int_equal(store_session_get(f->db, sid, NULL, &ses), 0);
    if (want_run) {
        assert_string_equal(ses.queued_run_id, want_run);
        assert_string_equal(ses.queued_message, want_message);
        assert_null(ses.queued_mode);
        assert_true(ses.queued_ms > 0);
    } else {
        assert_null(ses.queued_run_id);
        assert_null(ses.queued_message);
        assert_int_equal(ses.queued_ms, 0);
    }
    store_session_cleanup(&ses);
}

/* enqueue: 0 with a queued run object; the run starts when the active one
 * completes, after its run_stopped, and only then is its message stored
 * and seen by the model. */
static void test_enqueue_starts_after_the_active_run(void **state)
{
    static const scripted_step script[] = {{.hold = true, .pieces = {"First."}},
                                           {.pieces = {"Second."}}};
    efix *f = begin(state, script, N(script));
    char sid[ID_MAX], a[ID_MAX], q[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "one", NULL, a), 0);
    efix_wait_model(f);

    answer ans;
    assert_int_equal(submit(f, sid, "two", ENGINE_IF_ACTIVE_ENQUEUE, q, &ans), 0);
    assert_string_equal(str_of(ans.run, "status"), "queued");
    assert_string_equal(str_of(ans.run, "session_id"), sid);
    assert_string_equal(str_of(ans.run, "mode"), "standard");
    assert_true(json_is_null(json_object_get(ans.run, "ended_at")));
    assert_string_not_equal(q, a);
    json_decref(ans.run);
    assert_queue(f, sid, q, "two");
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 1);
    store_message_list_free(ms, n);
    efix_assert_events(f, q, "run_queued");
    json_t *queued = efix_event(f, q, "run_queued", 0);
    assert_string_equal(str_of(queued, "message"), "two");
    assert_true(json_is_null(json_object_get(queued, "mode")));
    assert_true(json_is_false(json_object_get(queued, "interrupt")));

    scripted_llm_release(f->model);
    efix_wait_stopped(f, q);
    efix_assert_events(f, a,
                       "message:user run_started status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
    efix_assert_events(f, q,
                       "run_queued message:user run_started status:thinking status:responding "
                       "token message:assistant budget run_stopped:completed");
    /* run_queued while A worked; Q's user message after A's run_stopped. */
    assert_true(position(f, q, "run_queued") < position(f, a, "run_stopped"));
    assert_true(position(f, a, "run_stopped") < position(f, q, "message"));
    assert_queue(f, sid, NULL, NULL);
    assert_int_equal(f->finished, 2);

    char seen[256];
    assert_int_equal(scripted_llm_calls(f->model), 2);
    request_contents(f, 0, seen, sizeof seen);
    assert_string_equal(seen, "one");
    request_contents(f, 1, seen, sizeof seen);
    assert_string_equal(seen, "one|First.|two");
    store_run row;
    efix_run_row(f, q, &row);
    assert_string_equal(row.status, "stopped");
    assert_string_equal(row.stop_reason, "completed");
    assert_string_equal(row.owner_instance, "ins_test");
    store_run_cleanup(&row);
    efix_assert_stored_events(f, sid);
}

/* interrupt: the active run stops (user_stopped, its partial text kept),
 * then the queued run starts. */
static void test_interrupt_stops_then_starts(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL, .pieces = {"Half"}},
                                           {.pieces = {"Instead."}}};
    efix *f = begin(state, script, N(script));
    char sid[ID_MAX], a[ID_MAX], q[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "one", NULL, a), 0);
    efix_wait_model(f);
    answer ans;
    assert_int_equal(submit(f, sid, "other", ENGINE_IF_ACTIVE_INTERRUPT, q, &ans), 0);
    assert_string_equal(str_of(ans.run, "status"), "queued");
    json_decref(ans.run);
    efix_wait_stopped(f, q);
    efix_assert_events(f, a,
                       "message:user run_started status:thinking status:responding token "
                       "status:stopping message:assistant:partial run_stopped:user_stopped");
    efix_assert_events(f, q,
                       "run_queued message:user run_started status:thinking status:responding "
                       "token message:assistant budget run_stopped:completed");
    assert_true(json_is_true(json_object_get(efix_event(f, q, "run_queued", 0), "interrupt")));
    assert_true(position(f, q, "run_queued") < position(f, a, "status:stopping"));
    assert_true(position(f, a, "run_stopped") < position(f, q, "message"));
    char seen[256];
    request_contents(f, 1, seen, sizeof seen);
    assert_string_equal(seen, "one|Half|other");
    assert_queue(f, sid, NULL, NULL);
    efix_assert_stored_events(f, sid);
}

/* A second queued run is ENGINE_ERR_QUEUE_FULL; a stop stops the active
 * run and its end drops the queued run (a stopped row and its
 * run_stopped, right after the active run's); nothing starts after. */
static void test_queue_full_and_a_stop_drops_the_queue(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}, {.pieces = {"Never."}}};
    efix *f = begin(state, script, N(script));
    char sid[ID_MAX], a[ID_MAX], q[ID_MAX];
    efix_session(f, "standard", sid);
    assert_int_equal(efix_start(f, sid, "one", NULL, a), 0);
    efix_wait_model(f);
    answer ans;
    assert_int_equal(submit(f, sid, "two", ENGINE_IF_ACTIVE_ENQUEUE, q, &ans), 0);
    json_decref(ans.run);
    assert_int_equal(submit(f, sid, "three", ENGINE_IF_ACTIVE_ENQUEUE, NULL, &ans),
                     ENGINE_ERR_QUEUE_FULL);
    assert_null(ans.run);
    assert_int_equal(submit(f, sid, "four", ENGINE_IF_ACTIVE_INTERRUPT, NULL, &ans),
                     ENGINE_ERR_QUEUE_FULL);
    assert_string_equal(engine_active_run_id(f->e, sid), a);
    assert_queue(f, sid, q, "two");

    assert_int_equal(stop(f, sid, &ans), 0);
    assert_string_equal(str_of(ans.run, "id"), a);
    assert_string_equal(str_of(ans.run, "stop_reason"), "user_stopped");
    json_decref(ans.run);
    efix_wait_stopped(f, q);
    efix_assert_events(f, q, "run_queued run_stopped:user_stopped");
    efix_assert_events(f, a,
                       "message:user run_started status:thinking status:stopping "
                       "run_stopped:user_stopped");
    assert_int_equal(position(f, q, "run_stopped"), position(f, a, "run_stopped") + 1);
    json_t *dropped = efix_event(f, q, "run_stopped", 0);
    assert_string_equal(str_of(dropped, "detail"),
                        "dropped from the queue by a stop request before it started");
    assert_int_equal(json_array_size(json_object_get(dropped, "actions")), 0);
    store_run row;
    efix_run_row(f, q, &row);
    assert_string_equal(row.status, "stopped");
    assert_string_equal(row.stop_reason, "user_stopped");
    assert_null(row.owner_instance);
    assert_true(row.ended_ms >= row.started_ms);
    store_run_cleanup(&row);
    assert_queue(f, sid, NULL, NULL);
    assert_int_equal(scripted_llm_calls(f->model), 1);
    assert_int_equal(f->finished, 1);
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 1);
    store_message_list_free(ms, n);
    /* A stop with only a queued run, or with nothing, as before. */
    assert_int_equal(stop(f, sid, &ans), ENGINE_ERR_NO_RUN);
    efix_assert_stored_events(f, sid);
}

/* enqueue without an active run starts the run at once. */
static void test_enqueue_without_an_active_run_starts_it(void **state)
{
    static const scripted_step script[] = {{.pieces = {"Now."}}};
    efix *f = begin(state, script, N(script));
    char sid[ID_MAX], r[ID_MAX];
    efix_session(f, "standard", sid);
    answer ans;
    assert_int_equal(submit(f, sid, "go", ENGINE_IF_ACTIVE_ENQUEUE, r, &ans), 0);
    assert_string_equal(str_of(ans.run, "status"), "running");
    json_decref(ans.run);
    efix_wait_stopped(f, r);
    efix_assert_events(f, r,
                       "message:user run_started status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
    assert_int_equal(submit(f, "ses_missing", "go", ENGINE_IF_ACTIVE_ENQUEUE, NULL, &ans),
                     ENGINE_ERR_NOT_FOUND);
    assert_int_equal(submit(f, sid, "go", ENGINE_IF_ACTIVE_INTERRUPT, NULL, &ans) == 0, true);
    json_decref(ans.run);
}

/* A brief start answers with the run's id alone, whether the run starts
 * at once (reject, or enqueue without an active run); a queued run's
 * object is whole. */
static void test_brief_start_answers_the_id(void **state)
{
    static const scripted_step script[] = {
        {.pieces = {"One."}}, {.pieces = {"Two."}}, {.pieces = {"Three."}}};
    efix *f = begin(state, script, N(script));
    char sid[ID_MAX];
    efix_session(f, "standard", sid);
    engine_if_active hows[] = {ENGINE_IF_ACTIVE_REJECT, ENGINE_IF_ACTIVE_ENQUEUE};
    for (size_t i = 0; i < 2; i++) {
        answer ans = {0};
        engine_submit_run(f->e, sid, "go", NULL, hows[i], true, on_answer, &ans);
        efix_loop_until(f, answered, &ans, 5000, "the submit to be answered");
        assert_int_equal(ans.status, 0);
        assert_int_equal(json_object_size(ans.run), 1);
        const char *id = str_of(ans.run, "id");
        assert_non_null(id);
        assert_int_equal(strncmp(id, "run_", 4), 0);
        efix_wait_stopped(f, id);
        efix_assert_events(f, id,
                           "message:user run_started status:thinking status:responding token "
                           "message:assistant budget run_stopped:completed");
        json_decref(ans.run);
    }
    /* Not brief: the whole object, as before. */
    char r[ID_MAX];
    answer ans;
    assert_int_equal(submit(f, sid, "go", ENGINE_IF_ACTIVE_REJECT, r, &ans), 0);
    assert_string_equal(str_of(ans.run, "status"), "running");
    assert_string_equal(str_of(ans.run, "session_id"), sid);
    json_decref(ans.run);
    efix_wait_stopped(f, r);
}

/* The active run ends while a queue request is on its way (asked for in
 * the loop callback where the model call ends): whichever sees the other
 * first, the queued run is not left behind, and it runs once. */
typedef struct racing {
    efix *f;
    const char *sid;
    answer ans;
    bool sent;
} racing;

static void enqueue_at_the_end(void *ud)
{
    racing *x = ud;
    if (x->sent) return;
    x->sent = true;
    engine_submit_run(x->f->e, x->sid, "late", NULL, ENGINE_IF_ACTIVE_ENQUEUE, false, on_answer,
                      &x->ans);
}

static bool two_finished(efix *f, const void *arg)
{
    (void)arg;
    return f->finished == 2;
}

static void test_a_run_ending_during_the_request_leaves_nothing_queued(void **state)
{
    static const scripted_step script[] = {{.pieces = {"First."}}, {.pieces = {"Late."}}};
    efix *f = begin(state, script, N(script));
    char sid[ID_MAX], a[ID_MAX];
    efix_session(f, "standard", sid);
    racing x = {.f = f, .sid = sid};
    scripted_llm_after_done(f->model, enqueue_at_the_end, &x);
    assert_int_equal(efix_start(f, sid, "one", NULL, a), 0);
    efix_loop_until(f, answered, &x.ans, 5000, "the late request to be answered");
    assert_int_equal(x.ans.status, 0);
    char q[ID_MAX];
    snprintf(q, sizeof q, "%s", str_of(x.ans.run, "id"));
    json_decref(x.ans.run);
    efix_loop_until(f, two_finished, NULL, 5000, "the late run to run");
    efix_wait_stopped(f, q);
    assert_int_equal(efix_count(f, q, "run_stopped"), 1);
    assert_string_equal(str_of(efix_event(f, q, "run_stopped", 0), "reason"), "completed");
    assert_int_equal(scripted_llm_calls(f->model), 2);
    assert_queue(f, sid, NULL, NULL);
    efix_assert_stored_events(f, sid);
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_enqueue_starts_after_the_active_run),
        T(test_interrupt_stops_then_starts),
        T(test_queue_full_and_a_stop_drops_the_queue),
        T(test_enqueue_without_an_active_run_starts_it),
        T(test_a_run_ending_during_the_request_leaves_nothing_queued),
        T(test_brief_start_answers_the_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
