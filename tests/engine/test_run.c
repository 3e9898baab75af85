/*
 * The run state machine (src/engine/run.c) on a real loop, a real store in
 * a temporary SQLite file and the real writer and read pool, with the
 * scripted model of scripted_llm.h: every phase transition, asserted on
 * the exact sequence of committed events, the final run row, the stored
 * messages and the context each model call was sent. Runs start and stop
 * through the engine, the only way in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/context.h"
#include "engine_fixture.h"
#include "lib/clock.h"
#include "store/dbpool.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The standard preset without a seconds limit, so that the budget notes
 * the model reads do not depend on how fast the test runs. */
static mode test_mode(void)
{
    mode m = *mode_preset("standard");
    m.limits.seconds = MODE_UNLIMITED;
    return m;
}

static efix *begin(void **state, const scripted_step *steps, size_t n, const mode *m,
                   const engine_options *opt, char sid[ID_MAX])
{
    efix *f = efix_new(steps, n, opt);
    *state = f;
    mode dflt = test_mode();
    efix_set_mode(f, m ? m : &dflt);
    efix_session(f, m ? m->name : dflt.name, sid);
    return f;
}

static int teardown(void **state)
{
    efix_free(*state);
    return 0;
}

/* What every ended run must show: exactly one run_stopped, last of the
 * run's events, agreeing with the stored run row; the session released;
 * the store holding exactly the published events. Returns run_stopped. */
static json_t *check_end(efix *f, const char *sid, const char *run_id)
{
    assert_int_equal(efix_count(f, run_id, "run_stopped"), 1);
    json_t *stopped = efix_event(f, run_id, "run_stopped", 0);
    json_t *last = NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
    {
        const char *r = json_string_value(json_object_get(ev, "run_id"));
        if (r && strcmp(r, run_id) == 0) last = ev;
    }
    assert_ptr_equal(last, stopped);

    store_run row;
    efix_run_row(f, run_id, &row);
    assert_string_equal(row.status, "stopped");
    assert_string_equal(row.stop_reason, json_string_value(json_object_get(stopped, "reason")));
    assert_string_equal(row.stop_detail, json_string_value(json_object_get(stopped, "detail")));
    assert_int_equal(row.wrapped_up, json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_true(json_equal(row.usage, json_object_get(stopped, "usage")));
    assert_true(json_equal(row.actions, json_object_get(stopped, "actions")));
    assert_true(row.ended_ms >= row.started_ms);
    store_run_cleanup(&row);

    store_session ses = {0};
    assert_int_equal(store_session_get(f->db, sid, NULL, &ses), 0);
    assert_null(ses.active_run_id);
    assert_string_equal(ses.status, "idle");
    store_session_cleanup(&ses);

    efix_assert_stored_events(f, sid);
    assert_int_equal(scripted_llm_in_flight(f->model), 0);
    return stopped;
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Message i of what call `call` was sent. */
static json_t *sent(efix *f, size_t call, size_t i)
{
    const scripted_request *rq = scripted_llm_request(f->model, call);
    assert_non_null(rq);
    return json_array_get(rq->messages, i);
}

static size_t sent_count(efix *f, size_t call)
{
    const scripted_request *rq = scripted_llm_request(f->model, call);
    assert_non_null(rq);
    return json_array_size(rq->messages);
}

static void assert_sent(efix *f, size_t call, size_t i, const char *role, const char *content)
{
    json_t *m = sent(f, call, i);
    assert_non_null(m);
    assert_string_equal(str_of(m, "role"), role);
    if (content) assert_string_equal(str_of(m, "content"), content);
}

/* How many messages of this role call `call` was sent. */
static size_t sent_role(efix *f, size_t call, const char *role)
{
    size_t n = 0;
    for (size_t i = 0; i < sent_count(f, call); i++)
        if (strcmp(str_of(sent(f, call, i), "role"), role) == 0) n++;
    return n;
}

static json_t *usage_of(const json_t *stopped)
{
    return json_object_get(stopped, "usage");
}

/* ---- one step ---- */

static void test_one_step_completes(void **state)
{
    static const scripted_step script[] = {
        {.pieces = {"Hello", " world"},
         .usage = true,
         .prompt_tokens = 100,
         .completion_tokens = 5},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    /* The start answers with the running run. */
    assert_string_equal(str_of(f->run, "status"), "running");
    assert_string_equal(str_of(f->run, "mode"), "standard");
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token token "
                       "message:assistant budget run_stopped:completed");
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"), "answered in 1 step with 0 tool calls");
    assert_false(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_int_equal(int_of(usage_of(stopped), "steps"), 1);
    assert_int_equal(int_of(usage_of(stopped), "tokens"), 105);
    assert_int_equal(int_of(usage_of(stopped), "tool_calls"), 0);
    assert_int_equal(int_of(usage_of(stopped), "retries"), 0);

    /* The tokens and the stored message share one message_id. */
    json_t *msg = efix_event(f, rid, "message", 1);
    assert_string_equal(str_of(msg, "content"), "Hello world");
    assert_string_equal(str_of(efix_event(f, rid, "token", 0), "message_id"),
                        str_of(msg, "message_id"));
    assert_string_equal(str_of(efix_event(f, rid, "token", 0), "text"), "Hello");
    assert_string_equal(str_of(efix_event(f, rid, "token", 1), "text"), " world");
    assert_string_equal(str_of(efix_event(f, rid, "run_started", 0), "mode"), "standard");
    assert_true(json_is_null(json_object_get(efix_event(f, rid, "run_started", 0), "continues")));

    /* The context: system prompt, budget note, the user message; tools
     * offered (calc, clock and the held tool). */
    assert_int_equal(scripted_llm_calls(f->model), 1);
    assert_int_equal(sent_count(f, 0), 3);
    assert_sent(f, 0, 0, "system", "You are the test model.");
    assert_sent(f, 0, 1, "system", "Budget: step 1 of 10, 15 tool calls left.");
    assert_sent(f, 0, 2, "user", "hi");
    const scripted_request *rq = scripted_llm_request(f->model, 0);
    assert_true(rq->tools);
    assert_int_equal(rq->ntools, 3);
    assert_true(rq->max_completion_tokens > 40000 && rq->max_completion_tokens < 50000);

    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ms[0].role, "user");
    assert_string_equal(ms[0].content, "hi");
    assert_string_equal(ms[1].role, "assistant");
    assert_string_equal(ms[1].content, "Hello world");
    assert_false(ms[1].partial);
    assert_string_equal(ms[1].id, str_of(msg, "message_id"));
    store_message_list_free(ms, n);
}

/* ---- tools ---- */

static void test_tool_call_then_answer(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"call_1", "calc", "{\"expression\":\"6*7\"}"}},
         .usage = true,
         .prompt_tokens = 100,
         .completion_tokens = 10},
        {.pieces = {"It is 42."}, .usage = true, .prompt_tokens = 150, .completion_tokens = 5},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "what is 6*7?", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:ok message:tool "
                       "budget status:thinking status:responding token message:assistant budget "
                       "run_stopped:completed");
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"), "answered in 2 steps with 1 tool call");
    assert_int_equal(int_of(usage_of(stopped), "steps"), 2);
    assert_int_equal(int_of(usage_of(stopped), "tool_calls"), 1);
    assert_int_equal(int_of(usage_of(stopped), "tokens"), 265);

    json_t *started = efix_event(f, rid, "tool_started", 0);
    json_t *finished = efix_event(f, rid, "tool_finished", 0);
    assert_string_equal(str_of(started, "server"), "builtin");
    assert_int_equal(int_of(started, "step"), 1);
    assert_string_equal(str_of(json_object_get(started, "arguments"), "expression"), "6*7");
    assert_string_equal(str_of(finished, "execution_id"), str_of(started, "execution_id"));
    assert_string_equal(str_of(finished, "result"), "42");
    assert_true(json_is_null(json_object_get(finished, "error")));
    json_t *tool_msg = efix_event(f, rid, "message", 2);
    assert_string_equal(str_of(tool_msg, "tool_call_id"), "call_1");
    assert_string_equal(str_of(tool_msg, "content"), "42");
    json_t *status = efix_event(f, rid, "status", 1);
    assert_string_equal(str_of(status, "detail"), "running calc");

    /* Step 2 sees the call and its result, and the budget note moved on. */
    assert_int_equal(sent_count(f, 1), 5);
    assert_sent(f, 1, 1, "system", "Budget: step 2 of 10, 14 tool calls left.");
    assert_sent(f, 1, 2, "user", "what is 6*7?");
    json_t *call = json_array_get(json_object_get(sent(f, 1, 3), "tool_calls"), 0);
    assert_string_equal(str_of(call, "id"), "call_1");
    assert_string_equal(str_of(json_object_get(call, "function"), "name"), "calc");
    assert_sent(f, 1, 4, "tool", "42");
    assert_string_equal(str_of(sent(f, 1, 4), "tool_call_id"), "call_1");

    store_tool_exec *xs;
    size_t nx;
    assert_int_equal(store_tool_exec_list(f->db, sid, rid, &xs, &nx), 0);
    assert_int_equal(nx, 1);
    assert_string_equal(xs[0].status, "ok");
    assert_string_equal(xs[0].result, "42");
    assert_string_equal(xs[0].server, "builtin");
    assert_string_equal(xs[0].tool, "calc");
    assert_int_equal(xs[0].step, 1);
    store_tool_exec_list_free(xs, nx);
}

/* More calls than the tool budget: the rest are answered as skipped, and
 * the next step wraps up with the tool-call dimension. */
static void test_tool_budget_skips_then_wraps_up(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"},
                   {"c2", "calc", "{\"expression\":\"2+2\"}"}}},
        {.pieces = {"Only one."}},
    };
    mode m = test_mode();
    m.limits.tool_calls = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "add", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:ok message:tool "
                       "budget message:tool status:thinking status:responding token "
                       "message:assistant budget run_stopped:max_tool_calls");
    json_t *stopped = check_end(f, sid, rid);
    assert_true(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_int_equal(int_of(usage_of(stopped), "tool_calls"), 1);
    json_t *skipped = efix_event(f, rid, "message", 3);
    assert_string_equal(str_of(skipped, "tool_call_id"), "c2");
    assert_string_equal(str_of(skipped, "content"), "skipped: tool-call budget exhausted");
    /* The wrap-up step offers no tools and ends with the wrap-up note. */
    const scripted_request *rq = scripted_llm_request(f->model, 1);
    assert_false(rq->tools);
    assert_sent(f, 1, sent_count(f, 1) - 1, "system", CONTEXT_WRAP_UP_NOTE);
}

/* ---- model failures ---- */

static void test_retryable_error_then_success(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_RETRYABLE, .pieces = {"Hel"}, .error = "HTTP 503: overloaded"},
        {.pieces = {"Hello"}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token "
                       "error:llm_retryable status:retrying status:thinking status:responding "
                       "token message:assistant budget run_stopped:completed");
    json_t *stopped = check_end(f, sid, rid);
    assert_int_equal(int_of(usage_of(stopped), "retries"), 1);
    assert_int_equal(int_of(usage_of(stopped), "steps"), 1);

    const char *failed_id = str_of(efix_event(f, rid, "token", 0), "message_id");
    json_t *err = efix_event(f, rid, "error", 0);
    assert_string_equal(str_of(err, "message_id"), failed_id);
    assert_string_equal(str_of(err, "message"), "HTTP 503: overloaded");
    assert_true(json_is_true(json_object_get(err, "retryable")));
    assert_string_equal(str_of(efix_event(f, rid, "status", 2), "detail"),
                        "attempt 2 of 4, waiting 0.0 s");
    /* The retry streams under a new message_id, which is the one stored. */
    const char *retry_id = str_of(efix_event(f, rid, "token", 1), "message_id");
    assert_string_not_equal(retry_id, failed_id);
    assert_string_equal(str_of(efix_event(f, rid, "message", 1), "message_id"), retry_id);

    /* The retry is the same step: the same budget note, the same context. */
    assert_int_equal(scripted_llm_calls(f->model), 2);
    assert_true(json_equal(scripted_llm_request(f->model, 0)->messages,
                           scripted_llm_request(f->model, 1)->messages));

    /* The failed attempt's text is stored nowhere. */
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ms[1].content, "Hello");
    assert_string_equal(ms[1].id, retry_id);
    store_message_list_free(ms, n);
}

static void test_retries_run_out(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 503: overloaded"},
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 503: still overloaded"},
    };
    mode m = test_mode();
    m.limits.retries = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking error:llm_retryable "
                       "status:retrying status:thinking error:llm_error run_stopped:max_retries");
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"),
                        "the model endpoint kept failing; used 1 of 1 retry (last: HTTP 503: "
                        "still overloaded)");
    json_t *diag = json_object_get(stopped, "diagnosis");
    assert_string_equal(str_of(diag, "playbook"), "model_down");
    assert_string_equal(str_of(diag, "summary"),
                        "The model endpoint kept failing (HTTP 503) until "
                        "the retries were spent: HTTP 503: still overloaded");
    assert_int_equal(int_of(json_object_get(diag, "evidence"), "attempts"), 2);
    assert_int_equal(int_of(usage_of(stopped), "retries"), 1);
    json_t *err = efix_event(f, rid, "error", 1);
    assert_false(json_is_true(json_object_get(err, "retryable")));
    assert_string_equal(str_of(efix_event(f, rid, "status", 1), "detail"),
                        "attempt 2 of 2, waiting 0.0 s");
}

/* The max_retries detail counts in the budget's own words: "1 retry" in
 * the singular (above), "2 retries" in the plural. */
static void test_retries_run_out_detail_in_plural(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 503"},
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 502"},
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 504"},
    };
    mode m = test_mode();
    m.limits.retries = 2;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "reason"), "max_retries");
    assert_string_equal(str_of(stopped, "detail"),
                        "the model endpoint kept failing; used 2 of 2 retries (last: HTTP 504)");
}

static void test_fatal_error_stops_with_llm_error(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_FATAL,
         .error = "HTTP 401: invalid api key",
         .http_status = 401,
         .error_code = "invalid_api_key"},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking error:llm_error "
                       "run_stopped:llm_error");
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"), "HTTP 401: invalid api key");
    /* The diagnosis names the cause, in the event and in the run. */
    char *diag = json_dumps(json_object_get(stopped, "diagnosis"), JSON_COMPACT);
    assert_string_equal(diag,
                        "{\"playbook\":\"model_auth\",\"summary\":\"The model endpoint "
                        "rejected the API key (HTTP 401)\",\"evidence\":{\"http_status\":401,"
                        "\"error_code\":\"invalid_api_key\",\"error\":\"HTTP 401: invalid api "
                        "key\",\"attempts\":1}}");
    free(diag);
    store_run run;
    assert_int_equal(store_run_get(f->db, rid, &run), 0);
    assert_true(json_equal(run.diagnosis, json_object_get(stopped, "diagnosis")));
    store_run_cleanup(&run);
    json_t *err = efix_event(f, rid, "error", 0);
    assert_false(json_is_true(json_object_get(err, "retryable")));
    /* Nothing was streamed, so the error names no message. */
    assert_true(json_is_null(json_object_get(err, "message_id")));
    assert_int_equal(int_of(usage_of(stopped), "retries"), 0);
    assert_int_equal(scripted_llm_calls(f->model), 1);
}

/* A fatal error after some text: the error names the discarded message
 * and the text is not stored. */
static void test_fatal_error_after_text(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_FATAL, .pieces = {"Half"}, .error = "the stream broke"},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token "
                       "error:llm_error run_stopped:llm_error");
    check_end(f, sid, rid);
    assert_string_equal(str_of(efix_event(f, rid, "error", 0), "message_id"),
                        str_of(efix_event(f, rid, "token", 0), "message_id"));
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 1);
    store_message_list_free(ms, n);
}

/* Arguments that are not a JSON object never reach the tool: the
 * execution is recorded as an error the model reads, and the run goes on. */
static void test_invalid_tool_arguments(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\": "}, {"c2", "calc", "[1]"}}},
        {.pieces = {"Sorry."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:error "
                       "message:tool budget tool_started:calc status:tool_running "
                       "tool_finished:calc:error message:tool budget "
                       "guardrail:repeated_failure:warn status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
    check_end(f, sid, rid);
    const char *e1 = str_of(efix_event(f, rid, "tool_finished", 0), "error");
    assert_non_null(strstr(e1, "invalid JSON arguments for calc: "));
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 1), "error"),
                        "invalid JSON arguments for calc: arguments must be a JSON object");
    /* Both were started as executions with empty arguments. */
    assert_int_equal(
        json_object_size(json_object_get(efix_event(f, rid, "tool_started", 0), "arguments")), 0);
    /* Step 2 reads both errors, then the failure nudge. */
    assert_sent(f, 1, sent_count(f, 1) - 3, "tool", e1);
    assert_sent(f, 1, sent_count(f, 1) - 2, "tool",
                "invalid JSON arguments for calc: arguments must be a JSON object");
    assert_sent(f, 1, sent_count(f, 1) - 1, "system", NULL);
}

static bool two_calls(efix *f, const void *arg)
{
    (void)arg;
    return scripted_llm_calls(f->model) == 2;
}

/* Without Retry-After the first retry waits 0.25 to 0.5 s (0.5 s with
 * equal jitter), and says so. */
static void test_retry_backs_off(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 502", .retry_after_ms = -1},
        {.pieces = {"Back."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_loop_until(f, two_calls, NULL, 5000, "the retried call");
    efix_wait_stopped(f, rid);
    check_end(f, sid, rid);
    json_t *retrying = efix_event(f, rid, "status", 1);
    assert_string_equal(str_of(retrying, "status"), "retrying");
    double wait = 0;
    assert_int_equal(sscanf(str_of(retrying, "detail"), "attempt 2 of 4, waiting %lf s", &wait), 1);
    assert_true(wait >= 0.2 && wait <= 0.5);
    /* And it did wait that long (libevent's timers may run a few
     * milliseconds early by the monotonic clock). */
    int64_t gap = scripted_llm_request(f->model, 1)->started_ms -
                  scripted_llm_request(f->model, 0)->started_ms;
    assert_true(gap >= (int64_t)(wait * 1000) - 60 && gap < 1000);
}

/* ---- budgets ---- */

static void test_max_steps_wraps_up(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}}},
        /* The wrap-up turn also asks for a tool: it is ignored. */
        {.pieces = {"Summary."}, .calls = {{"c2", "calc", "{\"expression\":\"2+2\"}"}}},
    };
    mode m = test_mode();
    m.limits.steps = 2;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:ok message:tool "
                       "budget status:thinking status:responding token message:assistant budget "
                       "run_stopped:max_steps");
    json_t *stopped = check_end(f, sid, rid);
    assert_true(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_string_equal(str_of(stopped, "detail"), "used 2 of 2 steps");
    assert_int_equal(int_of(usage_of(stopped), "tool_calls"), 1);

    /* Step 1 offered tools; step 2 withheld them and said why last. */
    assert_true(scripted_llm_request(f->model, 0)->tools);
    const scripted_request *rq = scripted_llm_request(f->model, 1);
    assert_false(rq->tools);
    assert_int_equal(rq->ntools, 0);
    assert_sent(f, 1, 1, "system", "Budget: step 2 of 2, 14 tool calls left.");
    assert_sent(f, 1, sent_count(f, 1) - 1, "system", CONTEXT_WRAP_UP_NOTE);
    assert_sent(f, 0, sent_count(f, 0) - 1, "user", "go");
    assert_true(json_is_null(json_object_get(efix_event(f, rid, "message", 3), "tool_calls")));
}

static void test_token_budget_wraps_up(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}},
         .usage = true,
         .prompt_tokens = 1000,
         .completion_tokens = 900},
        {.pieces = {"Short."}, .usage = true, .prompt_tokens = 50, .completion_tokens = 10},
    };
    mode m = test_mode();
    m.limits.tokens = 3000;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:ok message:tool "
                       "budget status:thinking status:responding token message:assistant budget "
                       "run_stopped:max_tokens");
    json_t *stopped = check_end(f, sid, rid);
    assert_true(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_int_equal(int_of(usage_of(stopped), "tokens"), 1960);
    assert_string_equal(str_of(stopped, "detail"), "used 1960 of 3000 tokens");
    const scripted_request *rq = scripted_llm_request(f->model, 1);
    assert_false(rq->tools);
    /* The completion is capped to what is left after the prompt. */
    assert_true(rq->max_completion_tokens >= 1 && rq->max_completion_tokens < 1100);
    assert_sent(f, 1, sent_count(f, 1) - 1, "system", CONTEXT_WRAP_UP_NOTE);
    /* The budget event after step 1 lists tokens past 80 %? 1900 of 3000
     * is not; none is listed. */
    assert_int_equal(json_array_size(json_object_get(efix_event(f, rid, "budget", 0), "warnings")),
                     0);
}

static void test_token_budget_used_up_stops(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}},
         .usage = true,
         .prompt_tokens = 2500,
         .completion_tokens = 600},
    };
    mode m = test_mode();
    m.limits.tokens = 3000;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:ok message:tool "
                       "budget run_stopped:max_tokens");
    json_t *stopped = check_end(f, sid, rid);
    assert_false(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_string_equal(str_of(stopped, "detail"), "used 3100 of 3000 tokens");
    assert_int_equal(scripted_llm_calls(f->model), 1);
    json_t *warnings = json_object_get(efix_event(f, rid, "budget", 0), "warnings");
    assert_int_equal(json_array_size(warnings), 1);
    assert_string_equal(json_string_value(json_array_get(warnings, 0)), "tokens");
}

static void test_cost_budget_wraps_up(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}},
         .usage = true,
         .prompt_tokens = 1000,
         .completion_tokens = 500},
        {.pieces = {"Cheap."}, .usage = true, .prompt_tokens = 10, .completion_tokens = 5},
    };
    /* $1 per 1000 prompt tokens, $2 per 1000 completion tokens. */
    engine_options opt = efix_default_options();
    opt.price = (budget_price){.input_per_mtok = 1000, .output_per_mtok = 2000, .set = true};
    mode m = test_mode();
    m.limits.cost_usd = 2.5;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, &opt, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:calc status:tool_running tool_finished:calc:ok message:tool "
                       "budget status:thinking status:responding token message:assistant budget "
                       "run_stopped:max_cost");
    json_t *stopped = check_end(f, sid, rid);
    assert_true(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_float_equal(json_real_value(json_object_get(usage_of(stopped), "cost_usd")), 2.02, 1e-9);
    assert_string_equal(str_of(stopped, "detail"), "spent $2.0200 of $2.5000");
    assert_false(scripted_llm_request(f->model, 1)->tools);
}

/* ---- guardrails ---- */

static void test_loop_guard_nudges_then_stops(void **state)
{
#define SAME_CALL                                                                                  \
    {                                                                                              \
        .calls = { {"c", "calc", "{\"expression\":\"2+2\"}"} }                                     \
    }
    static const scripted_step script[] = {SAME_CALL, SAME_CALL, SAME_CALL, SAME_CALL};
#undef SAME_CALL
    mode m = test_mode();
    m.guard.loop_warn = 2;
    m.guard.loop_stop = 4;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "loop", NULL, rid), 0);
    efix_wait_stopped(f, rid);

#define STEP                                                                                       \
    "status:thinking message:assistant+calls budget tool_started:calc status:tool_running "        \
    "tool_finished:calc:ok message:tool budget "
    efix_assert_events(f, rid,
                       "message:user run_started " STEP STEP "guardrail:loop:warn " STEP
                       "guardrail:loop:warn " STEP "guardrail:loop:stop run_stopped:loop_detected");
#undef STEP
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"),
                        "calc was called 4 times with {\"expression\":\"2+2\"}");
    json_t *warn = efix_event(f, rid, "guardrail", 0);
    assert_string_equal(str_of(json_object_get(warn, "evidence"), "tool"), "calc");
    assert_int_equal(int_of(json_object_get(warn, "evidence"), "count"), 2);

    /* Every call from loop_warn up to loop_stop warns; each nudge reaches
     * the next call only, as its last message, and is not said again. */
    assert_int_equal(scripted_llm_calls(f->model), 4);
    assert_int_equal(sent_role(f, 1, "system"), 2);
    assert_int_equal(sent_role(f, 2, "system"), 3);
    assert_int_equal(sent_role(f, 3, "system"), 3);
    json_t *nudge = sent(f, 2, sent_count(f, 2) - 1);
    assert_string_equal(str_of(nudge, "role"), "system");
    assert_non_null(strstr(str_of(nudge, "content"), "calc with the same arguments 2 times"));
    nudge = sent(f, 3, sent_count(f, 3) - 1);
    assert_string_equal(str_of(nudge, "role"), "system");
    assert_non_null(strstr(str_of(nudge, "content"), "calc with the same arguments 3 times"));
}

static void test_failure_guard_nudges_then_stops(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1/0\"}"}}},
        {.calls = {{"c2", "calc", "{\"expression\":\"2/0\"}"}}},
        {.calls = {{"c3", "calc", "{\"expression\":\"3/0\"}"}}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "divide", NULL, rid), 0);
    efix_wait_stopped(f, rid);

#define STEP                                                                                       \
    "status:thinking message:assistant+calls budget tool_started:calc status:tool_running "        \
    "tool_finished:calc:error message:tool budget "
    efix_assert_events(f, rid,
                       "message:user run_started " STEP STEP "guardrail:repeated_failure:warn " STEP
                       "guardrail:repeated_failure:stop run_stopped:repeated_failures");
#undef STEP
    json_t *stopped = check_end(f, sid, rid);
    const char *err = str_of(efix_event(f, rid, "tool_finished", 2), "error");
    assert_non_null(err);
    char want[256];
    snprintf(want, sizeof want, "3 tool calls failed in a row (last: calc: %s)", err);
    assert_string_equal(str_of(stopped, "detail"), want);
    /* The failed result is what the model sees. */
    assert_sent(f, 1, sent_count(f, 1) - 1, "tool", err);
    /* The warning's nudge is read by step 3, last. */
    json_t *nudge = sent(f, 2, sent_count(f, 2) - 1);
    assert_string_equal(str_of(nudge, "role"), "system");
    assert_non_null(strstr(str_of(nudge, "content"), "The last 2 tool calls failed"));
}

static void test_empty_turns_nudge_then_stop(void **state)
{
    static const scripted_step script[] = {{.pieces = {0}}, {.pieces = {"  "}}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);

    /* A white-space turn is stored (it has text) but counts as empty. */
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking budget "
                       "guardrail:no_progress:warn status:thinking status:responding token "
                       "message:assistant budget guardrail:no_progress:stop "
                       "run_stopped:no_progress");
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"), "the model returned 2 empty turns in a row");
    assert_string_equal(str_of(sent(f, 1, sent_count(f, 1) - 1), "role"), "system");
}

/* ---- stops ---- */

static void test_stop_mid_model_call_keeps_partial(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_STALL, .pieces = {"Partial ", "answer"}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_model(f);
    assert_int_equal(efix_stop(f, sid), 0);
    /* The stop answers once the run has stopped. */
    assert_string_equal(str_of(f->run, "status"), "stopped");
    assert_string_equal(str_of(f->run, "stop_reason"), "user_stopped");
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token token "
                       "status:stopping message:assistant:partial run_stopped:user_stopped");
    json_t *stopped = check_end(f, sid, rid);
    assert_string_equal(str_of(stopped, "detail"), "stopped on request after 1 step");
    json_t *partial = efix_event(f, rid, "message", 1);
    assert_string_equal(str_of(partial, "content"), "Partial answer");
    assert_string_equal(str_of(partial, "message_id"),
                        str_of(efix_event(f, rid, "token", 0), "message_id"));
    assert_true(scripted_llm_request(f->model, 0)->aborted);

    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ms[1].content, "Partial answer");
    assert_true(ms[1].partial);
    store_message_list_free(ms, n);
}

static bool third_status(efix *f, const void *run_id)
{
    return efix_event(f, run_id, "status", 2) != NULL;
}

/* A stop while the retry waits: the discarded text stays discarded and no
 * call follows. */
static void test_stop_during_retry_wait(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_RETRYABLE,
         .pieces = {"Lost"},
         .error = "HTTP 429",
         .retry_after_ms = 60000},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_loop_until(f, third_status, rid, 5000, "the retrying status");
    json_t *retry = efix_event(f, rid, "status", 2);
    assert_string_equal(str_of(retry, "status"), "retrying");
    assert_string_equal(str_of(retry, "detail"), "attempt 2 of 4, waiting 60.0 s");
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token "
                       "error:llm_retryable status:retrying status:stopping "
                       "run_stopped:user_stopped");
    check_end(f, sid, rid);
    assert_int_equal(scripted_llm_calls(f->model), 1);
}

static void test_stop_during_tool(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"call_h", "hold", "{}"}, {"call_c", "calc", "{\"expression\":\"1+1\"}"}}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "wait", NULL, rid), 0);
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_progress(f->held, 1, 4, "a quarter"), 0);
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "tool_started:hold status:tool_running tool_progress status:stopping "
                       "tool_finished:hold:cancelled run_stopped:user_stopped");
    json_t *progress = efix_event(f, rid, "tool_progress", 0);
    assert_string_equal(str_of(progress, "execution_id"),
                        str_of(efix_event(f, rid, "tool_started", 0), "execution_id"));
    assert_int_equal(int_of(progress, "progress"), 1);
    assert_int_equal(int_of(progress, "total"), 4);
    assert_string_equal(str_of(progress, "message"), "a quarter");
    json_t *stopped = check_end(f, sid, rid);
    assert_int_equal(int_of(usage_of(stopped), "tool_calls"), 1);
    assert_int_equal(scripted_tool_cancelled(f->held), 1);
    assert_int_equal(scripted_tool_in_flight(f->held), 0);
    json_t *fin = efix_event(f, rid, "tool_finished", 0);
    assert_string_equal(str_of(fin, "server"), "test");
    assert_string_equal(str_of(fin, "error"), "cancelled: the run stopped");

    store_tool_exec *xs;
    size_t nx;
    assert_int_equal(store_tool_exec_list(f->db, sid, rid, &xs, &nx), 0);
    assert_int_equal(nx, 1);
    assert_string_equal(xs[0].status, "cancelled");
    assert_string_equal(xs[0].tool, "hold");
    store_tool_exec_list_free(xs, nx);
}

/* A continue after a stop during a tool: the new run carries on from the
 * stored history, where the calls that never finished get a result saying
 * so, and records no user message. */
static void test_continue_after_stop(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"call_h", "hold", "{}"}, {"call_c", "calc", "{\"expression\":\"1+1\"}"}}},
        {.pieces = {"Resumed."}},
    };
    char sid[ID_MAX], rid[ID_MAX], rid2[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "wait", NULL, rid), 0);
    efix_wait_tool(f);
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid);
    check_end(f, sid, rid);

    assert_int_equal(efix_start(f, sid, NULL, NULL, rid2), 0);
    assert_string_not_equal(rid, rid2);
    assert_string_equal(str_of(f->run, "continues"), rid);
    efix_wait_stopped(f, rid2);

    efix_assert_events(f, rid2,
                       "run_started status:thinking status:responding token message:assistant "
                       "budget run_stopped:completed");
    check_end(f, sid, rid2);
    assert_string_equal(str_of(efix_event(f, rid2, "run_started", 0), "continues"), rid);

    /* The continue's context: the stored history, both calls answered. */
    static const char missing[] = "not executed: the run stopped before this call";
    assert_int_equal(sent_count(f, 1), 6);
    assert_sent(f, 1, 2, "user", "wait");
    assert_int_equal(json_array_size(json_object_get(sent(f, 1, 3), "tool_calls")), 2);
    assert_sent(f, 1, 4, "tool", missing);
    assert_string_equal(str_of(sent(f, 1, 4), "tool_call_id"), "call_h");
    assert_sent(f, 1, 5, "tool", missing);
    assert_string_equal(str_of(sent(f, 1, 5), "tool_call_id"), "call_c");
    assert_true(scripted_llm_request(f->model, 1)->tools);

    /* The continue stored no user message; the repairs are not stored. */
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 3);
    assert_string_equal(ms[0].role, "user");
    assert_string_equal(ms[1].role, "assistant");
    assert_string_equal(ms[2].content, "Resumed.");
    assert_string_equal(ms[2].run_id, rid2);
    store_message_list_free(ms, n);
}

/* ---- the context ---- */

/* Older history is dropped, oldest first, to fit llm.context_tokens; the
 * run's own user message is always sent. */
static void test_context_drops_old_history(void **state)
{
    static char longer[4001];
    memset(longer, 'x', sizeof longer - 1);
    static const scripted_step script[] = {{.pieces = {longer}}, {.pieces = {"Short."}}};
    engine_options opt = efix_default_options();
    opt.context_tokens = 600;
    char sid[ID_MAX], r1[ID_MAX], r2[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, &opt, sid);
    assert_int_equal(efix_start(f, sid, "first", NULL, r1), 0);
    efix_wait_stopped(f, r1);
    check_end(f, sid, r1);
    assert_int_equal(efix_start(f, sid, "second", NULL, r2), 0);
    efix_wait_stopped(f, r2);
    check_end(f, sid, r2);

    /* The first call fits; the second would not with the 1000-token
     * answer, so the first exchange is dropped whole. */
    assert_int_equal(sent_count(f, 0), 3);
    assert_sent(f, 0, 2, "user", "first");
    assert_int_equal(sent_count(f, 1), 3);
    assert_sent(f, 1, 0, "system", "You are the test model.");
    assert_sent(f, 1, 2, "user", "second");
    /* Both are still stored. */
    store_message *ms;
    size_t n;
    efix_messages(f, sid, &ms, &n);
    assert_int_equal(n, 4);
    assert_int_equal(strlen(ms[1].content), 4000);
    store_message_list_free(ms, n);
}

typedef struct late_stop {
    efix *f;
    const char *sid, *rid;
    int asked;             /* stops asked */
    size_t stopped_at_ask; /* run_stopped events committed when the stop was asked */
    int answers, status;
    char reason[32];
} late_stop;

static void late_stop_answer(void *ud, int status, const json_t *run)
{
    late_stop *l = ud;
    l->answers++;
    l->status = status;
    snprintf(l->reason, sizeof l->reason, "%s", str_of(run, "stop_reason"));
}

/* Inside the model's callback: the run has just decided its end. */
static void stop_after_done(void *ud)
{
    late_stop *l = ud;
    l->asked++;
    l->stopped_at_ask = efix_count(l->f, l->rid, "run_stopped");
    engine_stop_run(l->f->e, l->sid, late_stop_answer, l);
}

/* A stop that arrives after the run decided its end, before that end is
 * committed, waits for it and answers with it: still one run_stopped. */
static void test_stop_while_finishing(void **state)
{
    static const scripted_step script[] = {{.pieces = {"Done."}}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    late_stop l = {.f = f, .sid = sid, .rid = rid};
    scripted_llm_after_done(f->model, stop_after_done, &l);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(l.asked, 1);
    assert_int_equal(l.stopped_at_ask, 0);
    assert_int_equal(l.answers, 1);
    assert_int_equal(l.status, 0);
    assert_string_equal(l.reason, "completed");
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
    check_end(f, sid, rid);
}

/* ---- mode changes and the deadline ---- */

static void test_mode_change_mid_run(void **state)
{
    static const scripted_step script[] = {
        {.hold = true, .calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}}},
        {.pieces = {"Wrapped."}},
    };
    mode quick = *mode_preset("quick");
    quick.limits.seconds = MODE_UNLIMITED;
    quick.limits.steps = 2;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    mode all[MODE_PRESET_COUNT];
    memcpy(all, mode_presets(), sizeof all);
    all[0] = quick;
    all[1] = test_mode();
    assert_int_equal(engine_load_modes(f->e, all, MODE_PRESET_COUNT), 0);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_model(f);
    engine_session_mode_changed(f->e, sid, "quick");
    scripted_llm_release(f->model);
    efix_wait_stopped(f, rid);

    efix_assert_events(f, rid,
                       "message:user run_started status:thinking budget message:assistant+calls "
                       "budget tool_started:calc status:tool_running tool_finished:calc:ok "
                       "message:tool budget status:thinking status:responding token "
                       "message:assistant budget run_stopped:max_steps");
    json_t *stopped = check_end(f, sid, rid);
    assert_true(json_is_true(json_object_get(stopped, "wrapped_up")));
    assert_string_equal(str_of(stopped, "detail"), "used 2 of 2 steps");
    /* The budget event of the change carries the new limits. */
    json_t *limits = json_object_get(efix_event(f, rid, "budget", 0), "limits");
    assert_int_equal(int_of(limits, "steps"), 2);
    assert_int_equal(int_of(limits, "tool_calls"), 3);
    assert_string_equal(str_of(efix_event(f, rid, "run_started", 0), "mode"), "standard");
    /* Step 2 read the new budget and was the wrap-up step. */
    assert_sent(f, 1, 1, "system", "Budget: step 2 of 2, 2 tool calls left.");
    assert_false(scripted_llm_request(f->model, 1)->tools);
    /* The run row took the new mode and limits. */
    store_run row;
    efix_run_row(f, rid, &row);
    assert_string_equal(row.mode, "quick");
    assert_int_equal(int_of(row.limits, "steps"), 2);
    store_run_cleanup(&row);
}

static void test_deadline_aborts_a_stalled_call(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_STALL, .pieces = {"Thinking"}},
    };
    mode m = test_mode();
    m.limits.seconds = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 1000 && took < 2000);

    /* The 80 % warning comes as a budget event on its own timer, before
     * the partial message. */
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking status:responding token budget "
                       "message:assistant:partial run_stopped:max_seconds");
    json_t *stopped = check_end(f, sid, rid);
    assert_false(json_is_true(json_object_get(stopped, "wrapped_up")));
    json_t *warnings = json_object_get(efix_event(f, rid, "budget", 0), "warnings");
    assert_int_equal(json_array_size(warnings), 1);
    assert_string_equal(json_string_value(json_array_get(warnings, 0)), "seconds");
    assert_string_equal(str_of(efix_event(f, rid, "message", 1), "content"), "Thinking");
    /* With less than 5 s left the only step is a wrap-up step. */
    assert_false(scripted_llm_request(f->model, 0)->tools);
    assert_true(scripted_llm_request(f->model, 0)->aborted);
}

/* An error event names the failed attempt's message only when that attempt
 * streamed something: its message_id is null when there is no discarded
 * text, on the retryable path and the max_retries path alike (an id no
 * other event carried would name nothing). */
static void test_error_names_no_message_when_nothing_streamed(void **state)
{
    static const scripted_step script[] = {
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 503"},
        {.end = SCRIPTED_RETRYABLE, .error = "HTTP 503"},
    };
    mode m = test_mode();
    m.limits.retries = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "token"), 0);
    assert_true(json_is_null(json_object_get(efix_event(f, rid, "error", 0), "message_id")));
    assert_true(json_is_null(json_object_get(efix_event(f, rid, "error", 1), "message_id")));
}

static void sleep_first(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * The seconds timers are armed with delays computed from the run's own
 * clock read, but libevent adds them to the time it cached when the loop
 * iteration began. When other callbacks of that iteration ran for a while
 * before the run started (here 150 ms; on a busy server any burst of
 * work), both timers fire early by that much; each must then wait for the
 * rest of its time: the 80 % warning is still sent, and the deadline stops
 * the run only when its seconds are used up.
 */
static void test_seconds_timers_keep_time_after_a_slow_callback(void **state)
{
    static const scripted_step script[] = {{.end = SCRIPTED_STALL}};
    mode m = test_mode();
    m.limits.seconds = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    /* Added after the pool's own event on the same descriptor, it runs
     * first in the iteration whose pool callback starts the run. */
    struct event *slow = event_new(f->base, dbpool_fd(f->pool), EV_READ, sleep_first, NULL);
    event_add(slow, NULL);
    assert_int_equal(efix_start(f, sid, "hi", NULL, rid), 0);
    event_free(slow);
    efix_wait_stopped(f, rid);
    json_t *stopped = efix_event(f, rid, "run_stopped", 0);
    assert_string_equal(str_of(stopped, "reason"), "max_seconds");
    double used = json_number_value(json_object_get(usage_of(stopped), "seconds"));
    assert_true(used >= 1.0 && used < 2.0);
    /* The warning came once, at 80 % by the run's clock, not before. */
    assert_int_equal(efix_count(f, rid, "budget"), 1);
    json_t *warning = efix_event(f, rid, "budget", 0);
    double warned_at = json_number_value(json_object_get(usage_of(warning), "seconds"));
    assert_true(warned_at >= 0.8 && warned_at < 1.0);
    json_t *warnings = json_object_get(warning, "warnings");
    assert_int_equal(json_array_size(warnings), 1);
    assert_string_equal(json_string_value(json_array_get(warnings, 0)), "seconds");
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_step_completes),
        T(test_tool_call_then_answer),
        T(test_tool_budget_skips_then_wraps_up),
        T(test_retryable_error_then_success),
        T(test_retries_run_out),
        T(test_retries_run_out_detail_in_plural),
        T(test_fatal_error_stops_with_llm_error),
        T(test_fatal_error_after_text),
        T(test_retry_backs_off),
        T(test_invalid_tool_arguments),
        T(test_max_steps_wraps_up),
        T(test_token_budget_wraps_up),
        T(test_token_budget_used_up_stops),
        T(test_cost_budget_wraps_up),
        T(test_loop_guard_nudges_then_stops),
        T(test_failure_guard_nudges_then_stops),
        T(test_empty_turns_nudge_then_stop),
        T(test_stop_mid_model_call_keeps_partial),
        T(test_stop_during_retry_wait),
        T(test_stop_during_tool),
        T(test_continue_after_stop),
        T(test_stop_while_finishing),
        T(test_context_drops_old_history),
        T(test_mode_change_mid_run),
        T(test_deadline_aborts_a_stalled_call),
        T(test_error_names_no_message_when_nothing_streamed),
        T(test_seconds_timers_keep_time_after_a_slow_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
