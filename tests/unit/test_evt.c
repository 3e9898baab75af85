/* Unit tests for core/event: the typed events, their exact JSON, the result
 * cut, UTF-8 repair, parsing and reference counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <pthread.h>

#include <cmocka.h>

#include "core/evt.h"
#include "lib/id.h"
#include "lib/xmalloc.h"

/* 2026-11-24T10:00:00.123Z */
#define TS_MS INT64_C(1795514400123)
#define ENV(type, seq)                                                                             \
    "{\"type\":\"" type "\",\"seq\":" #seq ",\"session_id\":\"s1\",\"run_id\":\"r1\","             \
    "\"ts\":\"2026-11-24T10:00:00.123Z\""

static const evt_origin origin = {.session_id = "s1", .run_id = "r1", .ts_ms = TS_MS};

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    assert_non_null(v);
    return v;
}

/*
 * Sets seq, encodes e and compares the bytes with expected. Then checks the
 * round trip: parsing the text gives the same envelope and fields, and an
 * event built from the parsed fields encodes to the same bytes. Frees e.
 */
static void assert_encodes(evt *e, int64_t seq, const char *expected)
{
    e->seq = seq;
    assert_int_equal(evt_encode(e), 0);
    assert_string_equal(e->json, expected);
    assert_int_equal(e->json_len, strlen(expected));

    char err[256] = "";
    evt *p = evt_parse(e->json, e->json_len, err, sizeof err);
    assert_non_null(p);
    assert_string_equal(err, "");
    assert_int_equal(p->type, e->type);
    assert_int_equal(p->seq, e->seq);
    assert_int_equal(p->ts_ms, e->ts_ms);
    assert_string_equal(p->session_id, e->session_id);
    if (e->run_id)
        assert_string_equal(p->run_id, e->run_id);
    else
        assert_null(p->run_id);
    /* A token event carries its fields encoded (evt.body): they must read
     * back as the parsed event's. */
    json_t *fields = json_incref(e->fields);
    if (e->body) {
        assert_null(e->fields);
        char *obj = xmalloc(e->body_len + 3);
        snprintf(obj, e->body_len + 3, "{%.*s}", (int)e->body_len, e->body);
        fields = parse_json(obj);
        free(obj);
    }
    assert_true(json_equal(p->fields, fields));
    json_decref(fields);
    assert_memory_equal(p->json, e->json, e->json_len + 1);

    evt_origin o = {.session_id = p->session_id, .run_id = p->run_id, .ts_ms = p->ts_ms};
    evt *again = evt_new(p->type, &o, json_incref(p->fields));
    again->seq = p->seq;
    assert_int_equal(evt_encode(again), 0);
    assert_string_equal(again->json, expected);
    evt_unref(again);
    evt_unref(p);
    evt_unref(e);
}

static void test_type_names(void **state)
{
    (void)state;
    static const char *const names[EVT__COUNT] = {
        "message",         "run_started",        "status",           "token",     "tool_started",
        "tool_progress",   "tool_finished",      "budget",           "guardrail", "error",
        "run_stopped",     "approval_requested", "approval_decided", "repair",    "superseded",
        "input_requested", "input_answered",     "run_queued"};
    for (int i = 0; i < EVT__COUNT; i++) {
        assert_string_equal(evt_type_name((evt_type)i), names[i]);
        evt_type t = EVT__COUNT;
        assert_int_equal(evt_type_parse(names[i], &t), 0);
        assert_int_equal(t, i);
    }
    evt_type t = EVT_TOKEN;
    assert_int_equal(evt_type_parse("tokens", &t), -1);
    assert_int_equal(evt_type_parse(NULL, &t), -1);
    assert_int_equal(t, EVT_TOKEN);
}

static void test_run_queued_event(void **state)
{
    (void)state;
    assert_encodes(evt_run_queued(&origin, "and then?", NULL, false), 1,
                   ENV("run_queued", 1) ",\"message\":\"and then?\",\"mode\":null,"
                                        "\"interrupt\":false}");
    assert_encodes(evt_run_queued(&origin, "stop, do this", "deep", true), 2,
                   ENV("run_queued", 2) ",\"message\":\"stop, do this\",\"mode\":\"deep\","
                                        "\"interrupt\":true}");
}

static void test_message_events(void **state)
{
    (void)state;
    assert_encodes(evt_message(&origin, "m1", "user", "What is 2+2?", NULL, NULL, false), 1,
                   ENV("message", 1) ",\"message_id\":\"m1\",\"role\":\"user\",\"content\":"
                                     "\"What is 2+2?\",\"tool_calls\":null,\"tool_call_id\":null,"
                                     "\"partial\":false}");

    json_t *calls = parse_json("[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
                               "\"calc\",\"arguments\":\"{\\\"expression\\\":\\\"2+2\\\"}\"}}]");
    evt *e = evt_message(&origin, "m2", "assistant", NULL, calls, NULL, false);
    /* The event holds its own copy: later changes by the caller do not show. */
    json_array_append_new(calls, json_string("changed"));
    json_decref(calls);
    assert_encodes(e, 2,
                   ENV("message", 2) ",\"message_id\":\"m2\",\"role\":\"assistant\",\"content\":"
                                     "\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                                     "\"function\":{\"name\":\"calc\",\"arguments\":\"{\\\""
                                     "expression\\\":\\\"2+2\\\"}\"}}],\"tool_call_id\":null,"
                                     "\"partial\":false,\"model\":null}");

    assert_encodes(evt_message(&origin, "m3", "tool", "4", NULL, "c1", false), 3,
                   ENV("message", 3) ",\"message_id\":\"m3\",\"role\":\"tool\",\"content\":\"4\","
                                     "\"tool_calls\":null,\"tool_call_id\":\"c1\","
                                     "\"partial\":false}");
    assert_encodes(evt_message(&origin, "m4", "assistant", "The answ", NULL, NULL, true), 4,
                   ENV("message", 4) ",\"message_id\":\"m4\",\"role\":\"assistant\",\"content\":"
                                     "\"The answ\",\"tool_calls\":null,\"tool_call_id\":null,"
                                     "\"partial\":true,\"model\":null}");

    /* The model is set on assistant messages only. */
    e = evt_message(&origin, "m5", "assistant", "Hi", NULL, NULL, false);
    evt_message_set_model(e, "primary/gpt-4o-mini");
    assert_encodes(e, 5,
                   ENV("message", 5) ",\"message_id\":\"m5\",\"role\":\"assistant\",\"content\":"
                                     "\"Hi\",\"tool_calls\":null,\"tool_call_id\":null,"
                                     "\"partial\":false,\"model\":\"primary/gpt-4o-mini\"}");
    e = evt_message(&origin, "m6", "tool", "4", NULL, "c1", false);
    evt_message_set_model(e, "primary/gpt-4o-mini");
    assert_encodes(e, 6,
                   ENV("message", 6) ",\"message_id\":\"m6\",\"role\":\"tool\",\"content\":\"4\","
                                     "\"tool_calls\":null,\"tool_call_id\":\"c1\","
                                     "\"partial\":false}");
}

static void test_repair_events(void **state)
{
    (void)state;
    json_t *ev = parse_json("{\"from\":\"primary/a\",\"to\":\"fallback-1/b\"}");
    assert_encodes(evt_repair(&origin, "model_unavailable", "fallback_model",
                              "primary/a failed (HTTP 401): switching to fallback-1/b", "ok", ev),
                   7,
                   ENV("repair", 7) ",\"playbook\":\"model_unavailable\",\"action\":"
                                    "\"fallback_model\",\"detail\":\"primary/a failed (HTTP 401): "
                                    "switching to fallback-1/b\",\"outcome\":\"ok\",\"evidence\":"
                                    "{\"from\":\"primary/a\",\"to\":\"fallback-1/b\"}}");
    json_decref(ev);
    assert_encodes(evt_repair(&origin, "context_overflow", "condense_context", "d", "failed", NULL),
                   8,
                   ENV("repair", 8) ",\"playbook\":\"context_overflow\",\"action\":"
                                    "\"condense_context\",\"detail\":\"d\",\"outcome\":"
                                    "\"failed\",\"evidence\":{}}");
}

static void test_superseded_events(void **state)
{
    (void)state;
    json_t *ids = parse_json("[\"msg_a\",\"msg_b\"]");
    assert_encodes(evt_superseded(&origin, ids), 9,
                   ENV("superseded", 9) ",\"message_ids\":[\"msg_a\",\"msg_b\"]}");
    json_decref(ids);
    assert_encodes(evt_superseded(&origin, NULL), 10, ENV("superseded", 10) ",\"message_ids\":[]}");
}

static void test_run_started_events(void **state)
{
    (void)state;
    assert_encodes(
        evt_run_started(&origin, "standard", &mode_preset("standard")->limits, NULL), 5,
        ENV("run_started", 5) ",\"mode\":\"standard\",\"limits\":{\"steps\":10,\"seconds\":120,"
                              "\"tokens\":50000,\"tool_calls\":15,\"retries\":3,\"cost_usd\":"
                              "null},\"continues\":null}");
    mode_limits l = mode_preset("deep")->limits;
    l.cost_usd = 0.1;
    l.steps = MODE_UNLIMITED;
    assert_encodes(evt_run_started(&origin, "deep", &l, "r0"), 6,
                   ENV("run_started", 6) ",\"mode\":\"deep\",\"limits\":{\"steps\":null,"
                                         "\"seconds\":900,\"tokens\":400000,\"tool_calls\":80,"
                                         "\"retries\":6,\"cost_usd\":0.1},\"continues\":\"r0\"}");
}

static void test_status_events(void **state)
{
    (void)state;
    assert_encodes(evt_status(&origin, STATUS_THINKING, NULL), 7,
                   ENV("status", 7) ",\"status\":\"thinking\",\"detail\":null}");
    assert_encodes(evt_status(&origin, STATUS_TOOL_RUNNING, "calc"), 8,
                   ENV("status", 8) ",\"status\":\"tool_running\",\"detail\":\"calc\"}");
    assert_encodes(evt_status(&origin, STATUS_RETRYING, "attempt 2 in 1.0 s"), 9,
                   ENV("status", 9) ",\"status\":\"retrying\",\"detail\":\"attempt 2 in 1.0 s\"}");
}

static void test_token_events(void **state)
{
    (void)state;
    const char text[] = "He said \"hi\"\\\n\t\x01\x1f\x7f/ caf\xc3\xa9 \xe2\x80\xa8";
    assert_encodes(evt_token(&origin, "m1", text, sizeof text - 1), 10,
                   ENV("token", 10) ",\"message_id\":\"m1\",\"text\":\"He said \\\"hi\\\"\\\\\\n"
                                    "\\t\\u0001\\u001F\x7f/ caf\xc3\xa9 \xe2\x80\xa8\"}");
    /* Only len bytes are taken, NUL bytes included. */
    assert_encodes(evt_token(&origin, "m1", "a\0bcdef", 3), 11,
                   ENV("token", 11) ",\"message_id\":\"m1\",\"text\":\"a\\u0000b\"}");
    assert_encodes(evt_token(&origin, "m1", "", 0), 12,
                   ENV("token", 12) ",\"message_id\":\"m1\",\"text\":\"\"}");
}

/* Every event carries its session's hash, the one its lookups by session
 * use; an event without a session hashes the empty id. */
static void test_session_hash(void **state)
{
    (void)state;
    evt *e = evt_token(&origin, "m1", "x", 1);
    assert_true(e->session_hash == id_hash(e->session_id));
    evt_unref(e);
    evt_origin none = {NULL, NULL, 0};
    e = evt_status(&none, STATUS_THINKING, NULL);
    assert_string_equal(e->session_id, "");
    assert_true(e->session_hash == id_hash(""));
    evt_unref(e);
}

/* evt_fields gives a token event's fields, which it carries encoded, as
 * any other event's: a new object each time, NUL bytes kept. */
static void test_fields_of_a_token_event(void **state)
{
    (void)state;
    evt *e = evt_token(&origin, "m1", "a\0\"b", 4);
    assert_null(e->fields);
    json_t *f = evt_fields(e);
    assert_string_equal(json_string_value(json_object_get(f, "message_id")), "m1");
    assert_int_equal(json_string_length(json_object_get(f, "text")), 4);
    assert_memory_equal(json_string_value(json_object_get(f, "text")), "a\0\"b", 4);
    assert_int_equal(json_object_size(f), 2);
    json_decref(f);
    evt_unref(e);

    evt *st = evt_status(&origin, STATUS_THINKING, NULL);
    json_t *g = evt_fields(st);
    assert_ptr_equal(g, st->fields);
    json_decref(g);
    evt_unref(st);
}

/* Returns the text field of a token event of s[0..len), read back from
 * the event's encoding; the caller frees. */
static char *token_text(const char *s, size_t len)
{
    evt *e = evt_token(&origin, "m1", s, len);
    e->seq = 1;
    assert_int_equal(evt_encode(e), 0);
    json_t *j = parse_json(e->json);
    json_t *text = json_object_get(j, "text");
    char *out = xstrndup(json_string_value(text), json_string_length(text));
    json_decref(j);
    evt_unref(e);
    return out;
}

static void assert_repaired(const char *in, size_t len, const char *expected)
{
    char *got = token_text(in, len);
    assert_string_equal(got, expected);
    free(got);
}

#define FFFD "\xef\xbf\xbd"

static void test_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    assert_repaired("a\xff"
                    "b",
                    3, "a" FFFD "b");
    /* A character cut short is one replacement, at the end or in the middle. */
    assert_repaired("x\xe2\x82", 3, "x" FFFD);
    assert_repaired("\xe2\x82y", 3, FFFD "y");
    assert_repaired("\xf0\x9f\x98", 3, FFFD);
    /* Overlong forms, surrogates and code points past U+10FFFF are invalid
     * byte by byte, as in browsers' decoders. */
    assert_repaired("\xc0\xaf", 2, FFFD FFFD);
    assert_repaired("\xe0\x80\xaf", 3, FFFD FFFD FFFD);
    assert_repaired("\xed\xa0\x80", 3, FFFD FFFD FFFD);
    assert_repaired("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);
    assert_repaired("\x80\xbf", 2, FFFD FFFD);
    /* Valid text around and between is kept as it is. */
    assert_repaired("\xf0\x9f\x98\x80\xff\xc3\xa9", 7, "\xf0\x9f\x98\x80" FFFD "\xc3\xa9");
    assert_repaired("\xed\x9f\xbf\xf4\x8f\xbf\xbf", 8, "\xed\x9f\xbf\xf4\x8f\xbf\xbf");

    evt *e = evt_token(&origin, "m\xff", "\xfe", 1);
    assert_encodes(e, 13, ENV("token", 13) ",\"message_id\":\"m" FFFD "\",\"text\":\"" FFFD "\"}");
}

static void test_tool_events(void **state)
{
    (void)state;
    json_t *args = parse_json("{\"expression\":\"2+2\",\"precise\":true}");
    assert_encodes(evt_tool_started(&origin, "x1", 2, "builtin", "calc", args), 14,
                   ENV("tool_started", 14) ",\"execution_id\":\"x1\",\"step\":2,\"server\":"
                                           "\"builtin\",\"tool\":\"calc\",\"arguments\":{"
                                           "\"expression\":\"2+2\",\"precise\":true}}");
    json_decref(args);
    assert_encodes(evt_tool_started(&origin, "x2", 3, "fake", "lookup", NULL), 15,
                   ENV("tool_started", 15) ",\"execution_id\":\"x2\",\"step\":3,\"server\":"
                                           "\"fake\",\"tool\":\"lookup\",\"arguments\":{}}");

    assert_encodes(evt_tool_progress(&origin, "x2", 3, 10, "page 3 of 10"), 16,
                   ENV("tool_progress", 16) ",\"execution_id\":\"x2\",\"progress\":3,\"total\":10,"
                                            "\"message\":\"page 3 of 10\"}");
    assert_encodes(evt_tool_progress(&origin, "x2", 0.25, -1, NULL), 17,
                   ENV("tool_progress", 17) ",\"execution_id\":\"x2\",\"progress\":0.25,"
                                            "\"total\":null,\"message\":null}");

    assert_encodes(evt_tool_progress(&origin, "x2", NAN, INFINITY, ""), 29,
                   ENV("tool_progress", 29) ",\"execution_id\":\"x2\",\"progress\":null,"
                                            "\"total\":null,\"message\":\"\"}");

    assert_encodes(evt_tool_finished(&origin, "x1", 2, "builtin", "calc", "ok", "4", NULL, 12), 18,
                   ENV("tool_finished", 18) ",\"execution_id\":\"x1\",\"step\":2,\"server\":"
                                            "\"builtin\",\"tool\":\"calc\",\"status\":\"ok\","
                                            "\"result\":\"4\",\"truncated\":false,\"error\":null,"
                                            "\"duration_ms\":12}");
    assert_encodes(evt_tool_finished(&origin, "x3", 4, "builtin", "calc", "error",
                                     "division by zero", "division by zero", 3),
                   19,
                   ENV("tool_finished", 19) ",\"execution_id\":\"x3\",\"step\":4,\"server\":"
                                            "\"builtin\",\"tool\":\"calc\",\"status\":\"error\","
                                            "\"result\":\"division by zero\",\"truncated\":false,"
                                            "\"error\":\"division by zero\",\"duration_ms\":3}");
    assert_encodes(
        evt_tool_finished(&origin, "x4", 5, "fake", "slow", "cancelled", NULL, NULL, 60000), 20,
        ENV("tool_finished", 20) ",\"execution_id\":\"x4\",\"step\":5,\"server\":"
                                 "\"fake\",\"tool\":\"slow\",\"status\":\"cancelled\","
                                 "\"result\":\"\",\"truncated\":false,\"error\":null,"
                                 "\"duration_ms\":60000}");
}

/* Builds a result of `before` ASCII bytes, then tail; returns the result
 * field of a tool_finished event made from it and its truncated flag. */
static size_t cut_result(size_t before, const char *tail, bool *truncated, char **out)
{
    size_t tl = strlen(tail);
    char *s = xmalloc(before + tl + 1);
    memset(s, 'a', before);
    memcpy(s + before, tail, tl + 1);
    evt *e = evt_tool_finished(&origin, "x", 1, "builtin", "calc", "ok", s, NULL, 1);
    free(s);
    json_t *r = json_object_get(e->fields, "result");
    *truncated = json_is_true(json_object_get(e->fields, "truncated"));
    size_t len = json_string_length(r);
    *out = xstrndup(json_string_value(r), len);
    evt_unref(e);
    return len;
}

static void test_result_cut_at_character_boundary(void **state)
{
    (void)state;
    bool t;
    char *r;
    assert_int_equal(EVT_RESULT_MAX, 16384);
    /* Exactly the limit: kept whole. */
    assert_int_equal(cut_result(16384, "", &t, &r), 16384);
    assert_false(t);
    free(r);
    assert_int_equal(cut_result(16382, "\xc3\xa9", &t, &r), 16384);
    assert_false(t);
    assert_memory_equal(r + 16382, "\xc3\xa9", 2);
    free(r);
    /* One byte over: cut to the limit. */
    assert_int_equal(cut_result(16385, "", &t, &r), 16384);
    assert_true(t);
    free(r);
    /* A two-byte character straddling the limit is left out entirely. */
    assert_int_equal(cut_result(16383, "\xc3\xa9tail", &t, &r), 16383);
    assert_true(t);
    assert_int_equal(r[16382], 'a');
    free(r);
    /* Three- and four-byte characters straddling the limit. */
    assert_int_equal(cut_result(16382, "\xe2\x82\xac", &t, &r), 16382);
    assert_true(t);
    free(r);
    assert_int_equal(cut_result(16381, "\xf0\x9f\x98\x80!", &t, &r), 16381);
    assert_true(t);
    free(r);
    /* A character that ends exactly at the limit stays. */
    assert_int_equal(cut_result(16380, "\xf0\x9f\x98\x80!", &t, &r), 16384);
    assert_true(t);
    assert_memory_equal(r + 16380, "\xf0\x9f\x98\x80", 4);
    free(r);
    /* Repaired bytes count with their replacement's length. */
    assert_int_equal(cut_result(16383, "\xff", &t, &r), 16383);
    assert_true(t);
    free(r);
    assert_int_equal(cut_result(16381, "\xff", &t, &r), 16384);
    assert_false(t);
    assert_memory_equal(r + 16381, FFFD, 3);
    free(r);
    /* A large result is cut the same way. */
    assert_int_equal(cut_result(1024 * 1024, "", &t, &r), 16384);
    assert_true(t);
    free(r);
}

static void test_budget_event(void **state)
{
    (void)state;
    budget b;
    budget_init(&b, &mode_preset("quick")->limits, NULL, 5000);
    budget_on_step(&b);
    budget_on_tokens(&b, 1200, 300);
    budget_on_tool_call(&b);
    budget_on_tool_call(&b);
    budget_on_tool_call(&b);
    budget_tick(&b, 9500);
    assert_encodes(evt_budget(&origin, &b), 21,
                   ENV("budget", 21) ",\"limits\":{\"steps\":3,\"seconds\":30,\"tokens\":8000,"
                                     "\"tool_calls\":3,\"retries\":1,\"cost_usd\":null},\"usage\":"
                                     "{\"steps\":1,\"seconds\":4.5,\"tokens\":1500,\"tool_calls\":"
                                     "3,\"retries\":0,\"cost_usd\":0.0,\"waiting_seconds\":"
                                     "0.0},\"warnings\":["
                                     "\"tool_calls\"]}");
}

static void test_guardrail_event(void **state)
{
    (void)state;
    guard_verdict v = {
        .check = GUARD_LOOP,
        .action = GUARD_STOP,
        .reason = STOP_LOOP_DETECTED,
        .detail = "calc was called 4 times with {\"expression\":\"1/0\"}",
        .nudge = NULL,
        .evidence =
            parse_json("{\"tool\":\"calc\",\"arguments\":{\"expression\":\"1/0\"},\"count\":4}"),
    };
    assert_encodes(evt_guardrail(&origin, &v), 22,
                   ENV("guardrail", 22) ",\"check\":\"loop\",\"action\":\"stop\",\"detail\":"
                                        "\"calc was called 4 times with {\\\"expression\\\":"
                                        "\\\"1/0\\\"}\",\"evidence\":{\"tool\":\"calc\","
                                        "\"arguments\":{\"expression\":\"1/0\"},\"count\":4}}");
    json_decref(v.evidence);
    v.check = GUARD_REPEATED_FAILURE;
    v.action = GUARD_WARN;
    v.detail = "2 tool calls failed in a row";
    v.evidence = NULL;
    assert_encodes(evt_guardrail(&origin, &v), 23,
                   ENV("guardrail", 23) ",\"check\":\"repeated_failure\",\"action\":\"warn\","
                                        "\"detail\":\"2 tool calls failed in a row\","
                                        "\"evidence\":{}}");
    v.check = GUARD_NO_PROGRESS;
    v.detail = "empty turn";
    assert_encodes(evt_guardrail(&origin, &v), 24,
                   ENV("guardrail", 24) ",\"check\":\"no_progress\",\"action\":\"warn\","
                                        "\"detail\":\"empty turn\",\"evidence\":{}}");
}

static void test_error_events(void **state)
{
    (void)state;
    assert_encodes(evt_error(&origin, "upstream_unavailable",
                             "HTTP 503 from http://127.0.0.1:9/v1/chat/completions", true, "m7"),
                   25,
                   ENV("error", 25) ",\"code\":\"upstream_unavailable\",\"message\":\"HTTP 503 "
                                    "from http://127.0.0.1:9/v1/chat/completions\",\"retryable\":"
                                    "true,\"message_id\":\"m7\"}");
    assert_encodes(evt_error(&origin, "llm_error", "HTTP 401: Incorrect API key", false, NULL), 26,
                   ENV("error", 26) ",\"code\":\"llm_error\",\"message\":\"HTTP 401: Incorrect "
                                    "API key\",\"retryable\":false,\"message_id\":null}");
}

/* The approval events in their exact wire form (docs/events.md). */
static void test_approval_events(void **state)
{
    (void)state;
    json_t *args = parse_json("{\"path\":\"/tmp/x\"}");
    json_t *ann = parse_json("{\"readOnlyHint\":false}");
    assert_encodes(evt_approval_requested(&origin, "apr_1", "exe_1", 2, "files", "delete", args,
                                          "the tool is not marked read-only", ann, TS_MS + 900000),
                   30,
                   ENV("approval_requested", 30) ",\"approval_id\":\"apr_1\",\"execution_id\":"
                                                 "\"exe_1\",\"step\":2,\"server\":\"files\","
                                                 "\"tool\":\"delete\",\"arguments\":{\"path\":"
                                                 "\"/tmp/x\"},\"reason\":\"the tool is not "
                                                 "marked read-only\",\"annotations\":{"
                                                 "\"readOnlyHint\":false},\"expires_at\":"
                                                 "\"2026-11-24T10:15:00.123Z\"}");
    assert_encodes(evt_approval_requested(&origin, "apr_2", "exe_2", 1, "builtin", "calc", NULL,
                                          "rule calc", NULL, TS_MS),
                   31,
                   ENV("approval_requested", 31) ",\"approval_id\":\"apr_2\",\"execution_id\":"
                                                 "\"exe_2\",\"step\":1,\"server\":\"builtin\","
                                                 "\"tool\":\"calc\",\"arguments\":{},\"reason\":"
                                                 "\"rule calc\",\"annotations\":null,"
                                                 "\"expires_at\":\"2026-11-24T10:00:00.123Z\"}");
    assert_encodes(evt_approval_decided(&origin, "apr_1", "denied", "alice", "not now", "run"), 32,
                   ENV("approval_decided", 32) ",\"approval_id\":\"apr_1\",\"decision\":"
                                               "\"denied\",\"decided_by\":\"alice\",\"reason\":"
                                               "\"not now\",\"remember\":\"run\"}");
    assert_encodes(evt_approval_decided(&origin, "apr_2", "expired", "timeout", NULL, "once"), 33,
                   ENV("approval_decided", 33) ",\"approval_id\":\"apr_2\",\"decision\":"
                                               "\"expired\",\"decided_by\":\"timeout\","
                                               "\"reason\":null,\"remember\":\"once\"}");
    json_decref(args);
    json_decref(ann);
}

/* The question events in their exact wire form (docs/events.md). */
static void test_input_events(void **state)
{
    (void)state;
    json_t *schema = parse_json("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":"
                                "\"string\"}},\"required\":[\"name\"]}");
    json_t *content = parse_json("{\"name\":\"Ada\"}");
    assert_encodes(evt_input_requested(&origin, "inp_1", "exe_1", "everything", "Your name?",
                                       schema, TS_MS + 900000),
                   40,
                   ENV("input_requested", 40) ",\"input_id\":\"inp_1\",\"execution_id\":"
                                              "\"exe_1\",\"server\":\"everything\",\"message\":"
                                              "\"Your name?\",\"schema\":{\"type\":\"object\","
                                              "\"properties\":{\"name\":{\"type\":\"string\"}},"
                                              "\"required\":[\"name\"]},\"expires_at\":"
                                              "\"2026-11-24T10:15:00.123Z\"}");
    assert_encodes(evt_input_answered(&origin, "inp_1", "accept", "alice", content), 41,
                   ENV("input_answered", 41) ",\"input_id\":\"inp_1\",\"action\":\"accept\","
                                             "\"answered_by\":\"alice\",\"content\":{\"name\":"
                                             "\"Ada\"}}");
    assert_encodes(evt_input_answered(&origin, "inp_2", "cancel", "timeout", NULL), 42,
                   ENV("input_answered", 42) ",\"input_id\":\"inp_2\",\"action\":\"cancel\","
                                             "\"answered_by\":\"timeout\"}");
    json_decref(schema);
    json_decref(content);
}

static void test_run_stopped_events(void **state)
{
    (void)state;
    budget_usage u = {.steps = 10,
                      .seconds = 61.2345,
                      .tokens = 9000,
                      .tool_calls = 9,
                      .retries = 1,
                      .cost_usd = 0.0125};
    json_t *actions = stop_actions(STOP_MAX_STEPS, "standard");
    json_t *diag = json_pack("{s:s, s:s, s:{s:s}}", "playbook", "budget", "summary", "S",
                             "evidence", "dimension", "steps");
    assert_encodes(
        evt_run_stopped(&origin, STOP_MAX_STEPS, "used 10 of 10 steps",
                        stop_recovery(STOP_MAX_STEPS, "standard"), actions, diag, true, &u),
        27,
        ENV("run_stopped", 27) ",\"reason\":\"max_steps\",\"detail\":\"used 10 of 10 steps\","
                               "\"recovery_suggestion\":\"The run used every step its mode "
                               "allows. Continue to give it more steps, or switch to deep mode "
                               "for a larger budget.\",\"actions\":[{\"kind\":\"continue\","
                               "\"label\":\"Continue\"},{\"kind\":\"switch_mode\",\"mode\":"
                               "\"deep\",\"label\":\"Switch to deep mode\"}],\"diagnosis\":"
                               "{\"playbook\":\"budget\",\"summary\":\"S\",\"evidence\":"
                               "{\"dimension\":\"steps\"}},\"wrapped_up\":true,"
                               "\"usage\":{\"steps\":10,\"seconds\":61.235,\"tokens\":9000,"
                               "\"tool_calls\":9,\"retries\":1,\"cost_usd\":0.0125,"
                               "\"waiting_seconds\":0.0}}");
    json_decref(actions);
    json_decref(diag);
    budget_usage zero = {0};
    assert_encodes(evt_run_stopped(&origin, STOP_COMPLETED, NULL, NULL, NULL, NULL, false, &zero),
                   28,
                   ENV("run_stopped", 28) ",\"reason\":\"completed\",\"detail\":null,"
                                          "\"recovery_suggestion\":null,\"actions\":[],"
                                          "\"wrapped_up\":false,\"usage\":{\"steps\":0,"
                                          "\"seconds\":0.0,\"tokens\":0,\"tool_calls\":0,"
                                          "\"retries\":0,\"cost_usd\":0.0,"
                                          "\"waiting_seconds\":0.0}}");
}

static void test_envelope_variants(void **state)
{
    (void)state;
    evt_origin o = {.session_id = "s\"2\\", .run_id = NULL, .ts_ms = 0};
    assert_encodes(evt_new(EVT_STATUS, &o, NULL), 9007199254740993,
                   "{\"type\":\"status\",\"seq\":9007199254740993,\"session_id\":\"s\\\"2\\\\\","
                   "\"run_id\":null,\"ts\":\"1970-01-01T00:00:00.000Z\"}");
}

static void test_encode_needs_seq_and_runs_once(void **state)
{
    (void)state;
    evt *e = evt_status(&origin, STATUS_STOPPING, NULL);
    assert_int_equal(evt_encode(e), -1);
    assert_null(e->json);
    e->seq = 3;
    assert_int_equal(evt_encode(e), 0);
    char *first = e->json;
    /* Later calls keep the text already made, even if seq changed. */
    e->seq = 4;
    assert_int_equal(evt_encode(e), 0);
    assert_ptr_equal(e->json, first);
    assert_string_equal(e->json, ENV("status", 3) ",\"status\":\"stopping\",\"detail\":null}");
    evt_unref(e);
}

static void expect_parse_error(const char *text, const char *expected)
{
    char err[256] = "";
    evt *e = evt_parse(text, strlen(text), err, sizeof err);
    assert_null(e);
    assert_string_equal(err, expected);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *tail =
        ",\"session_id\":\"s1\",\"run_id\":null,\"ts\":\"2026-11-24T10:00:00.123Z\"}";
    char text[512];
    expect_parse_error("not json",
                       "invalid JSON at line 1 column 3: '[' or '{' expected near 'not'");
    expect_parse_error("{\"type\":\"status\",\"type\":\"token\"}",
                       "invalid JSON at line 1 column 23: duplicate object key near '\"type\"'");
    expect_parse_error("[1]", "an event must be a JSON object");
    expect_parse_error("{\"seq\":1}", "type must be a string");
    expect_parse_error("{\"type\":7,\"seq\":1}", "type must be a string");
    expect_parse_error("{\"type\":\"tokens\",\"seq\":1}", "unknown event type \"tokens\"");
    expect_parse_error("{\"type\":\"token\"}", "seq must be a positive integer");
    expect_parse_error("{\"type\":\"token\",\"seq\":0}", "seq must be a positive integer");
    expect_parse_error("{\"type\":\"token\",\"seq\":1.0}", "seq must be a positive integer");
    expect_parse_error("{\"type\":\"token\",\"seq\":\"1\"}", "seq must be a positive integer");
    expect_parse_error("{\"type\":\"token\",\"seq\":1,\"session_id\":null}",
                       "session_id must be a string");
    expect_parse_error("{\"type\":\"token\",\"seq\":1,\"session_id\":\"s1\"}",
                       "run_id must be a string or null");
    expect_parse_error("{\"type\":\"token\",\"seq\":1,\"session_id\":\"s1\",\"run_id\":5}",
                       "run_id must be a string or null");
    expect_parse_error("{\"type\":\"token\",\"seq\":1,\"session_id\":\"s1\",\"run_id\":null}",
                       "ts must be an RFC 3339 time");
    expect_parse_error("{\"type\":\"token\",\"seq\":1,\"session_id\":\"s1\",\"run_id\":null,"
                       "\"ts\":\"yesterday\"}",
                       "ts must be an RFC 3339 time");
    expect_parse_error("{\"type\":\"token\",\"seq\":1,\"session_id\":\"s1\",\"run_id\":null,"
                       "\"ts\":1795514400123}",
                       "ts must be an RFC 3339 time");
    /* A good envelope parses; a NULL err is allowed for bad input. */
    snprintf(text, sizeof text, "{\"type\":\"token\",\"seq\":1%s", tail);
    evt *e = evt_parse(text, strlen(text), NULL, 0);
    assert_non_null(e);
    assert_null(e->run_id);
    assert_int_equal(json_object_size(e->fields), 0);
    evt_unref(e);
    assert_null(evt_parse("{", 1, NULL, 0));
}

static void test_parse_keeps_fields_in_order(void **state)
{
    (void)state;
    const char *text = "{\"b\":1,\"type\":\"token\",\"seq\":42,\"session_id\":\"s9\",\"a\":[2],"
                       "\"run_id\":\"r9\",\"ts\":\"2026-11-24T10:00:00Z\",\"text\":\"x\"}";
    /* The length given is honoured: the text need not be NUL-terminated. */
    size_t len = strlen(text);
    char *copy = xmalloc(len);
    memcpy(copy, text, len);
    evt *e = evt_parse(copy, len, NULL, 0);
    free(copy);
    assert_non_null(e);
    assert_int_equal(e->type, EVT_TOKEN);
    assert_int_equal(e->seq, 42);
    assert_int_equal(e->ts_ms, TS_MS - 123);
    assert_string_equal(e->session_id, "s9");
    assert_string_equal(e->run_id, "r9");
    assert_string_equal(e->json, text);
    assert_int_equal(e->json_len, strlen(text));
    char *f = json_dumps(e->fields, JSON_COMPACT);
    assert_string_equal(f, "{\"b\":1,\"a\":[2],\"text\":\"x\"}");
    free(f);
    /* encode keeps the parsed text. */
    assert_int_equal(evt_encode(e), 0);
    assert_string_equal(e->json, text);
    evt_unref(e);
}

static void test_refcount(void **state)
{
    (void)state;
    evt *e = evt_token(&origin, "m1", "hi", 2);
    assert_ptr_equal(evt_ref(e), e);
    assert_ptr_equal(evt_ref(e), e);
    assert_int_equal(atomic_load(&e->refs), 3);
    evt_unref(e);
    evt_unref(e);
    assert_int_equal(atomic_load(&e->refs), 1);
    evt_unref(e); /* freed: ASan reports a leak or a double free otherwise */
    evt_unref(NULL);
}

#define REF_THREADS 8
#define REF_ROUNDS  20000

static void *ref_worker(void *arg)
{
    evt *e = arg;
    for (int i = 0; i < REF_ROUNDS; i++) {
        evt_ref(e);
        evt_unref(e);
    }
    evt_unref(e); /* the reference this thread was given */
    return NULL;
}

static void test_refcount_across_threads(void **state)
{
    (void)state;
    evt *e = evt_token(&origin, "m1", "shared", 6);
    e->seq = 1;
    assert_int_equal(evt_encode(e), 0);
    pthread_t t[REF_THREADS];
    for (int i = 0; i < REF_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, ref_worker, evt_ref(e)), 0);
    for (int i = 0; i < REF_THREADS; i++) pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&e->refs), 1);
    evt_unref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_message_events),
        cmocka_unit_test(test_run_queued_event),
        cmocka_unit_test(test_repair_events),
        cmocka_unit_test(test_superseded_events),
        cmocka_unit_test(test_run_started_events),
        cmocka_unit_test(test_status_events),
        cmocka_unit_test(test_token_events),
        cmocka_unit_test(test_session_hash),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
        cmocka_unit_test(test_tool_events),
        cmocka_unit_test(test_result_cut_at_character_boundary),
        cmocka_unit_test(test_budget_event),
        cmocka_unit_test(test_approval_events),
        cmocka_unit_test(test_input_events),
        cmocka_unit_test(test_guardrail_event),
        cmocka_unit_test(test_error_events),
        cmocka_unit_test(test_run_stopped_events),
        cmocka_unit_test(test_envelope_variants),
        cmocka_unit_test(test_encode_needs_seq_and_runs_once),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_keeps_fields_in_order),
        cmocka_unit_test(test_fields_of_a_token_event),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_refcount_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
