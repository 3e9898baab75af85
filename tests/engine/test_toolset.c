/* Tests of the toolset and the built-in tools on a real event loop, and of
 * routing to a second, asynchronous tool source. */
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
#include <regex.h>

#include "core/context.h"
#include "core/jsonw.h"
#include "engine/tool_source.h"
#include "lib/xmalloc.h"

typedef struct outcome {
    int done;
    tool_status status;
    char text[256];
    char error[256];
    bool has_error;
} outcome;

static void on_done(void *ud, const tool_result *r)
{
    outcome *o = ud;
    o->done++;
    o->status = r->status;
    assert_int_equal(strlen(r->text), r->text_len);
    snprintf(o->text, sizeof o->text, "%s", r->text);
    o->has_error = r->error != NULL;
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
}

static const tool_callbacks callbacks = {.on_done = on_done};

typedef struct fixture {
    struct event_base *base;
    toolset *ts;
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->base = event_base_new();
    f->ts = toolset_new(f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    toolset_free(f->ts);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Calls a tool with arguments given as JSON text (NULL: no arguments); the
 * built-in tools must finish before toolset_call returns. */
static outcome call_sync(fixture *f, const char *name, const char *args_json)
{
    outcome o = {0};
    json_t *args = args_json ? json_loads(args_json, JSON_DECODE_ANY, NULL) : NULL;
    if (args_json) assert_non_null(args);
    tool_call *c = toolset_call(f->ts, name, args, 0, &callbacks, &o);
    assert_null(c);
    assert_int_equal(o.done, 1);
    json_decref(args);
    return o;
}

static void expect_ok(fixture *f, const char *name, const char *args, const char *text)
{
    outcome o = call_sync(f, name, args);
    assert_int_equal(o.status, TOOL_OK);
    assert_string_equal(o.text, text);
    assert_false(o.has_error);
}

static void expect_error(fixture *f, const char *name, const char *args, const char *msg)
{
    outcome o = call_sync(f, name, args);
    assert_int_equal(o.status, TOOL_ERROR);
    assert_string_equal(o.text, msg);
    assert_true(o.has_error);
    assert_string_equal(o.error, msg);
}

static void test_defs(void **state)
{
    fixture *f = *state;
    assert_int_equal(toolset_count(f->ts), 2);
    const tool_def *calc = toolset_get(f->ts, 0), *clock = toolset_get(f->ts, 1);
    assert_string_equal(calc->name, "calc");
    assert_string_equal(calc->server, "builtin");
    assert_string_equal(calc->tool, "calc");
    assert_string_equal(clock->name, "clock");
    assert_string_equal(clock->server, "builtin");
    assert_string_equal(clock->tool, "clock");
    assert_null(toolset_get(f->ts, 2));
    assert_ptr_equal(toolset_find(f->ts, "calc"), calc);
    assert_ptr_equal(toolset_find(f->ts, "clock"), clock);
    assert_null(toolset_find(f->ts, "builtin__calc"));
    assert_null(toolset_find(f->ts, NULL));
}

static void test_openai_tools_json(void **state)
{
    fixture *f = *state;
    json_t *tools = toolset_openai_tools(f->ts);
    char *s = json_dumps(tools, JSON_COMPACT);
    assert_string_equal(
        s, "[{\"type\":\"function\",\"function\":{\"name\":\"calc\",\"description\":\"Evaluates "
           "an arithmetic expression and returns its value. Supports + - * / % (remainder) ^ "
           "(power), parentheses, unary minus and decimal numbers such as 2.5 or "
           "1e3.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":"
           "\"string\",\"description\":\"The expression, e.g. \\\"(2+3)^2 / "
           "7\\\"\"}},\"required\":[\"expression\"]}}},{\"type\":\"function\",\"function\":{"
           "\"name\":\"clock\",\"description\":\"Returns the current date and time, in UTC or "
           "in the given IANA time zone.\",\"parameters\":{\"type\":\"object\",\"properties\":{"
           "\"timezone\":{\"type\":\"string\",\"description\":\"An IANA time zone name such as "
           "\\\"Europe/Paris\\\"; UTC when omitted\"}}}}}]");
    free(s);
    json_decref(tools);
}

static void test_calc(void **state)
{
    fixture *f = *state;
    expect_ok(f, "calc", "{\"expression\":\"6*7\"}", "42");
    expect_ok(f, "calc", "{\"expression\":\"1/3\"}", "0.333333333333");
    expect_ok(f, "calc", "{\"expression\":\"-2^2\",\"note\":\"extra is ignored\"}", "-4");
    expect_error(f, "calc", "{\"expression\":\"1/0\"}", "division by zero");
    expect_error(f, "calc", "{\"expression\":\"2*(3\"}", "missing closing parenthesis");
    expect_error(f, "calc", "{\"expression\":\"1+x\"}", "unexpected character 'x' at position 3");
    expect_error(f, "calc", "{}", "calc: missing string argument 'expression'");
    expect_error(f, "calc", "{\"expression\":42}", "calc: missing string argument 'expression'");
    expect_error(f, "calc", NULL, "calc: missing string argument 'expression'");
    expect_error(f, "calc", "[\"6*7\"]", "calc: arguments must be a JSON object");
}

/* Checks "YYYY-MM-DDTHH:MM:SS+hh:mm (zone)" and that the local time it shows
 * minus its offset is now, within a few seconds. */
static void check_clock_text(const char *text, const char *zone, const char *offsets)
{
    char pattern[256];
    snprintf(pattern, sizeof pattern,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(%s) \\(%s\\)$", offsets, zone);
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int m = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (m != 0) fail_msg("\"%s\" does not match %s", text, pattern);

    struct tm tm = {0};
    int oh, om;
    char sign;
    assert_int_equal(sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &sign, &oh, &om),
                     9);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    long long shown = (long long)timegm(&tm) - (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    long long now = (long long)time(NULL);
    if (shown < now - 5 || shown > now + 1) fail_msg("\"%s\" is not now (%lld)", text, now);
}

static void test_clock_utc(void **state)
{
    fixture *f = *state;
    outcome o = call_sync(f, "clock", "{}");
    assert_int_equal(o.status, TOOL_OK);
    check_clock_text(o.text, "UTC", "\\+00:00");
    o = call_sync(f, "clock", NULL);
    check_clock_text(o.text, "UTC", "\\+00:00");
    o = call_sync(f, "clock", "{\"timezone\":null}");
    check_clock_text(o.text, "UTC", "\\+00:00");
    o = call_sync(f, "clock", "{\"timezone\":\"UTC\"}");
    assert_int_equal(o.status, TOOL_OK);
    check_clock_text(o.text, "UTC", "\\+00:00");
}

static void test_clock_zones(void **state)
{
    fixture *f = *state;
    outcome o = call_sync(f, "clock", "{\"timezone\":\"Europe/Paris\"}");
    assert_int_equal(o.status, TOOL_OK);
    check_clock_text(o.text, "Europe/Paris", "\\+01:00|\\+02:00");
    o = call_sync(f, "clock", "{\"timezone\":\"Asia/Kolkata\"}");
    check_clock_text(o.text, "Asia/Kolkata", "\\+05:30");
    o = call_sync(f, "clock", "{\"timezone\":\"America/New_York\"}");
    check_clock_text(o.text, "America/New_York", "-05:00|-04:00");
    o = call_sync(f, "clock", "{\"timezone\":\"Etc/GMT+5\"}");
    check_clock_text(o.text, "Etc/GMT\\+5", "-05:00");
}

static void test_clock_errors(void **state)
{
    fixture *f = *state;
    expect_error(f, "clock", "{\"timezone\":\"Mars/Base\"}", "unknown time zone 'Mars/Base'");
    expect_error(f, "clock", "{\"timezone\":\"../../../etc/passwd\"}",
                 "unknown time zone '../../../etc/passwd'");
    expect_error(f, "clock", "{\"timezone\":\"/etc/localtime\"}",
                 "unknown time zone '/etc/localtime'");
    expect_error(f, "clock", "{\"timezone\":\"Europe\"}", "unknown time zone 'Europe'");
    expect_error(f, "clock", "{\"timezone\":\"Europe//Paris\"}",
                 "unknown time zone 'Europe//Paris'");
    expect_error(f, "clock", "{\"timezone\":\"zone.tab\"}", "unknown time zone 'zone.tab'");
    expect_error(f, "clock", "{\"timezone\":\"leapseconds\"}", "unknown time zone 'leapseconds'");
    expect_error(f, "clock", "{\"timezone\":5}", "clock: argument 'timezone' must be a string");
    expect_error(f, "clock", "\"Europe/Paris\"", "clock: arguments must be a JSON object");
}

static void test_unknown_tool(void **state)
{
    fixture *f = *state;
    expect_error(f, "nope", "{}", "unknown tool 'nope'");
    expect_error(f, "builtin__calc", "{}", "unknown tool 'builtin__calc'");
    expect_error(f, NULL, "{}", "unknown tool ''");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(tool_status_name(TOOL_OK), "ok");
    assert_string_equal(tool_status_name(TOOL_ERROR), "error");
    assert_string_equal(tool_status_name(TOOL_TIMEOUT), "timeout");
    assert_string_equal(tool_status_name(TOOL_CANCELLED), "cancelled");
}

/*
 * A second source as an MCP server would be: one tool that finishes on a
 * timer, and one named "calc" that the built-in calc hides.
 */
typedef struct fake_source {
    tool_source base;
    struct event_base *eb;
    tool_def defs[2];
    int live_calls;
} fake_source;

typedef struct fake_call {
    tool_call base;
    struct event *timer;
    tool_callbacks cb;
    void *ud;
} fake_call;

static size_t fake_count(const tool_source *s)
{
    (void)s;
    return 2;
}

static const tool_def *fake_get(const tool_source *s, size_t i)
{
    return &((const fake_source *)s)->defs[i];
}

static void fake_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fake_call *c = arg;
    fake_source *src = (fake_source *)c->base.source;
    tool_result r = {.status = TOOL_OK, .text = "found", .text_len = 5};
    c->cb.on_done(c->ud, &r);
    event_free(c->timer);
    free(c);
    src->live_calls--;
}

static tool_call *fake_call_start(tool_source *s, size_t i, const json_t *arguments,
                                  int64_t timeout_ms, const tool_callbacks *cb, void *ud)
{
    (void)arguments;
    (void)timeout_ms;
    assert_int_equal(i, 0);
    fake_source *src = (fake_source *)s;
    fake_call *c = xcalloc(1, sizeof *c);
    c->base.source = s;
    c->cb = *cb;
    c->ud = ud;
    c->timer = evtimer_new(src->eb, fake_fire, c);
    struct timeval tv = {0, 1000};
    evtimer_add(c->timer, &tv);
    src->live_calls++;
    return &c->base;
}

static void fake_cancel(tool_call *tc)
{
    fake_call *c = (fake_call *)tc;
    ((fake_source *)tc->source)->live_calls--;
    event_free(c->timer);
    free(c);
}

static void fake_free(tool_source *s)
{
    fake_source *src = (fake_source *)s;
    for (int i = 0; i < 2; i++) {
        free(src->defs[i].name);
        free(src->defs[i].server);
        free(src->defs[i].tool);
        free(src->defs[i].description);
        json_decref(src->defs[i].input_schema);
    }
    free(src);
}

static const tool_source_ops fake_ops = {
    .count = fake_count,
    .get = fake_get,
    .call = fake_call_start,
    .cancel = fake_cancel,
    .free = fake_free,
};

static fake_source *add_fake(fixture *f)
{
    fake_source *src = xcalloc(1, sizeof *src);
    src->base.ops = &fake_ops;
    src->eb = f->base;
    const char *tools[2] = {"lookup", "calc"};
    for (int i = 0; i < 2; i++) {
        src->defs[i].name = i == 0 ? tool_model_name("fake", tools[i]) : xstrdup("calc");
        src->defs[i].server = xstrdup("fake");
        src->defs[i].tool = xstrdup(tools[i]);
        src->defs[i].description = xstrdup("a fake tool");
        src->defs[i].input_schema = json_pack("{s:s}", "type", "object");
    }
    toolset_add_source(f->ts, &src->base);
    return src;
}

/* Runs share one list of tools until a source's tools change: a new
 * source, a new description or a new schema object each give a new list,
 * which is shared in turn. */
static void test_openai_tools_shared_until_they_change(void **state)
{
    fixture *f = *state;
    json_t *first = toolset_openai_tools(f->ts);
    json_t *again = toolset_openai_tools(f->ts);
    assert_ptr_equal(first, again);
    json_decref(again);

    fake_source *src = add_fake(f);
    json_t *more = toolset_openai_tools(f->ts);
    assert_ptr_not_equal(more, first);
    assert_int_equal(json_array_size(first), 2);
    assert_int_equal(json_array_size(more), 3);
    json_t *same = toolset_openai_tools(f->ts);
    assert_ptr_equal(same, more);
    json_decref(same);

    free(src->defs[0].description);
    src->defs[0].description = xstrdup("a changed tool");
    json_t *described = toolset_openai_tools(f->ts);
    assert_ptr_not_equal(described, more);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(described, 2), "function"),
                                          "description")),
        "a changed tool");

    json_decref(src->defs[0].input_schema);
    src->defs[0].input_schema = json_pack("{s:s}", "type", "object");
    json_t *schema = toolset_openai_tools(f->ts);
    assert_ptr_not_equal(schema, described);
    assert_ptr_equal(
        json_object_get(json_object_get(json_array_get(schema, 2), "function"), "parameters"),
        src->defs[0].input_schema);
    /* The lists handed out before stay as they were. */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(more, 2), "function"), "description")),
                        "a fake tool");
    json_decref(first);
    json_decref(more);
    json_decref(described);
    json_decref(schema);
}

/* The tokens a list takes, and its text, are made with it, and follow it
 * when the tools change. */
static void test_openai_tools_counted_with_the_list(void **state)
{
    fixture *f = *state;
    int64_t tokens = -1, again = -1;
    json_t *text = NULL, *same_text = NULL, *more_text = NULL;
    json_t *first = toolset_openai_tools_counted(f->ts, &tokens, &text);
    assert_int_equal(tokens, context_estimate_tokens(first));
    assert_true(tokens > 0);
    char *want = jsonw_dumps(first, JSON_COMPACT);
    assert_string_equal(json_string_value(text), want);
    free(want);
    json_t *same = toolset_openai_tools_counted(f->ts, &again, &same_text);
    assert_ptr_equal(same, first);
    assert_ptr_equal(same_text, text);
    assert_int_equal(again, tokens);
    fake_source *src = add_fake(f);
    (void)src;
    json_t *more = toolset_openai_tools_counted(f->ts, &again, &more_text);
    assert_ptr_not_equal(more, first);
    assert_int_equal(again, context_estimate_tokens(more));
    assert_true(again > tokens);
    want = jsonw_dumps(more, JSON_COMPACT);
    assert_string_equal(json_string_value(more_text), want);
    assert_true(strstr(want, "fake__") != NULL);
    free(want);
    /* The old list's text lives on with the runs that hold it. */
    assert_true(strstr(json_string_value(text), "fake__") == NULL);
    json_decref(first);
    json_decref(same);
    json_decref(more);
    json_decref(text);
    json_decref(same_text);
    json_decref(more_text);
}

static void test_second_source(void **state)
{
    fixture *f = *state;
    fake_source *src = add_fake(f);
    assert_int_equal(toolset_count(f->ts), 4);
    assert_string_equal(toolset_get(f->ts, 2)->name, "fake__lookup");
    /* The built-in calc comes first and hides the fake one. */
    assert_string_equal(toolset_find(f->ts, "calc")->server, "builtin");
    expect_ok(f, "calc", "{\"expression\":\"1+1\"}", "2");

    json_t *tools = toolset_openai_tools(f->ts);
    assert_int_equal(json_array_size(tools), 3);
    char *s = json_dumps(json_array_get(tools, 2), JSON_COMPACT);
    assert_string_equal(s,
                        "{\"type\":\"function\",\"function\":{\"name\":\"fake__lookup\","
                        "\"description\":\"a fake tool\",\"parameters\":{\"type\":\"object\"}}}");
    free(s);
    json_decref(tools);

    /* An asynchronous call: a handle now, on_done from the loop. */
    outcome o = {0};
    json_t *args = json_object();
    tool_call *c = toolset_call(f->ts, "fake__lookup", args, 0, &callbacks, &o);
    assert_non_null(c);
    assert_int_equal(o.done, 0);
    event_base_dispatch(f->base);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.status, TOOL_OK);
    assert_string_equal(o.text, "found");
    assert_int_equal(src->live_calls, 0);

    /* A cancelled call never calls back. */
    memset(&o, 0, sizeof o);
    c = toolset_call(f->ts, "fake__lookup", args, 0, &callbacks, &o);
    assert_non_null(c);
    tool_call_cancel(c);
    event_base_dispatch(f->base);
    assert_int_equal(o.done, 0);
    assert_int_equal(src->live_calls, 0);
    tool_call_cancel(NULL);
    json_decref(args);
}

/* The demo brain's tools: pretend_delete (not read-only) answers at once and
 * touches nothing; sleep (read-only) waits on the loop's timer, checks its
 * bounds, and a cancel stops it with no callback. */
static void test_demo_tools(void **state)
{
    fixture *f = *state;
    toolset_add_demo_tools(f->ts);
    assert_int_equal(toolset_count(f->ts), 4);
    const tool_def *del = toolset_find(f->ts, "pretend_delete"), *sl = toolset_find(f->ts, "sleep");
    assert_ptr_equal(del, toolset_get(f->ts, 2));
    assert_ptr_equal(sl, toolset_get(f->ts, 3));
    assert_string_equal(del->server, "builtin");
    assert_false(del->read_only);
    assert_true(sl->read_only);
    assert_true(toolset_find(f->ts, "calc")->read_only);

    expect_ok(f, "pretend_delete", "{\"path\":\"a/b.txt\"}", "deleted a/b.txt (pretend)");
    expect_error(f, "pretend_delete", "{}", "pretend_delete: missing string argument 'path'");
    expect_error(f, "pretend_delete", "[1]", "pretend_delete: arguments must be a JSON object");
    const char *bad = "sleep: argument 'seconds' must be a whole number from 1 to 30";
    expect_error(f, "sleep", "{}", bad);
    expect_error(f, "sleep", "{\"seconds\":0}", bad);
    expect_error(f, "sleep", "{\"seconds\":31}", bad);
    expect_error(f, "sleep", "{\"seconds\":1.5}", bad);
    expect_error(f, "sleep", "{\"seconds\":\"2\"}", bad);

    /* A one-second sleep: nothing inside the call, the result after the
     * loop ran about a second. */
    outcome o = {0};
    json_t *args = json_pack("{s:i}", "seconds", 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tool_call *c = toolset_call(f->ts, "sleep", args, 0, &callbacks, &o);
    assert_non_null(c);
    assert_int_equal(o.done, 0);
    event_base_dispatch(f->base);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.status, TOOL_OK);
    assert_string_equal(o.text, "slept 1 second");
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs >= 0.9 && secs < 3.0);

    /* Cancelled: the timer is gone, the loop has nothing left to run and no
     * callback comes. */
    outcome o2 = {0};
    c = toolset_call(f->ts, "sleep", args, 0, &callbacks, &o2);
    assert_non_null(c);
    tool_call_cancel(c);
    event_base_dispatch(f->base);
    assert_int_equal(o2.done, 0);
    json_decref(args);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_tools_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_tools_shared_until_they_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_openai_tools_counted_with_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_utc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_zones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_tools, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
