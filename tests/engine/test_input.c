/*
 * Questions in the run state machine (docs/runs.md, Questions), on the
 * engine fixture's real loop and store with the scripted model and the
 * held tool `hold`, whose server asks through scripted_tool_ask: an
 * answer, a decline, the time-out (the server gets cancel, the run goes
 * on), a stop while waiting, the call ending first, one question at a
 * time, the seconds budget standing still, and an answer stored first by
 * another instance, which wins over this instance's own.
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
#include "lib/clock.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define FORM                                                                                       \
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"       \
    "\"integer\"}},\"required\":[\"name\"]}"

static const scripted_step script[] = {
    {.calls = {{"call_h", "hold", "{}"}}},
    {.pieces = {"Done."}},
};

static efix *begin(void **state, const engine_options *opt, const mode *m, char sid[ID_MAX],
                   char rid[ID_MAX])
{
    engine_options o = efix_default_options();
    efix *f = efix_new(script, N(script), opt ? opt : &o);
    *state = f;
    mode dflt = *mode_preset("standard");
    dflt.limits.seconds = MODE_UNLIMITED;
    efix_set_mode(f, m ? m : &dflt);
    efix_session(f, m ? m->name : dflt.name, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_tool(f);
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

typedef struct want_count {
    const char *run_id, *type;
    size_t n;
} want_count;

static bool has_count(efix *f, const void *arg)
{
    const want_count *w = arg;
    return efix_count(f, w->run_id, w->type) >= w->n;
}

static void wait_count(efix *f, const char *rid, const char *type, size_t n)
{
    want_count w = {rid, type, n};
    efix_loop_until(f, has_count, &w, 5000, type);
}

/* The held call asks FORM and the loop runs until the question is
 * committed; returns its input_requested event (borrowed). */
static json_t *ask(efix *f, const char *rid)
{
    assert_int_equal(scripted_tool_ask(f->held, "Who are you?", FORM), 0);
    wait_count(f, rid, "input_requested", 1);
    return efix_event(f, rid, "input_requested", 0);
}

typedef struct answered {
    bool done;
    int status;
    json_t *input;
} answered;

static void on_answered(void *ud, int status, const json_t *input)
{
    answered *a = ud;
    a->done = true;
    a->status = status;
    a->input = input ? json_deep_copy(input) : NULL;
}

static bool is_answered(efix *f, const void *arg)
{
    (void)f;
    return ((const answered *)arg)->done;
}

/* Answers the question and waits for the engine's answer; returns the
 * input object (a new reference) or NULL, with the status in *status. */
static json_t *answer(efix *f, const char *sid, const char *input_id, elicit_action action,
                      const char *content, int *status)
{
    json_t *c = content ? json_loads(content, 0, NULL) : NULL;
    engine_answer a = {
        .input_id = input_id, .action = action, .content = c, .answered_by = "alice"};
    answered got = {0};
    engine_answer_input(f->e, sid, &a, on_answered, &got);
    json_decref(c);
    efix_loop_until(f, is_answered, &got, 5000, "the answer to an input");
    if (status) *status = got.status;
    return got.input;
}

static bool has_answers(efix *f, const void *arg)
{
    return scripted_tool_answers(f->held) >= *(const size_t *)arg;
}

static void wait_answers(efix *f, size_t n)
{
    efix_loop_until(f, has_answers, &n, 5000, "the tool server's answer");
}

static store_input input_row(efix *f, const char *sid, const char *id)
{
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    store_input a = {0};
    assert_int_equal(store_input_get(f->db, sid, id, &a), 0);
    return a;
}

/* Accepted: the input, its events and its row agree, the server gets the
 * content, the run shows the call running again, and a second answer
 * finds nothing waiting. */
static void test_accept(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, NULL, sid, rid);
    json_t *req = ask(f, rid);
    const char *iid = str_of(req, "input_id");
    assert_string_equal(str_of(req, "server"), "test");
    assert_string_equal(str_of(req, "message"), "Who are you?");
    assert_string_equal(str_of(req, "execution_id"),
                        str_of(efix_event(f, rid, "tool_started", 0), "execution_id"));
    char *schema = json_dumps(json_object_get(req, "schema"), JSON_COMPACT);
    assert_string_equal(schema, FORM);
    free(schema);
    assert_int_equal(strncmp(iid, "inp_", 4), 0);
    store_input row = input_row(f, sid, iid);
    assert_string_equal(row.status, "pending");
    assert_string_equal(row.run_id, rid);
    assert_int_equal(row.expires_ms - row.requested_ms, 900000);
    assert_null(row.content);
    store_input_cleanup(&row);

    int status = -1;
    json_t *in = answer(f, sid, iid, ELICIT_ACCEPT, "{\"name\":\"Ada\",\"age\":36}", &status);
    assert_int_equal(status, 0);
    assert_string_equal(str_of(in, "id"), iid);
    assert_string_equal(str_of(in, "status"), "accepted");
    assert_string_equal(str_of(in, "message"), "Who are you?");
    assert_string_equal(str_of(json_object_get(in, "content"), "name"), "Ada");
    assert_true(json_is_string(json_object_get(in, "answered_at")));
    assert_null(json_object_get(in, "answered_by"));
    json_decref(in);
    wait_answers(f, 1);
    assert_string_equal(scripted_tool_last_action(f->held), "accept");
    assert_string_equal(scripted_tool_last_content(f->held), "{\"age\":36,\"name\":\"Ada\"}");
    assert_null(answer(f, sid, iid, ELICIT_DECLINE, NULL, &status));
    assert_int_equal(status, ENGINE_ERR_NOT_FOUND);
    assert_int_equal(scripted_tool_answers(f->held), 1);

    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "hello Ada"), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:hold status:tool_running input_requested:test "
                       "status:waiting_for_input input_answered:accept:alice status:tool_running "
                       "tool_finished:hold:ok message:tool budget status:thinking "
                       "status:responding token message:assistant budget run_stopped:completed");
    json_t *ans = efix_event(f, rid, "input_answered", 0);
    char *text = json_dumps(json_object_get(ans, "content"), JSON_COMPACT);
    assert_string_equal(text, "{\"name\":\"Ada\",\"age\":36}");
    free(text);
    assert_string_equal(str_of(efix_event(f, rid, "status", 2), "detail"), "hold");
    row = input_row(f, sid, iid);
    assert_string_equal(row.status, "accepted");
    assert_string_equal(row.answered_by, "alice");
    assert_string_equal(str_of(row.content, "name"), "Ada");
    store_input_cleanup(&row);
    efix_assert_stored_events(f, sid);
}

/* Declined (and cancelled): no content is stored or sent; an accept
 * without content sends {}. */
static void test_decline_and_empty_accept(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, NULL, sid, rid);
    json_t *req = ask(f, rid);
    int status = -1;
    json_t *in = answer(f, sid, str_of(req, "input_id"), ELICIT_DECLINE, NULL, &status);
    assert_int_equal(status, 0);
    assert_string_equal(str_of(in, "status"), "declined");
    assert_true(json_is_null(json_object_get(in, "content")));
    json_decref(in);
    wait_answers(f, 1);
    assert_string_equal(scripted_tool_last_action(f->held), "decline");
    assert_string_equal(scripted_tool_last_content(f->held), "");
    assert_null(json_object_get(efix_event(f, rid, "input_answered", 0), "content"));

    /* The same call asks again; an accept without content sends {}. */
    assert_int_equal(scripted_tool_ask(f->held, "Sure?", "{\"type\":\"object\",\"properties\":{}}"),
                     0);
    wait_count(f, rid, "input_requested", 2);
    in = answer(f, sid, str_of(efix_event(f, rid, "input_requested", 1), "input_id"), ELICIT_ACCEPT,
                NULL, &status);
    assert_int_equal(status, 0);
    json_decref(in);
    wait_answers(f, 2);
    assert_string_equal(scripted_tool_last_action(f->held), "accept");
    assert_string_equal(scripted_tool_last_content(f->held), "{}");
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "ok"), 0);
    efix_wait_stopped(f, rid);
}

/* Unanswered within approvals.timeout_seconds: the server gets cancel, the
 * input expires (input_answered says cancel by timeout), and the run goes
 * on with the call. */
static void test_timeout_sends_cancel(void **state)
{
    engine_options o = efix_default_options();
    o.approval_timeout_ms = 200;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, &o, NULL, sid, rid);
    json_t *req = ask(f, rid);
    wait_answers(f, 1);
    assert_string_equal(scripted_tool_last_action(f->held), "cancel");
    assert_string_equal(scripted_tool_last_content(f->held), "");
    store_input row = input_row(f, sid, str_of(req, "input_id"));
    assert_string_equal(row.status, "expired");
    assert_string_equal(row.answered_by, "timeout");
    store_input_cleanup(&row);
    assert_int_equal(scripted_tool_in_flight(f->held), 1);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "no answer"), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:hold status:tool_running input_requested:test "
                       "status:waiting_for_input input_answered:cancel:timeout "
                       "status:tool_running tool_finished:hold:ok message:tool budget "
                       "status:thinking status:responding token message:assistant budget "
                       "run_stopped:completed");
}

/* A stop while waiting cancels the input (by stop) and the call, and the
 * run stops user_stopped. */
static void test_stop_while_waiting(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, NULL, sid, rid);
    json_t *req = ask(f, rid);
    char iid[ID_MAX];
    snprintf(iid, sizeof iid, "%s", str_of(req, "input_id"));
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:hold status:tool_running input_requested:test "
                       "status:waiting_for_input status:stopping input_answered:cancel:stop "
                       "tool_finished:hold:cancelled run_stopped:user_stopped");
    assert_int_equal(scripted_tool_cancelled(f->held), 1);
    store_input row = input_row(f, sid, iid);
    assert_string_equal(row.status, "cancelled");
    assert_string_equal(row.answered_by, "stop");
    store_input_cleanup(&row);
    int status = 0;
    assert_null(answer(f, sid, iid, ELICIT_ACCEPT, "{\"name\":\"x\"}", &status));
    assert_int_equal(status, ENGINE_ERR_NOT_FOUND);
}

/* The call ends while its server waits: the input is cancelled by "tool".
 * A second question while one waits is declined at once. */
static void test_call_ends_first_and_one_at_a_time(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, NULL, sid, rid);
    json_t *req = ask(f, rid);
    assert_int_equal(scripted_tool_ask(f->held, "Again?", FORM), 0);
    assert_int_equal(scripted_tool_answers(f->held), 1);
    assert_string_equal(scripted_tool_last_action(f->held), "decline");
    assert_int_equal(scripted_tool_finish(f->held, TOOL_ERROR, "gave up"), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "input_requested"), 1);
    json_t *ans = efix_event(f, rid, "input_answered", 0);
    assert_string_equal(str_of(ans, "action"), "cancel");
    assert_string_equal(str_of(ans, "answered_by"), "tool");
    store_input row = input_row(f, sid, str_of(req, "input_id"));
    assert_string_equal(row.status, "cancelled");
    store_input_cleanup(&row);
}

/* Waiting for the person leaves the seconds budget: usage counts the wait
 * in waiting_seconds, not in seconds. */
static void test_seconds_exclude_the_wait(void **state)
{
    mode m = *mode_preset("standard");
    m.limits.seconds = 60;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, &m, sid, rid);
    json_t *req = ask(f, rid);
    struct timeval tv = {1, 200000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    json_decref(answer(f, sid, str_of(req, "input_id"), ELICIT_DECLINE, NULL, NULL));
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "ok"), 0);
    efix_wait_stopped(f, rid);
    json_t *usage = json_object_get(efix_event(f, rid, "run_stopped", 0), "usage");
    assert_true(json_real_value(json_object_get(usage, "waiting_seconds")) >= 1.1);
    assert_true(json_real_value(json_object_get(usage, "seconds")) < 1.0);
}

/* Asks the question and answers it in the store as another instance does,
 * by bob, with status and content (stolen, may be NULL); its id goes to
 * iid. */
static void answer_in_store(efix *f, const char *sid, const char *rid, const char *status,
                            json_t *content, char iid[ID_MAX])
{
    json_t *req = ask(f, rid);
    snprintf(iid, ID_MAX, "%s", str_of(req, "input_id"));
    store_input row = input_row(f, sid, iid);
    free(row.status);
    row.status = strdup(status);
    row.content = content;
    row.answered_by = strdup("bob");
    row.answered_ms = clock_wall_ms();
    assert_int_equal(store_input_answer(f->db, &row), 0);
    store_input_cleanup(&row);
}

/* Another instance stored an answer first (docs/architecture.md, Several
 * instances): this instance's own answer loses (not found, as the route
 * then reads the stored one), and the run hands the stored answer to the
 * server, announcing it once. */
static void test_answer_stored_elsewhere_wins(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, NULL, sid, rid);
    char iid[ID_MAX];
    answer_in_store(f, sid, rid, "accepted", json_pack("{s:s}", "name", "Bob"), iid);

    int status = 0;
    assert_null(answer(f, sid, iid, ELICIT_ACCEPT, "{\"name\":\"Ada\"}", &status));
    assert_int_equal(status, ENGINE_ERR_NOT_FOUND);
    wait_answers(f, 1);
    assert_string_equal(scripted_tool_last_action(f->held), "accept");
    assert_string_equal(scripted_tool_last_content(f->held), "{\"name\":\"Bob\"}");
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "hello Bob"), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "input_answered"), 1);
    json_t *ans = efix_event(f, rid, "input_answered", 0);
    assert_string_equal(str_of(ans, "answered_by"), "bob");
    assert_string_equal(str_of(json_object_get(ans, "content"), "name"), "Bob");
    store_input row = input_row(f, sid, iid);
    assert_string_equal(row.answered_by, "bob");
    store_input_cleanup(&row);
    efix_assert_stored_events(f, sid);
}

/* The owner hears of an answer stored by another instance through a
 * control message, reads it and applies it; a message for another
 * instance, or for an input nobody waits for, changes nothing. */
static void test_control_message_applies_a_stored_answer(void **state)
{
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, NULL, NULL, sid, rid);
    char iid[ID_MAX];
    answer_in_store(f, sid, rid, "declined", NULL, iid);

    control_msg other = {.kind = CONTROL_INPUT_ANSWERED,
                         .instance = "ins_somebody_else",
                         .run_id = rid,
                         .item_id = iid};
    engine_control(f->e, &other);
    control_msg wrong = {
        .kind = CONTROL_INPUT_ANSWERED, .instance = "ins_test", .run_id = rid, .item_id = "inp_x"};
    engine_control(f->e, &wrong);
    struct timeval tv = {0, 200000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(scripted_tool_answers(f->held), 0);

    control_msg mine = {
        .kind = CONTROL_INPUT_ANSWERED, .instance = "ins_test", .run_id = rid, .item_id = iid};
    engine_control(f->e, &mine);
    wait_answers(f, 1);
    assert_string_equal(scripted_tool_last_action(f->held), "decline");
    wait_count(f, rid, "input_answered", 1);
    assert_string_equal(str_of(efix_event(f, rid, "input_answered", 0), "answered_by"), "bob");
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "ok"), 0);
    efix_wait_stopped(f, rid);
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_accept),
        T(test_decline_and_empty_accept),
        T(test_timeout_sends_cancel),
        T(test_stop_while_waiting),
        T(test_call_ends_first_and_one_at_a_time),
        T(test_seconds_exclude_the_wait),
        T(test_answer_stored_elsewhere_wins),
        T(test_control_message_applies_a_stored_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
