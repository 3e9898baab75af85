/*
 * Approvals in the run state machine (docs/runs.md, Approvals), on the
 * engine fixture's real loop and store with the scripted model and the
 * held tool `hold` (not read-only) next to the built-in calc (read-only):
 * who is asked, what each decision records and tells the model, remembered
 * decisions, rules, the time-out, a stop while waiting, and the seconds
 * budget that stands still while a person decides.
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

#define DENIED_NOT_NOW                                                                             \
    "The user denied this call: not now. Do not retry it; answer without it or ask the user."

static mode test_mode(approval_policy policy)
{
    mode m = *mode_preset("standard");
    m.limits.seconds = MODE_UNLIMITED;
    m.approval = policy;
    return m;
}

/* The fixture with the default policy (risky) unless m says otherwise and
 * no approval rule unless opt has some. */
static efix *begin(void **state, const scripted_step *steps, size_t n, const mode *m,
                   const engine_options *opt, char sid[ID_MAX])
{
    engine_options o = efix_default_options();
    o.approval_rules = NULL;
    o.approval_nrules = 0;
    efix *f = efix_new(steps, n, opt ? opt : &o);
    *state = f;
    mode dflt = test_mode(APPROVAL_RISKY);
    efix_set_mode(f, m ? m : &dflt);
    efix_session(f, m ? m->name : dflt.name, sid);
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

/* The number of status events of the run that say it waits for approval. */
static bool has_waiting_status(efix *f, const void *arg)
{
    const want_count *w = arg;
    size_t waiting = 0;
    for (size_t i = 0; i < efix_count(f, w->run_id, "status"); i++) {
        const json_t *st = efix_event(f, w->run_id, "status", i);
        const char *s = json_string_value(json_object_get(st, "status"));
        if (s && strcmp(s, "waiting_for_approval") == 0) waiting++;
    }
    return waiting >= w->n;
}

/* Runs the loop until the run has asked n approvals, and the status that
 * follows each request has been published too. */
static void wait_asked(efix *f, const char *rid, size_t n)
{
    want_count w = {rid, "approval_requested", n};
    efix_loop_until(f, has_count, &w, 5000, "an approval request");
    efix_loop_until(f, has_waiting_status, &w, 5000, "the waiting status");
}

typedef struct decided {
    bool answered;
    int status;
    json_t *approval;
} decided;

static void on_decided(void *ud, int status, const json_t *approval)
{
    decided *d = ud;
    d->answered = true;
    d->status = status;
    d->approval = approval ? json_deep_copy(approval) : NULL;
}

static bool is_decided(efix *f, const void *arg)
{
    (void)f;
    return ((const decided *)arg)->answered;
}

/* Decides the run's n-th approval (0-based) and waits for the answer.
 * Returns the answered approval object (a new reference) or NULL. */
static json_t *decide(efix *f, const char *sid, const char *rid, size_t n, bool approve,
                      const char *reason, approval_remember remember, int *status)
{
    json_t *req = efix_event(f, rid, "approval_requested", n);
    assert_non_null(req);
    engine_decision d = {.approval_id = str_of(req, "approval_id"),
                         .approve = approve,
                         .reason = reason,
                         .remember = remember,
                         .decided_by = "alice"};
    decided got = {0};
    engine_decide_approval(f->e, sid, &d, on_decided, &got);
    efix_loop_until(f, is_decided, &got, 5000, "the answer to a decision");
    if (status) *status = got.status;
    return got.approval;
}

static store_approval approval_row(efix *f, const char *sid, const char *id)
{
    store_approval a = {0};
    assert_int_equal(store_approval_get(f->db, sid, id, &a), 0);
    return a;
}

/* The tool message the model was sent last in call `call`. */
static const char *last_tool_message(efix *f, size_t call)
{
    const scripted_request *rq = scripted_llm_request(f->model, call);
    assert_non_null(rq);
    const char *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(rq->messages, i, m)
    {
        if (strcmp(str_of(m, "role"), "tool") == 0) found = str_of(m, "content");
    }
    return found;
}

/* The default policy asks before a tool that is not read-only; approving
 * runs the call as usual, and the approval, its events and its row agree. */
static void test_approve_runs_the_call(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"call_h", "hold", "{\"path\":\"/tmp/x\"}"}}},
        {.pieces = {"Done."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    json_t *req = efix_event(f, rid, "approval_requested", 0);
    assert_string_equal(str_of(req, "server"), "test");
    assert_string_equal(str_of(req, "tool"), "hold");
    assert_string_equal(str_of(req, "reason"), "the tool is not marked read-only");
    assert_true(json_is_null(json_object_get(req, "annotations")));
    assert_string_equal(str_of(json_object_get(req, "arguments"), "path"), "/tmp/x");
    json_t *st = efix_event(f, rid, "status", 1);
    assert_string_equal(str_of(st, "status"), "waiting_for_approval");
    assert_string_equal(str_of(st, "detail"), "hold");
    assert_int_equal(scripted_tool_started(f->held), 0);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    const char *aid = str_of(req, "approval_id");
    store_approval row = approval_row(f, sid, aid);
    assert_string_equal(row.status, "pending");
    assert_string_equal(row.execution_id, str_of(req, "execution_id"));
    assert_int_equal(row.expires_ms - row.requested_ms, 900000);
    store_approval_cleanup(&row);

    int status = -1;
    json_t *a = decide(f, sid, rid, 0, true, NULL, APPROVAL_ONCE, &status);
    assert_int_equal(status, 0);
    assert_string_equal(str_of(a, "status"), "approved");
    assert_string_equal(str_of(a, "decided_by"), "alice");
    assert_string_equal(str_of(a, "remember"), "once");
    assert_true(json_is_null(json_object_get(a, "decision_reason")));
    assert_true(json_is_string(json_object_get(a, "decided_at")));
    json_decref(a);
    /* A second decision finds nothing waiting for it. */
    assert_null(decide(f, sid, rid, 0, false, NULL, APPROVAL_ONCE, &status));
    assert_int_equal(status, ENGINE_ERR_NOT_FOUND);

    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "deleted"), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "approval_requested:hold status:waiting_for_approval "
                       "approval_decided:approved:alice tool_started:hold status:tool_running "
                       "tool_finished:hold:ok message:tool budget status:thinking "
                       "status:responding token message:assistant budget run_stopped:completed");
    assert_string_equal(str_of(efix_event(f, rid, "tool_started", 0), "execution_id"),
                        str_of(req, "execution_id"));
    json_t *dec = efix_event(f, rid, "approval_decided", 0);
    assert_string_equal(str_of(dec, "approval_id"), aid);
    assert_true(json_is_null(json_object_get(dec, "reason")));
    assert_string_equal(str_of(dec, "remember"), "once");
    row = approval_row(f, sid, aid);
    assert_string_equal(row.status, "approved");
    assert_string_equal(row.decided_by, "alice");
    store_approval_cleanup(&row);
    efix_assert_stored_events(f, sid);
}

/* A denial with a reason: the call never runs, is recorded as denied with
 * "denied by WHO: REASON", the model reads why, and nothing counts it as
 * a tool call or a failure. */
static void test_deny_with_reason(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"call_h", "hold", "{}"}}},
        {.pieces = {"Fine, I will not."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    int status = -1;
    json_t *a = decide(f, sid, rid, 0, false, "not now", APPROVAL_ONCE, &status);
    assert_int_equal(status, 0);
    assert_string_equal(str_of(a, "status"), "denied");
    assert_string_equal(str_of(a, "decision_reason"), "not now");
    json_decref(a);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "approval_requested:hold status:waiting_for_approval "
                       "approval_decided:denied:alice tool_started:hold tool_finished:hold:denied "
                       "message:tool budget status:thinking status:responding token "
                       "message:assistant budget run_stopped:completed");
    json_t *fin = efix_event(f, rid, "tool_finished", 0);
    assert_string_equal(str_of(fin, "error"), "denied by alice: not now");
    assert_string_equal(str_of(fin, "result"), DENIED_NOT_NOW);
    assert_string_equal(last_tool_message(f, 1), DENIED_NOT_NOW);
    assert_int_equal(scripted_tool_started(f->held), 0);
    json_t *usage = json_object_get(efix_event(f, rid, "run_stopped", 0), "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "tool_calls")), 0);
    assert_int_equal(efix_count(f, rid, "guardrail"), 0);
    store_tool_exec *xs;
    size_t nx;
    assert_int_equal(store_tool_exec_list(f->db, sid, rid, &xs, &nx), 0);
    assert_int_equal(nx, 1);
    assert_string_equal(xs[0].status, "denied");
    assert_string_equal(xs[0].error, "denied by alice: not now");
    store_tool_exec_list_free(xs, nx);
}

/* Three denials in a row are not three failures: no repeated_failures. */
static void test_denials_are_not_failures(void **state)
{
    static const approval_rule deny[] = {{"hold", APPROVAL_DENY}};
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{\"n\":1}"}, {"b", "hold", "{\"n\":2}"}, {"c", "hold", "{}"}}},
        {.calls = {{"d", "hold", "{\"n\":3}"}}},
        {.pieces = {"Giving up on it."}},
    };
    engine_options o = efix_default_options();
    o.approval_rules = deny;
    o.approval_nrules = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, &o, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_string_equal(str_of(efix_event(f, rid, "run_stopped", 0), "reason"), "completed");
    assert_int_equal(efix_count(f, rid, "guardrail"), 0);
    assert_int_equal(efix_count(f, rid, "approval_requested"), 0);
    assert_int_equal(efix_count(f, rid, "approval_decided"), 0);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 3), "error"),
                        "denied by rule hold");
    assert_string_equal(last_tool_message(f, 2),
                        "The user denied this call: denied by rule hold. Do not retry it; "
                        "answer without it or ask the user.");
}

/* A rule that allows runs the call without asking; the first matching
 * rule decides. */
static void test_rule_allows(void **state)
{
    static const approval_rule rules[] = {{"ho?d", APPROVAL_ALLOW}, {"*", APPROVAL_DENY}};
    static const scripted_step script[] = {
        {.calls = {{"call_h", "hold", "{}"}}},
        {.pieces = {"Done."}},
    };
    engine_options o = efix_default_options();
    o.approval_rules = rules;
    o.approval_nrules = 2;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, &o, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "ok"), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "approval_requested"), 0);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 0), "status"), "ok");
}

/* A rule that asks is named as the reason, even for a read-only tool. */
static void test_rule_asks_read_only(void **state)
{
    static const approval_rule rules[] = {{"calc", APPROVAL_ASK}};
    static const scripted_step script[] = {
        {.calls = {{"call_c", "calc", "{\"expression\":\"1+1\"}"}}},
        {.pieces = {"2"}},
    };
    engine_options o = efix_default_options();
    o.approval_rules = rules;
    o.approval_nrules = 1;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, &o, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    assert_string_equal(str_of(efix_event(f, rid, "approval_requested", 0), "reason"), "rule calc");
    json_decref(decide(f, sid, rid, 0, true, NULL, APPROVAL_ONCE, NULL));
    efix_wait_stopped(f, rid);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 0), "result"), "2");
}

/* Under risky a read-only tool is never asked; under always it is, with
 * the mode named as the reason; under never not even the held tool is. */
static void test_policies(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"c1", "calc", "{\"expression\":\"1+1\"}"}}},
        {.pieces = {"2"}},
        {.calls = {{"c2", "calc", "{\"expression\":\"2+2\"}"}}},
        {.pieces = {"4"}},
        {.calls = {{"h", "hold", "{}"}}},
        {.pieces = {"held"}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "risky", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "approval_requested"), 0);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 0), "status"), "ok");

    mode always = test_mode(APPROVAL_ALWAYS);
    efix_set_mode(f, &always);
    assert_int_equal(efix_start(f, sid, "always", NULL, rid), 0);
    wait_asked(f, rid, 1);
    assert_string_equal(str_of(efix_event(f, rid, "approval_requested", 0), "reason"),
                        "mode standard asks for every call");
    json_decref(decide(f, sid, rid, 0, true, NULL, APPROVAL_ONCE, NULL));
    efix_wait_stopped(f, rid);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 0), "result"), "4");

    mode never = test_mode(APPROVAL_NEVER);
    efix_set_mode(f, &never);
    assert_int_equal(efix_start(f, sid, "never", NULL, rid), 0);
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "ok"), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "approval_requested"), 0);
}

/* remember: run approves the later calls of the same tool in this run
 * without asking: each gets a row and an approval_decided by
 * "remembered", and no approval_requested. */
static void test_remember_run(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{\"n\":1}"}, {"b", "hold", "{\"n\":2}"}}},
        {.pieces = {"Both done."}},
        {.calls = {{"c", "hold", "{\"n\":3}"}}},
        {.pieces = {"Asked again."}},
    };
    char sid[ID_MAX], rid[ID_MAX], rid2[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    json_decref(decide(f, sid, rid, 0, true, "ok for this run", APPROVAL_REMEMBER_RUN, NULL));
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "one"), 0);
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "two"), 0);
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_count(f, rid, "approval_requested"), 1);
    assert_int_equal(efix_count(f, rid, "approval_decided"), 2);
    json_t *second = efix_event(f, rid, "approval_decided", 1);
    assert_string_equal(str_of(second, "decided_by"), "remembered");
    assert_string_equal(str_of(second, "decision"), "approved");
    assert_string_equal(str_of(second, "remember"), "run");
    assert_string_equal(str_of(second, "reason"), "ok for this run");
    store_approval *rows;
    size_t n;
    assert_int_equal(store_approval_list(f->db, sid, NULL, &rows, &n), 0);
    assert_int_equal(n, 2);
    /* Both may carry the same millisecond: the remembered one is found by
     * its execution. */
    const char *exe = str_of(efix_event(f, rid, "tool_started", 1), "execution_id");
    size_t k = strcmp(rows[0].execution_id, exe) == 0 ? 0 : 1;
    assert_string_equal(rows[k].execution_id, exe);
    assert_string_equal(rows[k].status, "approved");
    assert_string_equal(rows[k].decided_by, "remembered");
    assert_string_equal(rows[1 - k].decided_by, "alice");
    store_approval_list_free(rows, n);

    /* The next run asks again. */
    assert_int_equal(efix_start(f, sid, "again", NULL, rid2), 0);
    wait_asked(f, rid2, 1);
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid2);
}

/* remember: session reaches the session's later runs too: a denial is
 * repeated without asking. */
static void test_remember_session(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{}"}}},
        {.pieces = {"Not done."}},
        {.calls = {{"b", "hold", "{}"}}},
        {.pieces = {"Still not."}},
    };
    char sid[ID_MAX], rid[ID_MAX], rid2[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    json_decref(decide(f, sid, rid, 0, false, "not now", APPROVAL_REMEMBER_SESSION, NULL));
    efix_wait_stopped(f, rid);
    assert_int_equal(efix_start(f, sid, "again", NULL, rid2), 0);
    efix_wait_stopped(f, rid2);
    efix_assert_events(f, rid2,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "approval_decided:denied:remembered tool_started:hold "
                       "tool_finished:hold:denied message:tool budget status:thinking "
                       "status:responding token message:assistant budget run_stopped:completed");
    assert_string_equal(str_of(efix_event(f, rid2, "tool_finished", 0), "error"),
                        "denied by remembered: not now");
    assert_string_equal(last_tool_message(f, 3), DENIED_NOT_NOW);
    assert_int_equal(scripted_tool_started(f->held), 0);
}

/* Nobody answers: the approval expires and the run stops with
 * approval_timeout, which offers to continue. */
static void test_timeout(void **state)
{
    static const scripted_step script[] = {{.calls = {{"a", "hold", "{}"}}}};
    engine_options o = efix_default_options();
    o.approval_rules = NULL;
    o.approval_nrules = 0;
    o.approval_timeout_ms = 200;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, &o, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "approval_requested:hold status:waiting_for_approval "
                       "approval_decided:expired:timeout run_stopped:approval_timeout");
    json_t *stopped = efix_event(f, rid, "run_stopped", 0);
    assert_string_equal(str_of(stopped, "detail"),
                        "nobody answered the approval for hold within 0 s");
    assert_string_equal(str_of(json_array_get(json_object_get(stopped, "actions"), 0), "kind"),
                        "continue");
    json_t *req = efix_event(f, rid, "approval_requested", 0);
    store_approval row = approval_row(f, sid, str_of(req, "approval_id"));
    assert_string_equal(row.status, "expired");
    assert_string_equal(row.decided_by, "timeout");
    store_approval_cleanup(&row);
    assert_int_equal(scripted_tool_started(f->held), 0);
    /* Nothing is in the tool timeline: the call never started. */
    store_tool_exec *xs;
    size_t nx;
    assert_int_equal(store_tool_exec_list(f->db, sid, rid, &xs, &nx), 0);
    assert_int_equal(nx, 0);
    store_tool_exec_list_free(xs, nx);
}

/* A stop while waiting cancels the approval and stops user_stopped. */
static void test_stop_while_waiting(void **state)
{
    static const scripted_step script[] = {{.calls = {{"a", "hold", "{}"}}}};
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    assert_int_equal(efix_stop(f, sid), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "approval_requested:hold status:waiting_for_approval status:stopping "
                       "approval_decided:cancelled:stop run_stopped:user_stopped");
    json_t *req = efix_event(f, rid, "approval_requested", 0);
    store_approval row = approval_row(f, sid, str_of(req, "approval_id"));
    assert_string_equal(row.status, "cancelled");
    assert_string_equal(row.decided_by, "stop");
    store_approval_cleanup(&row);
    int status = 0;
    assert_null(decide(f, sid, rid, 0, true, NULL, APPROVAL_ONCE, &status));
    assert_int_equal(status, ENGINE_ERR_NOT_FOUND);
}

/* Two calls of one turn are asked one at a time, in order. */
static void test_two_calls_asked_in_order(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{\"n\":1}"}, {"b", "hold", "{\"n\":2}"}}},
        {.pieces = {"Done."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    /* Let the loop run a while: the second call is not asked yet. */
    struct timeval tv = {0, 100000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(efix_count(f, rid, "approval_requested"), 1);
    json_t *first = efix_event(f, rid, "approval_requested", 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(first, "arguments"), "n")),
                     1);
    json_decref(decide(f, sid, rid, 0, false, NULL, APPROVAL_ONCE, NULL));
    wait_asked(f, rid, 2);
    json_t *second = efix_event(f, rid, "approval_requested", 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(second, "arguments"), "n")),
                     2);
    json_decref(decide(f, sid, rid, 1, true, NULL, APPROVAL_ONCE, NULL));
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "two"), 0);
    efix_wait_stopped(f, rid);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 0), "error"), "denied by alice");
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 1), "status"), "ok");
}

/* Waiting for a person leaves the seconds budget: after a wait of 2.5 s in
 * a mode of 6 s the next step is no wrap-up (it would be if the wait
 * counted, with less than 5 s left), and usage says how long it waited. */
static void test_seconds_exclude_the_wait(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{}"}}},
        {.pieces = {"Done."}},
    };
    mode m = test_mode(APPROVAL_RISKY);
    m.limits.seconds = 6;
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), &m, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    wait_asked(f, rid, 1);
    struct timeval tv = {2, 500000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    json_decref(decide(f, sid, rid, 0, true, NULL, APPROVAL_ONCE, NULL));
    efix_wait_tool(f);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "ok"), 0);
    efix_wait_stopped(f, rid);
    json_t *stopped = efix_event(f, rid, "run_stopped", 0);
    assert_string_equal(str_of(stopped, "reason"), "completed");
    assert_true(scripted_llm_request(f->model, 1)->tools);
    json_t *usage = json_object_get(stopped, "usage");
    double waited = json_real_value(json_object_get(usage, "waiting_seconds"));
    double seconds = json_real_value(json_object_get(usage, "seconds"));
    assert_true(waited >= 2.4);
    assert_true(seconds < 2.0);
}

/* Waits for the run's first approval and decides it in the store as
 * another instance does, by bob; returns its id (borrowed from the event). */
static const char *decide_in_store(efix *f, const char *sid, const char *rid, const char *status,
                                   const char *reason)
{
    wait_asked(f, rid, 1);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
    const char *aid = str_of(efix_event(f, rid, "approval_requested", 0), "approval_id");
    store_approval row = approval_row(f, sid, aid);
    free(row.status);
    row.status = strdup(status);
    row.decided_by = strdup("bob");
    row.decision_reason = reason ? strdup(reason) : NULL;
    row.decided_ms = clock_wall_ms();
    assert_int_equal(store_approval_decide(f->db, &row), 0);
    store_approval_cleanup(&row);
    return aid;
}

/* A decision stored first by another instance wins over this instance's
 * own (which then finds nothing to decide), and a control message makes
 * the owner read and apply it: the call runs once, announced once. */
static void test_decision_stored_elsewhere_wins(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{}"}}},
        {.pieces = {"Done."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    const char *aid = decide_in_store(f, sid, rid, "approved", "from B");
    /* A local denial now loses: the stored approval stands. */
    int status = 0;
    assert_null(decide(f, sid, rid, 0, false, NULL, APPROVAL_ONCE, &status));
    assert_int_equal(status, ENGINE_ERR_NOT_FOUND);
    efix_wait_tool(f);
    /* The owner's control message for the same decision changes nothing
     * more: the run no longer waits for it. */
    control_msg m = {
        .kind = CONTROL_APPROVAL_DECIDED, .instance = "ins_test", .run_id = rid, .item_id = aid};
    engine_control(f->e, &m);
    assert_int_equal(scripted_tool_finish(f->held, TOOL_OK, "done"), 0);
    efix_wait_stopped(f, rid);
    efix_assert_events(f, rid,
                       "message:user run_started status:thinking message:assistant+calls budget "
                       "approval_requested:hold status:waiting_for_approval "
                       "approval_decided:approved:bob tool_started:hold status:tool_running "
                       "tool_finished:hold:ok message:tool budget status:thinking "
                       "status:responding token message:assistant budget run_stopped:completed");
    assert_string_equal(str_of(efix_event(f, rid, "approval_decided", 0), "reason"), "from B");
    assert_int_equal(scripted_tool_started(f->held), 1);
    efix_assert_stored_events(f, sid);
}

/* The owner applies a decision another instance stored when the control
 * message says so. */
static void test_control_message_applies_a_stored_decision(void **state)
{
    static const scripted_step script[] = {
        {.calls = {{"a", "hold", "{}"}}},
        {.pieces = {"Fine."}},
    };
    char sid[ID_MAX], rid[ID_MAX];
    efix *f = begin(state, script, N(script), NULL, NULL, sid);
    assert_int_equal(efix_start(f, sid, "go", NULL, rid), 0);
    const char *aid = decide_in_store(f, sid, rid, "denied", NULL);
    control_msg m = {
        .kind = CONTROL_APPROVAL_DECIDED, .instance = "ins_test", .run_id = rid, .item_id = aid};
    engine_control(f->e, &m);
    efix_wait_stopped(f, rid);
    assert_string_equal(str_of(efix_event(f, rid, "tool_finished", 0), "error"), "denied by bob");
    assert_int_equal(scripted_tool_started(f->held), 0);
    assert_int_equal(efix_count(f, rid, "approval_decided"), 1);
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_approve_runs_the_call),
        T(test_deny_with_reason),
        T(test_denials_are_not_failures),
        T(test_rule_allows),
        T(test_rule_asks_read_only),
        T(test_policies),
        T(test_remember_run),
        T(test_remember_session),
        T(test_timeout),
        T(test_stop_while_waiting),
        T(test_two_calls_asked_in_order),
        T(test_seconds_exclude_the_wait),
        T(test_decision_stored_elsewhere_wins),
        T(test_control_message_applies_a_stored_decision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
