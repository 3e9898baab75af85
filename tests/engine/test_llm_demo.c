/* Tests of the demo brain on a real event loop: which turn it takes for a
 * conversation, how it streams, and that an abort silences it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "engine/llm.h"
#include "engine/toolset.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"

#define MAX_CALLS 4

typedef struct capture {
    llm *p;
    llm_call *call;
    int abort_after_pieces; /* 0: never */
    int pieces;
    char joined[8192];
    size_t joined_len;
    int done;
    bool ok;
    char text[8192];
    size_t ncalls;
    char ids[MAX_CALLS][32], names[MAX_CALLS][32], args[MAX_CALLS][256];
    char finish[32];
    int64_t prompt_tokens, completion_tokens;
} capture;

static void on_text(void *ud, const char *text, size_t len)
{
    capture *c = ud;
    assert_true(len > 0);
    assert_true(c->joined_len + len < sizeof c->joined);
    memcpy(c->joined + c->joined_len, text, len);
    c->joined_len += len;
    c->joined[c->joined_len] = '\0';
    c->pieces++;
    if (c->abort_after_pieces && c->pieces == c->abort_after_pieces) llm_call_abort(c->p, c->call);
}

static void on_done(void *ud, const llm_result *r)
{
    capture *c = ud;
    c->done++;
    c->ok = r->ok;
    assert_int_equal(strlen(r->text), r->text_len);
    snprintf(c->text, sizeof c->text, "%s", r->text);
    c->ncalls = r->ncalls;
    assert_true(r->ncalls <= MAX_CALLS);
    for (size_t i = 0; i < r->ncalls; i++) {
        snprintf(c->ids[i], sizeof c->ids[i], "%s", r->calls[i].id);
        snprintf(c->names[i], sizeof c->names[i], "%s", r->calls[i].name);
        snprintf(c->args[i], sizeof c->args[i], "%s", r->calls[i].arguments);
    }
    snprintf(c->finish, sizeof c->finish, "%s", r->finish_reason ? r->finish_reason : "(null)");
    c->prompt_tokens = r->prompt_tokens;
    c->completion_tokens = r->completion_tokens;
}

static const llm_callbacks callbacks = {.on_text = on_text, .on_done = on_done};

typedef struct fixture {
    struct event_base *base;
    llm *demo;
    toolset *ts;
    json_t *tools; /* the built-in tools in OpenAI form */
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->base = event_base_new();
    f->demo = llm_demo_new(f->base, 0);
    f->ts = toolset_new(f->base);
    f->tools = toolset_openai_tools(f->ts);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->tools);
    toolset_free(f->ts);
    llm_free(f->demo);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Runs one model turn on the conversation given as JSON text, to its end. */
static void turn_with(fixture *f, const char *messages_json, const json_t *tools,
                      int64_t max_tokens, capture *c)
{
    memset(c, 0, sizeof *c);
    json_t *messages = json_loads(messages_json, 0, NULL);
    assert_non_null(messages);
    llm_request req = {.messages = messages, .tools = tools, .max_completion_tokens = max_tokens};
    c->p = f->demo;
    c->call = llm_call_start(f->demo, &req, &callbacks, c);
    assert_non_null(c->call);
    /* Nothing is delivered inside start, even with no delay. */
    assert_int_equal(c->pieces, 0);
    assert_int_equal(c->done, 0);
    event_base_dispatch(f->base);
    assert_int_equal(c->done, 1);
    assert_true(c->ok);
    /* The streamed pieces add up to the text of the result. */
    assert_string_equal(c->joined, c->text);
    json_decref(messages);
}

static void turn(fixture *f, const char *messages_json, capture *c)
{
    turn_with(f, messages_json, f->tools, -1, c);
}

static void expect_call(const capture *c, const char *name, const char *args)
{
    assert_int_equal(c->ncalls, 1);
    assert_string_equal(c->names[0], name);
    assert_string_equal(c->args[0], args);
    assert_string_equal(c->text, "");
    assert_int_equal(c->pieces, 0);
    assert_string_equal(c->finish, "tool_calls");
}

static void expect_text(const capture *c, const char *text)
{
    assert_int_equal(c->ncalls, 0);
    assert_string_equal(c->text, text);
    assert_string_equal(c->finish, "stop");
}

/* A conversation: a user message, then n completed tool calls of `tool`
 * with arguments args[i] and results results[i]. */
static char *conversation(const char *user, const char *tool, size_t n, const char **args,
                          const char **results)
{
    json_t *m = json_array();
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", "Be brief."));
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "user", "content", user));
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "call_%zu", i);
        json_array_append_new(m, json_pack("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role",
                                           "assistant", "content", "tool_calls", "id", id, "type",
                                           "function", "function", "name", tool, "arguments",
                                           args[i]));
        json_array_append_new(m, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", id,
                                           "content", results[i]));
    }
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

static void test_identity(void **state)
{
    fixture *f = *state;
    assert_string_equal(f->demo->provider, "demo");
    assert_string_equal(f->demo->model, "demo");
}

static void test_arithmetic(void **state)
{
    fixture *f = *state;
    capture c;
    const char *msgs = "[{\"role\":\"system\",\"content\":\"sys\"},"
                       "{\"role\":\"user\",\"content\":\"what is 6*7?\"}]";
    turn(f, msgs, &c);
    expect_call(&c, "calc", "{\"expression\":\"6*7\"}");
    assert_string_equal(c.ids[0], "call_demo_1");

    /* Usage is estimated as bytes/4, rounded up. */
    json_t *m = json_loads(msgs, 0, NULL);
    char *ms = json_dumps(m, JSON_COMPACT), *ts = json_dumps(f->tools, JSON_COMPACT);
    assert_int_equal(c.prompt_tokens, (int64_t)(strlen(ms) + strlen(ts) + 3) / 4);
    assert_int_equal(c.completion_tokens,
                     (int64_t)(strlen("calc") + strlen("{\"expression\":\"6*7\"}") + 3) / 4);
    free(ms);
    free(ts);
    json_decref(m);

    /* The next call makes a new id. */
    turn(f, msgs, &c);
    assert_string_equal(c.ids[0], "call_demo_2");

    /* With the result back it answers, streamed in pieces. */
    const char *args[] = {"{\"expression\":\"6*7\"}"}, *results[] = {"42"};
    char *conv = conversation("what is 6*7?", "calc", 1, args, results);
    turn(f, conv, &c);
    expect_text(&c, "6*7 = 42.");
    assert_int_equal(c.pieces, 3); /* "6*7 ", "= ", "42." */
    assert_int_equal(c.completion_tokens, 3);
    free(conv);

    /* An error result is reported as such. */
    const char *args2[] = {"{\"expression\":\"1/0\"}"}, *results2[] = {"division by zero"};
    conv = conversation("and 1/0?", "calc", 1, args2, results2);
    turn(f, conv, &c);
    expect_text(&c, "I could not compute 1/0: division by zero.");
    free(conv);
}

static void test_arithmetic_variants(void **state)
{
    fixture *f = *state;
    capture c;
    turn(f, "[{\"role\":\"user\",\"content\":\"compute (2+3)^2 please\"}]", &c);
    expect_call(&c, "calc", "{\"expression\":\"(2+3)^2\"}");
    /* Content as an array of parts. */
    turn(f, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is 2+3\"}]}]", &c);
    expect_call(&c, "calc", "{\"expression\":\"2+3\"}");
    /* Only the last user message counts. */
    turn(f,
         "[{\"role\":\"user\",\"content\":\"what is 6*7?\"},"
         "{\"role\":\"assistant\",\"content\":\"6*7 = 42.\"},"
         "{\"role\":\"user\",\"content\":\"and 9-5?\"}]",
         &c);
    expect_call(&c, "calc", "{\"expression\":\"9-5\"}");
}

static void test_time(void **state)
{
    fixture *f = *state;
    capture c;
    turn(f, "[{\"role\":\"user\",\"content\":\"What time is it in Europe/Paris?\"}]", &c);
    expect_call(&c, "clock", "{\"timezone\":\"Europe/Paris\"}");
    turn(f, "[{\"role\":\"user\",\"content\":\"What's the date today?\"}]", &c);
    expect_call(&c, "clock", "{}");
    turn(f, "[{\"role\":\"user\",\"content\":\"what day is it\"}]", &c);
    expect_call(&c, "clock", "{}");
    turn(f, "[{\"role\":\"user\",\"content\":\"the clock in UTC please\"}]", &c);
    expect_call(&c, "clock", "{\"timezone\":\"UTC\"}");

    const char *args[] = {"{}"}, *results[] = {"2026-11-24T10:00:00+00:00 (UTC)"};
    char *conv = conversation("what time is it?", "clock", 1, args, results);
    turn(f, conv, &c);
    expect_text(&c, "It is 2026-11-24T10:00:00+00:00 (UTC).");
    free(conv);

    const char *args2[] = {"{\"timezone\":\"Mars/Base\"}"},
               *results2[] = {"unknown time zone 'Mars/Base'"};
    conv = conversation("time on Mars/Base?", "clock", 1, args2, results2);
    turn(f, conv, &c);
    expect_text(&c, "I could not read the clock: unknown time zone 'Mars/Base'.");
    free(conv);

    /* "date" inside a word is not a question about the date. */
    turn(f, "[{\"role\":\"user\",\"content\":\"any update?\"}]", &c);
    assert_int_equal(c.ncalls, 0);
}

static void test_demo_loop(void **state)
{
    fixture *f = *state;
    const char *args[] = {"{\"expression\":\"2+2\"}", "{\"expression\":\"2+2\"}",
                          "{\"expression\":\"2+2\"}"};
    const char *results[] = {"4", "4", "4"};
    for (size_t n = 0; n <= 3; n++) {
        capture c;
        char *conv = conversation("demo loop", "calc", n, args, results);
        turn(f, conv, &c);
        expect_call(&c, "calc", "{\"expression\":\"2+2\"}");
        free(conv);
    }
}

static void test_demo_fail(void **state)
{
    fixture *f = *state;
    const char *args[] = {"{\"expression\":\"1/0\"}", "{\"expression\":\"1/0\"}"};
    const char *results[] = {"division by zero", "division by zero"};
    for (size_t n = 0; n <= 2; n++) {
        capture c;
        char *conv = conversation("Demo fail", "calc", n, args, results);
        turn(f, conv, &c);
        expect_call(&c, "calc", "{\"expression\":\"1/0\"}");
        free(conv);
    }
}

static void test_demo_long(void **state)
{
    fixture *f = *state;
    const char *args[] = {"{\"expression\":\"1+1\"}", "{\"expression\":\"2+2\"}",
                          "{\"expression\":\"3+3\"}"};
    const char *results[] = {"2", "4", "6"};
    const char *want[] = {"{\"expression\":\"1+1\"}", "{\"expression\":\"2+2\"}",
                          "{\"expression\":\"3+3\"}", "{\"expression\":\"4+4\"}"};
    for (size_t n = 0; n <= 3; n++) {
        capture c;
        char *conv = conversation("demo long", "calc", n, args, results);
        turn(f, conv, &c);
        expect_call(&c, "calc", want[n]);
        free(conv);
    }
}

static void test_wrap_up(void **state)
{
    fixture *f = *state;
    const char *args[] = {"{\"expression\":\"1+1\"}", "{\"expression\":\"2+2\"}",
                          "{\"expression\":\"3+3\"}"};
    const char *results[] = {"2", "4", "6"};
    char *conv = conversation("demo long", "calc", 3, args, results);
    capture c;
    turn_with(f, conv, NULL, -1, &c);
    expect_text(&c,
                "I have to stop here: the budget for this run is nearly spent. So far: I ran 3 "
                "tool calls; the last one, calc with {\"expression\":\"3+3\"}, returned \"6\".");
    assert_true(c.pieces > 5);

    /* An empty tool list is no tools as well. */
    json_t *none = json_array();
    turn_with(f, conv, none, -1, &c);
    assert_int_equal(c.ncalls, 0);
    assert_non_null(strstr(c.text, "I ran 3 tool calls"));
    json_decref(none);
    free(conv);

    conv = conversation("demo loop", "calc", 1, args, results);
    turn_with(f, conv, NULL, -1, &c);
    expect_text(&c, "I have to stop here: the budget for this run is nearly spent. So far: I ran 1 "
                    "tool call; the last one, calc with {\"expression\":\"1+1\"}, returned \"2\".");
    free(conv);

    turn_with(f, "[{\"role\":\"user\",\"content\":\"what is 6*7?\"}]", NULL, -1, &c);
    expect_text(&c, "I have to stop here: the budget for this run is nearly spent. So far: I had "
                    "not run any tools yet.");
}

static const char intro[] =
    "This is the demo brain of chatplane: no language model is connected, so it follows a few "
    "scripts. Ask it to compute something like 6*7 or for the time, or send \"demo loop\", "
    "\"demo fail\" or \"demo long\" to watch the guardrails and budgets stop a run, \"demo "
    "approve\" "
    "to be asked before a tool call, or \"demo sleep\" for a call to stop half way. To connect "
    "a real model, set CHATPLANE_LLM_URL (or llm.base_url) to an OpenAI-compatible endpoint, "
    "e.g. http://127.0.0.1:11434/v1 for Ollama, and CHATPLANE_LLM_MODEL to the model's name.";

/* "demo approve" and "demo sleep" call their tool once, then answer from its
 * result; without the demo tools offered they get the introduction. */
static void test_demo_approve_sleep(void **state)
{
    fixture *f = *state;
    toolset_add_demo_tools(f->ts);
    json_t *tools = toolset_openai_tools(f->ts);
    capture c;
    turn_with(f, "[{\"role\":\"user\",\"content\":\"Demo approve\"}]", tools, -1, &c);
    expect_call(&c, "pretend_delete", "{\"path\":\"notes/old-draft.txt\"}");
    const char *args[] = {"{\"path\":\"notes/old-draft.txt\"}"};
    const char *ok[] = {"deleted notes/old-draft.txt (pretend)"};
    char *conv = conversation("demo approve", "pretend_delete", 1, args, ok);
    turn_with(f, conv, tools, -1, &c);
    expect_text(&c, "Done: deleted notes/old-draft.txt (pretend). Nothing was really touched.");
    free(conv);
    const char *denied[] = {"The user denied this call: no."};
    conv = conversation("demo approve", "pretend_delete", 1, args, denied);
    turn_with(f, conv, tools, -1, &c);
    expect_text(&c, "I did not delete it: The user denied this call: no.");
    free(conv);

    turn_with(f, "[{\"role\":\"user\",\"content\":\"demo sleep\"}]", tools, -1, &c);
    expect_call(&c, "sleep", "{\"seconds\":5}");
    const char *sargs[] = {"{\"seconds\":5}"};
    const char *slept[] = {"slept 5 seconds"};
    conv = conversation("demo sleep", "sleep", 1, sargs, slept);
    turn_with(f, conv, tools, -1, &c);
    expect_text(&c, "The sleep tool returned: slept 5 seconds");
    free(conv);
    json_decref(tools);

    /* The fixture's tools are calc and clock only. */
    turn(f, "[{\"role\":\"user\",\"content\":\"demo approve\"}]", &c);
    expect_text(&c, intro);
    turn(f, "[{\"role\":\"user\",\"content\":\"demo sleep\"}]", &c);
    expect_text(&c, intro);
}

static void test_plain_text_streams(void **state)
{
    fixture *f = *state;
    capture c;
    turn(f, "[{\"role\":\"user\",\"content\":\"hello there\"}]", &c);
    expect_text(&c, intro);
    assert_true(c.pieces > 40);
    assert_int_equal(c.completion_tokens, (int64_t)(strlen(intro) + 3) / 4);

    /* No user message at all (only a system note). */
    turn(f, "[{\"role\":\"system\",\"content\":\"go on\"}]", &c);
    expect_text(&c, intro);

    /* A demo command whose tool is not offered cannot call it. */
    json_t *clock_only =
        json_pack("[{s:s, s:{s:s}}]", "type", "function", "function", "name", "clock");
    turn_with(f, "[{\"role\":\"user\",\"content\":\"what is 6*7?\"}]", clock_only, -1, &c);
    expect_text(&c, intro);
    turn_with(f, "[{\"role\":\"user\",\"content\":\"demo loop\"}]", clock_only, -1, &c);
    expect_text(&c, intro);
    json_decref(clock_only);
}

static void test_max_tokens_cuts_text(void **state)
{
    fixture *f = *state;
    capture c;
    turn_with(f, "[{\"role\":\"user\",\"content\":\"hello\"}]", f->tools, 3, &c);
    assert_string_equal(c.text, "This is the ");
    assert_string_equal(c.finish, "length");
    turn_with(f, "[{\"role\":\"user\",\"content\":\"hello\"}]", f->tools, 0, &c);
    assert_string_equal(c.text, "");
    assert_int_equal(c.pieces, 0);
}

static void test_pacing(void **state)
{
    fixture *f = *state;
    llm_free(f->demo);
    f->demo = llm_demo_new(f->base, 20);
    const char *args[] = {"{\"expression\":\"6*7\"}"}, *results[] = {"42"};
    char *conv = conversation("what is 6*7?", "calc", 1, args, results);
    capture c;
    int64_t start = clock_mono_ms();
    turn(f, conv, &c);
    /* Three pieces and the end, each one tick of 20 ms after the last. */
    assert_true(clock_mono_ms() - start >= 75);
    assert_int_equal(c.pieces, 3);
    free(conv);
}

static void test_abort(void **state)
{
    fixture *f = *state;
    json_t *messages = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);
    llm_request req = {.messages = messages, .tools = f->tools, .max_completion_tokens = -1};

    /* Aborted before anything was delivered. */
    capture c = {0};
    c.call = llm_call_start(f->demo, &req, &callbacks, &c);
    llm_call_abort(f->demo, c.call);
    event_base_dispatch(f->base);
    assert_int_equal(c.pieces, 0);
    assert_int_equal(c.done, 0);

    /* Aborted between two pieces. */
    memset(&c, 0, sizeof c);
    c.call = llm_call_start(f->demo, &req, &callbacks, &c);
    while (c.pieces < 2) event_base_loop(f->base, EVLOOP_ONCE);
    llm_call_abort(f->demo, c.call);
    event_base_dispatch(f->base);
    assert_int_equal(c.pieces, 2);
    assert_int_equal(c.done, 0);

    /* Aborted from inside on_text. */
    memset(&c, 0, sizeof c);
    c.p = f->demo;
    c.abort_after_pieces = 3;
    c.call = llm_call_start(f->demo, &req, &callbacks, &c);
    event_base_dispatch(f->base);
    assert_int_equal(c.pieces, 3);
    assert_int_equal(c.done, 0);
    assert_string_equal(c.joined, "This is the ");

    /* Aborting NULL is harmless. */
    llm_call_abort(f->demo, NULL);
    json_decref(messages);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arithmetic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arithmetic_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_approve_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_text_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_tokens_cuts_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pacing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
