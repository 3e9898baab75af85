/*
 * Unit tests for the MCP server and call logic (engine/mcp_server.c,
 * mcp_call.c, mcp_group.c) over a scripted in-memory transport: the test
 * plays the peer, delivering its messages through the transport callbacks,
 * and checks every message the client sends, byte for byte. No process, no
 * pipe; timers run on a real event loop with short time-outs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "engine/mcp_int.h"
#include "engine/tool.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "version.h"

#define MAX_SENT 32

/* ---- the scripted transport ---- */

typedef struct fake {
    mcp_transport base;
    bool open;
    int starts, closes, freed;
    const char *start_error;  /* non-NULL: start fails with it */
    char sent[MAX_SENT][512]; /* what the client sent, without the LF */
    int nsent;
    char version[32];
    int *stop_calls; /* shared by the fakes of one test */
    int stopped;
    size_t last_stop_n;
} fake;

static int fake_start(mcp_transport *t, char *err, size_t errlen)
{
    fake *f = (fake *)t;
    f->starts++;
    if (f->start_error) {
        snprintf(err, errlen, "%s", f->start_error);
        return -1;
    }
    f->open = true;
    snprintf(t->peer, sizeof t->peer, "fake=%d", f->starts);
    return 0;
}

static int fake_send(mcp_transport *t, const char *msg, size_t len)
{
    fake *f = (fake *)t;
    if (!f->open) return -1;
    assert_true(f->nsent < MAX_SENT);
    assert_true(len > 0 && msg[len - 1] == '\n');
    assert_true(len < sizeof f->sent[0]);
    memcpy(f->sent[f->nsent], msg, len - 1);
    f->sent[f->nsent][len - 1] = '\0';
    f->nsent++;
    return 0;
}

static void fake_close(mcp_transport *t)
{
    fake *f = (fake *)t;
    if (f->open) f->closes++;
    f->open = false;
    t->peer[0] = '\0';
}

static void fake_negotiated(mcp_transport *t, const char *version)
{
    snprintf(((fake *)t)->version, sizeof((fake *)t)->version, "%s", version);
}

static void fake_stop_all(mcp_transport **ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fake *f = (fake *)ts[i];
        f->open = false;
        f->stopped++;
        f->last_stop_n = n;
        (*f->stop_calls)++;
    }
}

/* The fake lives in the fixture; free only records that it happened. */
static void fake_free(mcp_transport *t)
{
    fake_close(t);
    ((fake *)t)->freed++;
}

static const mcp_transport_ops fake_ops = {
    .start = fake_start,
    .send = fake_send,
    .close = fake_close,
    .negotiated = fake_negotiated,
    .stop_all = fake_stop_all,
    .free = fake_free,
};

/* ---- the fixture ---- */

typedef struct outcome {
    int done;
    tool_status status;
    char text[512];
    char error[512];
    int progress;
    double last_progress, last_total;
    char last_message[64];
} outcome;

static void on_done(void *ud, const tool_result *r)
{
    outcome *o = ud;
    o->done++;
    o->status = r->status;
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
    mcp_group *g;
    fake peers[2];
    mcp_server *srv[2];
    int stop_calls;
    bool freed;
} fixture;

/* Adds server name over peers[i]; timeout_ms is its configured time-out. */
static void add_server(fixture *f, int i, const char *name, int64_t timeout_ms)
{
    fake *p = &f->peers[i];
    p->base.ops = &fake_ops;
    p->stop_calls = &f->stop_calls;
    mcp_server_config cfg = {0};
    cfg.name = xstrdup(name);
    cfg.command = xstrdup("unused");
    cfg.args = xcalloc(1, sizeof *cfg.args);
    cfg.env = xcalloc(1, sizeof *cfg.env);
    cfg.timeout_ms = timeout_ms;
    f->srv[i] = mcp__server_new(f->g, f->base, &cfg, &p->base);
    assert_null(cfg.name); /* taken over */
    toolset_add_source(f->ts, &f->srv[i]->base);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->base = event_base_new();
    f->ts = toolset_new(f->base);
    f->g = mcp__group_new();
    add_server(f, 0, "fx", 60000);
    *state = f;
    return 0;
}

static void free_toolset(fixture *f)
{
    if (f->freed) return;
    toolset_free(f->ts);
    f->freed = true;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free_toolset(f);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* The peer sends one message. */
static void peer(fake *p, const char *json)
{
    p->base.cb.on_frame(p->base.ud, json, strlen(json));
}

static void run_for(fixture *f, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static void wait_done(fixture *f, const outcome *o, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (!o->done && clock_mono_ms() < end) run_for(f, 5);
}

static const char *last_sent(const fake *p)
{
    assert_true(p->nsent > 0);
    return p->sent[p->nsent - 1];
}

static char *expected_initialize(int64_t id)
{
    return xasprintf(
        "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"initialize\",\"params\":{"
        "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"elicitation\":{\"form\":{}}},"
        "\"clientInfo\":{"
        "\"name\":\"chatplane\",\"version\":\"%s\"}}}",
        (long long)id, CHATPLANE_VERSION);
}

/* Plays a peer that has just been sent initialize with id first_id: it
 * agrees, and offers the tools echo and slow in one page. */
static void answer_handshake(fake *p, int64_t first_id)
{
    int before = p->nsent - 1;
    char *want = expected_initialize(first_id);
    assert_string_equal(last_sent(p), want);
    free(want);
    char msg[256];
    snprintf(msg, sizeof msg,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocolVersion\":\"2025-06-18\","
             "\"capabilities\":{},\"serverInfo\":{\"name\":\"p\",\"version\":\"1\"}}}",
             (long long)first_id);
    peer(p, msg);
    assert_int_equal(p->nsent, before + 3);
    assert_string_equal(p->sent[before + 1],
                        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    snprintf(msg, sizeof msg,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"tools/list\",\"params\":{}}",
             (long long)first_id + 1);
    assert_string_equal(p->sent[before + 2], msg);
    snprintf(msg, sizeof msg,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":[{\"name\":\"echo\","
             "\"description\":\"Echoes.\"},{\"name\":\"slow\"}]}}",
             (long long)first_id + 1);
    peer(p, msg);
}

/* Starts server i and plays its peer through the handshake. */
static void handshake(fixture *f, int i, int64_t first_id)
{
    fake *p = &f->peers[i];
    int before = p->nsent;
    mcp__server_start(f->srv[i]);
    assert_int_equal(p->nsent, before + 1);
    answer_handshake(p, first_id);
}

static json_t *info(fixture *f, int i)
{
    return f->srv[i]->base.ops->info(&f->srv[i]->base);
}

/* The four members every server had from the start; the health's three
 * (restarts, last_error, down_since) are checked by assert_health. */
static void assert_info(fixture *f, int i, const char *want)
{
    json_t *j = info(f, i);
    json_object_del(j, "restarts");
    json_object_del(j, "last_error");
    json_object_del(j, "down_since");
    char *got = json_dumps(j, JSON_COMPACT);
    assert_string_equal(got, want);
    free(got);
    json_decref(j);
}

/* restarts and last_error exactly; down_since null, or a time when down. */
static void assert_health(fixture *f, int i, int restarts, const char *last_error, bool down)
{
    json_t *j = info(f, i);
    assert_int_equal(json_integer_value(json_object_get(j, "restarts")), restarts);
    json_t *le = json_object_get(j, "last_error");
    if (last_error)
        assert_string_equal(json_string_value(le), last_error);
    else
        assert_true(json_is_null(le));
    const char *since = json_string_value(json_object_get(j, "down_since"));
    if (down) {
        assert_non_null(since);
        assert_int_equal(strlen(since), 24);
        assert_int_equal(since[23], 'Z');
    } else {
        assert_true(json_is_null(json_object_get(j, "down_since")));
    }
    json_decref(j);
}

static tool_call *call(fixture *f, const char *name, const char *args, int64_t timeout_ms,
                       outcome *o)
{
    json_t *a = json_loads(args, 0, NULL);
    assert_non_null(a);
    tool_call *c = toolset_call(f->ts, name, a, timeout_ms, &callbacks, o);
    json_decref(a);
    return c;
}

/* ---- the handshake ---- */

static void test_handshake_lists_tools_in_pages(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    mcp__server_start(f->srv[0]);
    assert_int_equal(p->starts, 1);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"starting\",\"error\":null,\"tools\":0,\"transport\":"
                "\"stdio\"}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-03-26\"}}");
    assert_string_equal(p->version, "2025-03-26");
    assert_string_equal(p->sent[2],
                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{}}");
    peer(p,
         "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"a\"},{\"name\":\"\"}],"
         "\"nextCursor\":\"c2\"}}");
    assert_int_equal(p->nsent, 4);
    assert_string_equal(p->sent[3], "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\","
                                    "\"params\":{\"cursor\":\"c2\"}}");
    assert_int_equal(f->srv[0]->ndefs, 0); /* not before the last page */
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"b.c\","
            "\"inputSchema\":{\"type\":\"object\",\"required\":[\"x\"]}}]}}");
    assert_int_equal(p->nsent, 4);
    /* The nameless tool is left out. */
    assert_int_equal(f->srv[0]->ndefs, 2);
    const tool_def *a = toolset_find(f->ts, "fx__a");
    assert_non_null(a);
    assert_string_equal(a->server, "fx");
    assert_string_equal(a->tool, "a");
    assert_string_equal(a->description, "");
    char *schema = json_dumps(a->input_schema, JSON_COMPACT);
    assert_string_equal(schema, "{\"type\":\"object\",\"properties\":{}}");
    free(schema);
    const tool_def *bc = toolset_find(f->ts, "fx__b_c");
    assert_non_null(bc);
    schema = json_dumps(bc->input_schema, JSON_COMPACT);
    assert_string_equal(schema, "{\"type\":\"object\",\"required\":[\"x\"]}");
    free(schema);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"ready\",\"error\":null,\"tools\":2,\"transport\":"
                "\"stdio\"}");
}

static void test_unknown_protocol_version_fails_start(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    mcp__server_start(f->srv[0]);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"1999-01-01\"}}");
    assert_int_equal(p->closes, 1);
    assert_int_equal(p->nsent, 1); /* no initialized, no tools/list */
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"failed\",\"error\":\"it answered with protocol "
                "version '1999-01-01', which chatplane does not "
                "speak\",\"tools\":0,\"transport\":\"stdio\"}");
}

static void test_transport_start_failure_is_the_error(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    p->start_error = "command 'nope' not found in PATH";
    mcp__server_start(f->srv[0]);
    assert_int_equal(p->starts, 1);
    assert_int_equal(p->nsent, 0);
    assert_int_equal(p->closes, 0);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"failed\",\"error\":\"command 'nope' not found in "
                "PATH\",\"tools\":0,\"transport\":\"stdio\"}");
}

static void test_initialize_error_and_silence(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    mcp__server_start(f->srv[0]);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"no\"}}");
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"failed\",\"error\":\"initialize failed: JSON-RPC "
                "error -32602: no\",\"tools\":0,\"transport\":\"stdio\"}");
    assert_int_equal(p->closes, 1);

    /* A second server whose peer never answers tools/list. */
    add_server(f, 1, "quiet", 40);
    fake *q = &f->peers[1];
    mcp__server_start(f->srv[1]);
    peer(q, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-11-25\"}}");
    assert_int_equal(q->nsent, 3);
    run_for(f, 120);
    assert_int_equal(q->closes, 1);
    assert_info(f, 1,
                "{\"name\":\"quiet\",\"status\":\"failed\",\"error\":\"it did not answer "
                "tools/list within 0.04 s\",\"tools\":0,\"transport\":\"stdio\"}");
}

/* ---- calls ---- */

static void test_call_progress_and_result(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome o = {0};
    assert_non_null(call(f, "fx__echo", "{\"x\":1}", 0, &o));
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{"
                        "\"name\":\"echo\",\"arguments\":{\"x\":1},\"_meta\":{\"progressToken\":"
                        "3}}}");
    /* A token of no call, then the call's own. */
    peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{"
            "\"progressToken\":9,\"progress\":1}}");
    assert_int_equal(o.progress, 0);
    peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{"
            "\"progressToken\":3,\"progress\":0.5,\"total\":2,\"message\":\"half\"}}");
    assert_int_equal(o.progress, 1);
    assert_true(o.last_progress == 0.5 && o.last_total == 2.0);
    assert_string_equal(o.last_message, "half");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\","
            "\"text\":\"one\"},{\"type\":\"text\",\"text\":\"two\"}]}}");
    assert_int_equal(o.done, 1);
    assert_int_equal(o.status, TOOL_OK);
    assert_string_equal(o.text, "one\ntwo");
    assert_string_equal(o.error, "(null)");
    /* A second answer to the same id finds no call. */
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}");
    assert_int_equal(o.done, 1);
}

static void test_answers_out_of_order_and_errors(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome a = {0}, b = {0}, c = {0};
    call(f, "fx__echo", "{}", 0, &a);
    call(f, "fx__slow", "{}", 0, &b);
    call(f, "fx__echo", "{}", 0, &c);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"isError\":true,\"content\":[]}}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32602,\"message\":\"bad x\"}}");
    assert_int_equal(a.done, 0);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"isError\":true,\"content\":[{\"type\":"
            "\"text\",\"text\":\"disk full\"}]}}");
    assert_int_equal(c.status, TOOL_ERROR);
    assert_string_equal(c.text, "");
    assert_string_equal(c.error, "the tool reported an error");
    assert_int_equal(b.status, TOOL_ERROR);
    assert_string_equal(b.text, "JSON-RPC error -32602: bad x");
    assert_string_equal(b.error, "JSON-RPC error -32602: bad x");
    assert_int_equal(a.status, TOOL_ERROR);
    assert_string_equal(a.text, "disk full");
    assert_string_equal(a.error, "disk full");
}

static void test_cancel_tells_the_server_and_ignores_the_answer(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome o = {0};
    tool_call *c = call(f, "fx__slow", "{}", 0, &o);
    tool_call_cancel(c);
    assert_string_equal(last_sent(p), "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                                      "\"params\":{\"requestId\":3,\"reason\":\"the run "
                                      "stopped\"}}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}");
    run_for(f, 10);
    assert_int_equal(o.done, 0);
}

/* A call that times out is cancelled; the ping that follows goes
 * unanswered too, so the connection is closed as stuck. */
static void test_timeout_cancels_then_pings(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    f->srv[0]->cfg.timeout_ms = 60;
    handshake(f, 0, 1);
    outcome o = {0};
    call(f, "fx__slow", "{}", 30, &o);
    wait_done(f, &o, 1000);
    assert_int_equal(o.status, TOOL_TIMEOUT);
    assert_string_equal(o.error, "timed out after 0.03 s");
    assert_int_equal(p->nsent, 6);
    assert_string_equal(p->sent[4], "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                                    "\"params\":{\"requestId\":3,\"reason\":\"timed out after "
                                    "0.03 s\"}}");
    assert_string_equal(p->sent[5], "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}");
    assert_int_equal(p->closes, 0);
    run_for(f, 150);
    assert_int_equal(p->closes, 1);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"restarting\",\"error\":null,\"tools\":2,"
                "\"transport\":\"stdio\"}");
}

static void test_answered_ping_keeps_the_connection(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    f->srv[0]->cfg.timeout_ms = 60;
    handshake(f, 0, 1);
    outcome o = {0};
    call(f, "fx__slow", "{}", 20, &o);
    wait_done(f, &o, 1000);
    assert_string_equal(last_sent(p), "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}");
    run_for(f, 150);
    assert_int_equal(p->closes, 0);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"ready\",\"error\":null,\"tools\":2,\"transport\":"
                "\"stdio\"}");
}

static void test_oversized_answer_fails_its_call(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome a = {0}, b = {0};
    call(f, "fx__echo", "{}", 0, &a);
    call(f, "fx__echo", "{}", 0, &b);
    p->base.cb.on_toobig(p->base.ud, 5000000, 4194304, 4);
    assert_int_equal(a.done, 0);
    assert_int_equal(b.done, 1);
    assert_string_equal(b.error, "the MCP server 'fx' sent a message of 5000000 bytes, more "
                                 "than the 4194304 bytes allowed");
    /* Without an id nothing fails, and the connection stays. */
    p->base.cb.on_toobig(p->base.ud, 5000000, 4194304, -1);
    assert_int_equal(a.done, 0);
    assert_int_equal(p->closes, 0);
}

/* ---- requests and notifications from the server ---- */

static void test_server_requests_are_answered(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"ping\"}");
    assert_string_equal(last_sent(p), "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"result\":{}}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"sampling/createMessage\"}");
    assert_string_equal(last_sent(p), "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32601,"
                                      "\"message\":\"Method not found: "
                                      "sampling/createMessage\"}}");
    int n = p->nsent;
    peer(p, "not json");
    peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":"
            "\"info\",\"data\":\"hello\"}}");
    assert_int_equal(p->nsent, n);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"ready\",\"error\":null,\"tools\":2,\"transport\":"
                "\"stdio\"}");
}

/* ---- questions (elicitation/create) ---- */

typedef struct asked {
    int n;
    char message[64];
    char schema[256];
} asked;

static asked the_asked;

static void on_input(void *ud, const char *message, const json_t *schema)
{
    (void)ud;
    the_asked.n++;
    snprintf(the_asked.message, sizeof the_asked.message, "%s", message);
    char *text = json_dumps(schema, JSON_COMPACT);
    snprintf(the_asked.schema, sizeof the_asked.schema, "%s", text);
    free(text);
}

static const tool_callbacks asking = {
    .on_progress = on_progress, .on_done = on_done, .on_input = on_input};

#define ELICIT_FORM                                                                                \
    "{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"method\":\"elicitation/create\",\"params\":{"            \
    "\"message\":\"Name?\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"name\":{"    \
    "\"type\":\"string\"}}}}}"

/* A form question during the one call in flight goes to its on_input; the
 * call's time-out stands still while the person answers, and runs on for
 * the time it had left once the answer is sent. */
static void test_question_pauses_the_timeout(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    memset(&the_asked, 0, sizeof the_asked);
    outcome o = {0};
    json_t *args = json_object();
    tool_call *c = toolset_call(f->ts, "fx__slow", args, 150, &asking, &o);
    json_decref(args);
    assert_non_null(c);
    run_for(f, 50);
    peer(p, ELICIT_FORM);
    assert_int_equal(the_asked.n, 1);
    assert_string_equal(the_asked.message, "Name?");
    assert_string_equal(the_asked.schema,
                        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}");
    int sent = p->nsent;
    /* Far past the call's 150 ms: nothing times out while the person thinks. */
    run_for(f, 300);
    assert_int_equal(o.done, 0);
    assert_int_equal(p->nsent, sent);
    json_t *content = json_pack("{s:s}", "name", "Ada");
    tool_call_answer(c, "accept", content);
    json_decref(content);
    assert_string_equal(last_sent(p), "{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"result\":{\"action\":"
                                      "\"accept\",\"content\":{\"name\":\"Ada\"}}}");
    /* A second answer has nothing to answer. */
    tool_call_answer(c, "decline", NULL);
    assert_int_equal(p->nsent, sent + 1);
    /* About 100 ms were left: the call times out after them, not at once. */
    run_for(f, 40);
    assert_int_equal(o.done, 0);
    wait_done(f, &o, 1000);
    assert_int_equal(o.status, TOOL_TIMEOUT);
    assert_string_equal(o.error, "timed out after 0.15 s");
}

/* URL mode is declined at once, never shown; so is a form when no call
 * (or more than one) is in flight, or the caller takes no questions; a
 * form this version cannot show is refused with -32602. */
static void test_questions_answered_without_asking(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    memset(&the_asked, 0, sizeof the_asked);
    peer(p, ELICIT_FORM);
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"result\":{\"action\":\"decline\"}}");
    outcome a = {0}, b = {0};
    json_t *args = json_object();
    tool_call *ca = toolset_call(f->ts, "fx__slow", args, 0, &asking, &a);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"elicitation/create\",\"params\":{"
            "\"mode\":\"url\",\"message\":\"Log in\",\"url\":\"https://x.example/\","
            "\"elicitationId\":\"e1\"}}");
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"action\":\"decline\"}}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"elicitation/create\",\"params\":{"
            "\"message\":\"x\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"a\":{"
            "\"type\":\"object\"}}}}}");
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32602,\"message\":"
                        "\"Invalid params: requestedSchema.properties.a: type must be one of "
                        "string, number, integer, boolean, array\"}}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"elicitation/create\",\"params\":{"
            "\"requestedSchema\":{\"type\":\"object\",\"properties\":{}}}}");
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":10,\"error\":{\"code\":-32602,\"message\":"
                        "\"Invalid params: message must be a string\"}}");
    /* Two calls in flight: whose question it is cannot be told. */
    tool_call *cb = toolset_call(f->ts, "fx__slow", args, 0, &callbacks, &b);
    peer(p, ELICIT_FORM);
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"result\":{\"action\":\"decline\"}}");
    tool_call_cancel(ca);
    /* The one left takes no questions. */
    peer(p, ELICIT_FORM);
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"result\":{\"action\":\"decline\"}}");
    assert_int_equal(the_asked.n, 0);
    tool_call_cancel(cb);
    json_decref(args);
}

/* A call cancelled while its server waits for the person answers cancel
 * first, then tells the server the call is abandoned. */
static void test_cancel_while_asking_answers_cancel(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    memset(&the_asked, 0, sizeof the_asked);
    outcome o = {0};
    json_t *args = json_object();
    tool_call *c = toolset_call(f->ts, "fx__slow", args, 0, &asking, &o);
    json_decref(args);
    peer(p, ELICIT_FORM);
    assert_int_equal(the_asked.n, 1);
    int n = p->nsent;
    tool_call_cancel(c);
    assert_int_equal(p->nsent, n + 2);
    assert_string_equal(p->sent[n],
                        "{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"result\":{\"action\":\"cancel\"}}");
    assert_string_equal(p->sent[n + 1],
                        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                        "\"params\":{\"requestId\":3,\"reason\":\"the run stopped\"}}");
}

/* A new list while a call is in flight: the call's tool_def stays valid
 * until it ends (the sanitizer build checks the read in on_done's wake). */
static void test_list_changed_relists_and_keeps_old_defs(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome o = {0};
    const tool_def *old = toolset_find(f->ts, "fx__slow");
    call(f, "fx__slow", "{}", 0, &o);
    peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}");
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\",\"params\":{}}");
    /* A second change while listing asks for one more listing after it. */
    peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}");
    assert_int_equal(p->nsent, 5);
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"tools\":[{\"name\":\"new\"}]}}");
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/list\",\"params\":{}}");
    assert_int_equal(f->srv[0]->ndefs, 1);
    assert_non_null(toolset_find(f->ts, "fx__new"));
    assert_null(toolset_find(f->ts, "fx__slow"));
    assert_string_equal(old->tool, "slow");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}");
    assert_int_equal(o.done, 1);
    assert_string_equal(old->tool, "slow"); /* freed on the next loop turn only */
    run_for(f, 10);
}

/* ---- the end of a connection, and restarts ---- */

static void test_connection_end_fails_sent_calls_and_restarts_for_queued(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome a = {0}, b = {0};
    call(f, "fx__slow", "{}", 0, &a);
    assert_int_equal(p->nsent, 4);
    p->base.cb.on_eof(p->base.ud);
    /* Made while the connection ends: queued, not sent. */
    assert_non_null(call(f, "fx__echo", "{\"y\":2}", 0, &b));
    assert_int_equal(p->nsent, 4);
    p->base.cb.on_closed(p->base.ud, "exited (status 1)");
    assert_int_equal(p->closes, 1);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.status, TOOL_ERROR);
    assert_string_equal(a.error, "the MCP server 'fx' exited (status 1) during the call");
    assert_int_equal(b.done, 0);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"restarting\",\"error\":null,\"tools\":2,"
                "\"transport\":\"stdio\"}");
    assert_health(f, 0, 0, "exited (status 1)", true);
    /* The backoff after one short life is half a second. */
    run_for(f, 300);
    assert_int_equal(p->starts, 1);
    run_for(f, 400);
    assert_int_equal(p->starts, 2);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"restarting\",\"error\":null,\"tools\":2,"
                "\"transport\":\"stdio\"}");
    assert_health(f, 0, 1, "exited (status 1)", true);
    answer_handshake(p, 4);
    /* Working again: counted, no longer down, the last failure kept. */
    assert_health(f, 0, 1, "exited (status 1)", false);
    /* Ready again: the queued call goes out with the next id. */
    assert_string_equal(last_sent(p),
                        "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{"
                        "\"name\":\"echo\",\"arguments\":{\"y\":2},\"_meta\":{\"progressToken\":"
                        "6}}}");
    peer(p, "{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{\"content\":[{\"type\":\"text\","
            "\"text\":\"back\"}]}}");
    assert_int_equal(b.status, TOOL_OK);
    assert_string_equal(b.text, "back");
}

/* A start that fails fails the calls waiting for it, queued ones too. */
static void test_failed_restart_fails_queued_calls(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    p->base.cb.on_eof(p->base.ud);
    p->base.cb.on_closed(p->base.ud, "exited (status 0)");
    p->start_error = "command 'x' not found in PATH";
    outcome o = {0};
    call(f, "fx__echo", "{}", 0, &o);
    wait_done(f, &o, 2000);
    assert_int_equal(p->starts, 2);
    assert_int_equal(o.status, TOOL_ERROR);
    assert_string_equal(o.error, "the MCP server 'fx' could not start: command 'x' not found in "
                                 "PATH");
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"failed\",\"error\":\"command 'x' not found in "
                "PATH\",\"tools\":2,\"transport\":\"stdio\"}");
    assert_health(f, 0, 1, "command 'x' not found in PATH", true);
}

/* A restart asked by a person: the connection in use closes, its call
 * fails saying why, and a new start begins at once, without a backoff. */
static void test_restart_on_request(void **state)
{
    fixture *f = *state;
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    outcome o = {0};
    call(f, "fx__slow", "{}", 0, &o);
    f->srv[0]->base.ops->restart(&f->srv[0]->base);
    assert_int_equal(p->closes, 1);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.status, TOOL_ERROR);
    assert_string_equal(o.error, "the MCP server 'fx' was restarted on request during the call");
    assert_int_equal(p->starts, 2);
    assert_info(f, 0,
                "{\"name\":\"fx\",\"status\":\"restarting\",\"error\":null,\"tools\":2,"
                "\"transport\":\"stdio\"}");
    assert_health(f, 0, 1, NULL, false);
}

/* ---- the group ---- */

/* Freeing the first server stops every connection of the group in one
 * stop_all, and each transport is freed with its server. */
static void test_group_stops_all_connections_at_once(void **state)
{
    fixture *f = *state;
    add_server(f, 1, "fy", 60000);
    handshake(f, 0, 1);
    handshake(f, 1, 1);
    assert_int_equal(f->srv[1]->ndefs, 2);
    assert_non_null(toolset_find(f->ts, "fy__echo"));
    outcome o = {0};
    call(f, "fy__slow", "{}", 0, &o);
    free_toolset(f);
    assert_int_equal(f->stop_calls, 2);
    assert_int_equal(f->peers[0].stopped, 1);
    assert_int_equal(f->peers[1].stopped, 1);
    assert_int_equal(f->peers[0].last_stop_n, 2);
    assert_int_equal(f->peers[0].freed, 1);
    assert_int_equal(f->peers[1].freed, 1);
    /* The call left at shutdown has nobody to tell. */
    assert_int_equal(o.done, 0);
}

/* ---- what a server may write to the log ---- */

/* Runs fn with stderr going to a file, returns what was written there. */
static char *capture_stderr(void (*fn)(fixture *), fixture *f)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(fileno(stderr));
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), fileno(stderr)) >= 0);
    log_level was = log_min_level;
    log_min_level = LOG_INFO;
    fn(f);
    log_min_level = was;
    fflush(stderr);
    assert_true(dup2(saved, fileno(stderr)) >= 0);
    close(saved);
    long n = ftell(tmp);
    assert_true(n >= 0);
    char *out = xcalloc(1, (size_t)n + 1);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static void flood_log(fixture *f)
{
    fake *p = &f->peers[0];
    handshake(f, 0, 1);
    /* A level that tries to end the line, and data over the line cap. */
    peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{"
            "\"level\":\"x\\\"\\nlevel=error\",\"data\":1}}");
    char *big = xasprintf("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{"
                          "\"level\":\"info\",\"data\":\"%0*d\"}}",
                          3000, 7);
    peer(p, big);
    free(big);
    for (int i = 0; i < 248; i++)
        peer(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{"
                "\"level\":\"debug\",\"data\":{\"n\":1}}}");
    for (int i = 0; i < 3; i++) peer(p, "not json");
    /* Freeing the server writes the summary of what was dropped. */
    free_toolset(f);
}

static void test_log_notifications_are_limited(void **state)
{
    fixture *f = *state;
    char *out = capture_stderr(flood_log, f);
    static const char log_line[] = "level=info msg=\"mcp log\" server=fx ";
    static const char summary[] = "level=warn msg=\"mcp server output dropped: over the rate "
                                  "limit\" server=fx stream=messages dropped=";
    int written = 0, unreadable = 0, summaries = 0;
    long dropped = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, log_line, sizeof log_line - 1) == 0) {
            if (written == 0)
                assert_string_equal(l, "level=info msg=\"mcp log\" server=fx level=\"x\\\" "
                                       "level=error\" data=\"1\"");
            if (written == 1) {
                char *want = xasprintf("level=info msg=\"mcp log\" server=fx level=\"info\" "
                                       "data=\"\\\"%0*d\" truncated=3002",
                                       MCP_LOG_LINE_MAX - 1, 0);
                assert_string_equal(l, want);
                free(want);
            }
            if (written == 2)
                assert_string_equal(l, "level=info msg=\"mcp log\" server=fx level=\"debug\" "
                                       "data=\"{\\\"n\\\":1}\"");
            written++;
        } else if (strstr(l, "msg=\"mcp unreadable message ignored\" server=fx")) {
            unreadable++;
        } else if (strncmp(l, summary, sizeof summary - 1) == 0) {
            summaries++;
            dropped += strtol(l + sizeof summary - 1, NULL, 10);
        }
    }
    free(out);
    /* The burst is written (a slow machine may refill a line or two), the
     * rest is counted in one summary. */
    assert_true(written >= MCP_LOG_BURST && written <= MCP_LOG_BURST + 3);
    assert_int_equal(summaries, 1);
    assert_int_equal(written + unreadable + dropped, 250 + 3);
}

int main(void)
{
    log_min_level = LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_lists_tools_in_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_on_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_protocol_version_fails_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_start_failure_is_the_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initialize_error_and_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_progress_and_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_out_of_order_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_tells_the_server_and_ignores_the_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout_cancels_then_pings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answered_ping_keeps_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_answer_fails_its_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_requests_are_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_question_pauses_the_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_questions_answered_without_asking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_asking_answers_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_changed_relists_and_keeps_old_defs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_connection_end_fails_sent_calls_and_restarts_for_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_restart_fails_queued_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_stops_all_connections_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_notifications_are_limited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
