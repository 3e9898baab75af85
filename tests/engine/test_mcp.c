/*
 * Tests of the MCP tool source on a real event loop against the project's
 * misbehaving MCP server (tests/mcp/misbehaving-server.mjs, run with node
 * from the repository root): listing and pagination, calls in flight
 * together and answered out of order, progress, time-outs, cancellation,
 * crashes and restarts, garbage, over-long lines, start-up failures and the
 * environment a server gets.
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

#include "engine/mcp.h"
#include "engine/toolset.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define SERVER "tests/mcp/misbehaving-server.mjs"

typedef struct outcome {
    int done;
    tool_status status;
    char text[512];
    char error[512];
    int progress;
    double last_progress, last_total;
    char last_message[64];
    const tool_def *def; /* read in on_done, as the engine does */
    char tool[64];
} outcome;

static void on_done(void *ud, const tool_result *r)
{
    outcome *o = ud;
    o->done++;
    o->status = r->status;
    if (o->def) snprintf(o->tool, sizeof o->tool, "%s/%s", o->def->server, o->def->tool);
    assert_int_equal(strlen(r->text), r->text_len);
    snprintf(o->text, sizeof o->text, "%s", r->text);
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "(null)");
}

static void on_progress(void *ud, double progress, double total, const char *message)
{
    outcome *o = ud;
    o->progress++;
    o->last_progress = progress;
    o->last_total = total;
    snprintf(o->last_message, sizeof o->last_message, "%s", message ? message : "(null)");
}

static const tool_callbacks callbacks = {.on_progress = on_progress, .on_done = on_done};

typedef struct fixture {
    struct event_base *base;
    toolset *ts;
    struct event *tick;
} fixture;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->base = event_base_new();
    f->ts = toolset_new(f->base);
    /* A steady tick, so that waiting with EVLOOP_ONCE always wakes up. */
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(f->tick, &tv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    toolset_free(f->ts);
    event_free(f->tick);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Adds servers from JSON text; the start-up wait is the real one. */
static void add(fixture *f, const char *json)
{
    json_error_t je;
    json_t *servers = json_loads(json, 0, &je);
    if (!servers) fail_msg("bad test JSON: %s", je.text);
    char err[256] = "";
    int rc = mcp_add_servers(f->ts, f->base, servers, MCP_START_WAIT_MS, err, sizeof err);
    if (rc != 0) fail_msg("mcp_add_servers: %s", err);
    json_decref(servers);
}

/* One misbehaving server named name in mode, with extra config members. */
static void add_one(fixture *f, const char *name, const char *mode, const char *extra)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"%s\": {\"command\": \"node\", \"args\": [\"%s\", \"%s\"]%s%s}}",
             name, SERVER, mode, extra ? ", " : "", extra ? extra : "");
    add(f, json);
}

static void wait_for(fixture *f, const int *counter, int want, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (*counter < want && clock_mono_ms() < end) event_base_loop(f->base, EVLOOP_ONCE);
}

static void sleep_loop(fixture *f, int ms)
{
    int never = 0;
    wait_for(f, &never, 1, ms);
}

static tool_call *call(fixture *f, const char *name, const char *args, outcome *o)
{
    json_t *a = json_loads(args ? args : "{}", 0, NULL);
    assert_non_null(a);
    o->def = toolset_find(f->ts, name);
    tool_call *c = toolset_call(f->ts, name, a, 0, &callbacks, o);
    json_decref(a);
    return c;
}

/* Calls and waits for the end; returns the outcome. */
static outcome call_wait(fixture *f, const char *name, const char *args, int ms)
{
    outcome o = {0};
    call(f, name, args, &o);
    wait_for(f, &o.done, 1, ms);
    assert_int_equal(o.done, 1);
    return o;
}

/* Each server's first four members; the health's three (restarts,
 * last_error, down_since) are checked where they change. */
static char *servers_json(fixture *f)
{
    json_t *s = toolset_servers_json(f->ts);
    size_t i;
    json_t *o;
    json_array_foreach(s, i, o)
    {
        json_object_del(o, "restarts");
        json_object_del(o, "last_error");
        json_object_del(o, "down_since");
    }
    char *text = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    return text;
}

static void expect_servers(fixture *f, const char *want)
{
    char *got = servers_json(f);
    assert_string_equal(got, want);
    free(got);
}

static void test_lists_every_page_with_model_names(void **state)
{
    fixture *f = *state;
    add_one(f, "mis.behaving", "paginate", NULL);
    /* The built-in tools come first, then the server's in its order. */
    assert_int_equal(toolset_count(f->ts), 2 + 9);
    const tool_def *d = toolset_get(f->ts, 2);
    assert_string_equal(d->name, "mis_behaving__echo");
    assert_string_equal(d->server, "mis.behaving");
    assert_string_equal(d->tool, "echo");
    assert_string_equal(d->description, "Echoes the message");
    assert_string_equal(json_string_value(json_object_get(d->input_schema, "type")), "object");
    assert_string_equal(toolset_get(f->ts, 10)->name, "mis_behaving__fail");
    expect_servers(f, "[{\"name\":\"mis.behaving\",\"status\":\"ready\",\"error\":null,\"tools\":9,"
                      "\"transport\":\"stdio\"}]");
    outcome o = call_wait(f, "mis_behaving__echo", "{\"message\":\"paged\"}", 5000);
    assert_int_equal(o.status, TOOL_OK);
    assert_string_equal(o.text, "Echo: paged");
    assert_string_equal(o.error, "(null)");
}

static void test_out_of_order_answers_reach_their_calls(void **state)
{
    fixture *f = *state;
    add_one(f, "ooo", "out-of-order", NULL);
    outcome a = {0}, b = {0};
    call(f, "ooo__echo", "{\"message\":\"first\"}", &a);
    call(f, "ooo__echo", "{\"message\":\"second\"}", &b);
    wait_for(f, &a.done, 1, 5000);
    wait_for(f, &b.done, 1, 5000);
    assert_string_equal(a.text, "Echo: first");
    assert_string_equal(b.text, "Echo: second");
}

static void test_many_calls_in_flight_across_servers(void **state)
{
    fixture *f = *state;
    add(f, "{\"one\": {\"command\": \"node\", \"args\": [\"" SERVER "\"]},"
           " \"two\": {\"command\": \"node\", \"args\": [\"" SERVER "\", \"garbage-lines\"]}}");
    enum { N = 12 };
    outcome o[N];
    memset(o, 0, sizeof o);
    for (int i = 0; i < N; i++)
        call(f, i % 2 ? "two__slow_progress" : "one__slow_progress", "{\"steps\":3,\"ms\":50}",
             &o[i]);
    int64_t end = clock_mono_ms() + 10000;
    for (int i = 0; i < N; i++) {
        while (o[i].done < 1 && clock_mono_ms() < end) event_base_loop(f->base, EVLOOP_ONCE);
        assert_int_equal(o[i].done, 1);
        assert_int_equal(o[i].status, TOOL_OK);
        assert_string_equal(o[i].text, "done");
        assert_int_equal(o[i].progress, 3);
        assert_true(o[i].last_progress == 3 && o[i].last_total == 3);
        assert_string_equal(o[i].last_message, "step 3 of 3");
    }
}

static void test_progress_without_total_or_message(void **state)
{
    fixture *f = *state;
    add_one(f, "p", "slow-progress", NULL);
    outcome o = call_wait(f, "p__echo", "{\"message\":\"x\"}", 5000);
    assert_int_equal(o.progress, 4);
    assert_string_equal(o.last_message, "step 4");
    assert_string_equal(o.text, "Echo: x");
}

static void test_crash_mid_call_then_restart(void **state)
{
    fixture *f = *state;
    add_one(f, "c", "normal", NULL);
    outcome p1 = call_wait(f, "c__pid", NULL, 5000);
    outcome o = call_wait(f, "c__crash", NULL, 5000);
    assert_int_equal(o.status, TOOL_ERROR);
    assert_string_equal(o.text, "the MCP server 'c' exited (status 1) during the call");
    assert_string_equal(o.error, o.text);
    expect_servers(f, "[{\"name\":\"c\",\"status\":\"restarting\",\"error\":null,\"tools\":9,"
                      "\"transport\":\"stdio\"}]");
    /* The tools stay offered; the next call starts a new process. */
    outcome p2 = call_wait(f, "c__pid", NULL, 10000);
    assert_int_equal(p2.status, TOOL_OK);
    /* The restart listed the tools anew while this call waited; the
     * definition it was made with stayed valid until it ended. */
    assert_string_equal(p2.tool, "c/pid");
    assert_string_not_equal(p1.text, p2.text);
    expect_servers(f, "[{\"name\":\"c\",\"status\":\"ready\",\"error\":null,\"tools\":9,"
                      "\"transport\":\"stdio\"}]");
    /* The health counts the restart and keeps how the server failed. */
    json_t *s = toolset_servers_json(f->ts);
    json_t *c = json_array_get(s, 0);
    assert_int_equal(json_integer_value(json_object_get(c, "restarts")), 1);
    assert_string_equal(json_string_value(json_object_get(c, "last_error")), "exited (status 1)");
    assert_true(json_is_null(json_object_get(c, "down_since")));
    json_decref(s);
}

static void test_crash_mode_fails_every_call_with_backoff(void **state)
{
    fixture *f = *state;
    add_one(f, "cm", "crash-mid-call", NULL);
    outcome o1 = call_wait(f, "cm__echo", "{\"message\":\"a\"}", 5000);
    assert_string_equal(o1.error, "the MCP server 'cm' exited (status 1) during the call");
    int64_t t0 = clock_mono_ms();
    outcome o2 = call_wait(f, "cm__echo", "{\"message\":\"a\"}", 10000);
    assert_string_equal(o2.error, "the MCP server 'cm' exited (status 1) during the call");
    /* The restart waited for the backoff (0.5 s after the first failure). */
    assert_true(clock_mono_ms() - t0 >= 450);
}

static void test_timeout_then_hung_server_is_replaced(void **state)
{
    fixture *f = *state;
    add_one(f, "h", "normal", "\"timeout_seconds\": 1");
    outcome p1 = call_wait(f, "h__pid", NULL, 5000);
    int64_t t0 = clock_mono_ms();
    outcome o = call_wait(f, "h__freeze", NULL, 5000);
    int64_t took = clock_mono_ms() - t0;
    assert_int_equal(o.status, TOOL_TIMEOUT);
    assert_string_equal(o.text, "timed out after 1 s");
    assert_true(took >= 950 && took < 2000);
    /* The ping that follows goes unanswered too: the server is stopped. */
    sleep_loop(f, 1300);
    expect_servers(f, "[{\"name\":\"h\",\"status\":\"restarting\",\"error\":null,\"tools\":9,"
                      "\"transport\":\"stdio\"}]");
    outcome p2 = call_wait(f, "h__pid", NULL, 5000);
    assert_int_equal(p2.status, TOOL_OK);
    assert_string_not_equal(p1.text, p2.text);
}

static void test_timeout_of_a_live_server_keeps_it(void **state)
{
    fixture *f = *state;
    add_one(f, "n", "never-answer", "\"timeout_seconds\": 0.5");
    outcome o = call_wait(f, "n__echo", "{\"message\":\"x\"}", 3000);
    assert_int_equal(o.status, TOOL_TIMEOUT);
    assert_string_equal(o.error, "timed out after 0.5 s");
    sleep_loop(f, 700);
    /* It still answers pings, so it is not restarted. */
    expect_servers(f, "[{\"name\":\"n\",\"status\":\"ready\",\"error\":null,\"tools\":9,"
                      "\"transport\":\"stdio\"}]");
}

static void test_cancel_runs_no_callback(void **state)
{
    fixture *f = *state;
    add_one(f, "k", "normal", NULL);
    outcome o = {0};
    tool_call *c = call(f, "k__slow_progress", "{\"steps\":3,\"ms\":100}", &o);
    assert_non_null(c);
    wait_for(f, &o.progress, 1, 5000);
    tool_call_cancel(c);
    sleep_loop(f, 500);
    assert_int_equal(o.done, 0);
    assert_int_equal(o.progress, 1);
    outcome e = call_wait(f, "k__echo", "{\"message\":\"after\"}", 5000);
    assert_string_equal(e.text, "Echo: after");
}

static void test_jsonrpc_error_is_a_tool_error(void **state)
{
    fixture *f = *state;
    add_one(f, "e", "normal", NULL);
    outcome o = call_wait(f, "e__fail", NULL, 5000);
    assert_int_equal(o.status, TOOL_ERROR);
    assert_string_equal(o.error, "JSON-RPC error -32602: Invalid params: nothing is valid here");
}

static void test_huge_line_fails_only_that_call(void **state)
{
    fixture *f = *state;
    add_one(f, "big", "huge-line", NULL);
    outcome o = call_wait(f, "big__echo", "{\"message\":\"x\"}", 10000);
    assert_int_equal(o.status, TOOL_ERROR);
    char want[200];
    snprintf(want, sizeof want,
             "the MCP server 'big' sent a message of %d bytes, more than the %u bytes allowed",
             (5 << 20) + 73, MCP_LINE_MAX);
    assert_string_equal(o.error, want);
    outcome e = call_wait(f, "big__echo", "{\"message\":\"small\"}", 5000);
    assert_string_equal(e.text, "Echo: small");
}

static void test_garbage_and_early_notifications(void **state)
{
    fixture *f = *state;
    add(f, "{\"g\": {\"command\": \"node\", \"args\": [\"" SERVER "\", \"garbage-lines\"]},"
           " \"early\": {\"command\": \"node\", \"args\": [\"" SERVER
           "\", \"notifications-before-initialize\"]},"
           " \"old\": {\"command\": \"node\", \"args\": [\"" SERVER "\", \"old-protocol\"]}}");
    expect_servers(
        f,
        "[{\"name\":\"g\",\"status\":\"ready\",\"error\":null,\"tools\":9,\"transport\":\"stdio\"},"
        "{\"name\":\"early\",\"status\":\"ready\",\"error\":null,\"tools\":9,\"transport\":"
        "\"stdio\"},"
        "{\"name\":\"old\",\"status\":\"ready\",\"error\":null,\"tools\":9,\"transport\":\"stdio\"}"
        "]");
    assert_string_equal(call_wait(f, "g__echo", "{\"message\":\"1\"}", 5000).text, "Echo: 1");
    assert_string_equal(call_wait(f, "early__echo", "{\"message\":\"2\"}", 5000).text, "Echo: 2");
    assert_string_equal(call_wait(f, "old__echo", "{\"message\":\"3\"}", 5000).text, "Echo: 3");
}

static void test_start_failures_are_reported_others_work(void **state)
{
    fixture *f = *state;
    add(f, "{\"gone\": {\"command\": \"no-such-command-for-chatplane\"},"
           " \"exits\": {\"command\": \"node\", \"args\": [\"" SERVER "\", \"exit-at-start\"]},"
           " \"refuses\": {\"command\": \"node\", \"args\": [\"" SERVER "\", \"fail-initialize\"]},"
           " \"future\": {\"command\": \"node\", \"args\": [\"" SERVER "\", \"bad-protocol\"]},"
           " \"ok\": {\"command\": \"node\", \"args\": [\"" SERVER "\"]}}");
    expect_servers(
        f,
        "[{\"name\":\"gone\",\"status\":\"failed\",\"error\":\"command "
        "'no-such-command-for-chatplane' not found in PATH\",\"tools\":0,\"transport\":\"stdio\"},"
        "{\"name\":\"exits\",\"status\":\"failed\",\"error\":\"exited (status 3) during "
        "start-up\",\"tools\":0,\"transport\":\"stdio\"},"
        "{\"name\":\"refuses\",\"status\":\"failed\",\"error\":\"initialize failed: JSON-RPC "
        "error -32603: initialization exploded\",\"tools\":0,\"transport\":\"stdio\"},"
        "{\"name\":\"future\",\"status\":\"failed\",\"error\":\"it answered with protocol "
        "version '1999-01-01', which chatplane does not "
        "speak\",\"tools\":0,\"transport\":\"stdio\"},"
        "{\"name\":\"ok\",\"status\":\"ready\",\"error\":null,\"tools\":9,\"transport\":\"stdio\"}"
        "]");
    assert_int_equal(toolset_count(f->ts), 2 + 9);
    assert_string_equal(call_wait(f, "ok__echo", "{\"message\":\"fine\"}", 5000).text,
                        "Echo: fine");
}

static void test_list_changed_relists(void **state)
{
    fixture *f = *state;
    add_one(f, "lc", "list-changed", NULL);
    assert_null(toolset_find(f->ts, "lc__extra"));
    outcome o = {0};
    call(f, "lc__echo", "{\"message\":\"x\"}", &o);
    wait_for(f, &o.done, 1, 5000);
    int64_t end = clock_mono_ms() + 5000;
    while (!toolset_find(f->ts, "lc__extra") && clock_mono_ms() < end)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_non_null(toolset_find(f->ts, "lc__extra"));
    assert_string_equal(call_wait(f, "lc__extra", NULL, 5000).text, "extra tool");
}

static void test_environment_is_minimal_plus_configured(void **state)
{
    fixture *f = *state;
    setenv("CHATPLANE_TEST_SECRET", "must-not-leak", 1);
    add_one(f, "env", "normal", "\"env\": {\"MARKER\": \"m1\", \"LANG\": \"C.UTF-8\"}");
    outcome o = call_wait(f, "env__env", NULL, 5000);
    json_t *env = json_loads(o.text, 0, NULL);
    assert_non_null(env);
    assert_string_equal(json_string_value(json_object_get(env, "MARKER")), "m1");
    assert_string_equal(json_string_value(json_object_get(env, "LANG")), "C.UTF-8");
    assert_string_equal(json_string_value(json_object_get(env, "PATH")), getenv("PATH"));
    assert_null(json_object_get(env, "CHATPLANE_TEST_SECRET"));
    json_decref(env);
    unsetenv("CHATPLANE_TEST_SECRET");
}

static void test_stderr_noise_is_harmless(void **state)
{
    fixture *f = *state;
    add_one(f, "noisy", "stderr-noise", NULL);
    assert_string_equal(call_wait(f, "noisy__echo", "{\"message\":\"q\"}", 5000).text, "Echo: q");
}

int main(void)
{
    log_min_level = LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lists_every_page_with_model_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_answers_reach_their_calls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_many_calls_in_flight_across_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_without_total_or_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_call_then_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mode_fails_every_call_with_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout_then_hung_server_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_of_a_live_server_keeps_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_runs_no_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonrpc_error_is_a_tool_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_line_fails_only_that_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_early_notifications, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failures_are_reported_others_work, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_changed_relists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_is_minimal_plus_configured, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stderr_noise_is_harmless, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
