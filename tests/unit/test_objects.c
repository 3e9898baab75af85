/*
 * Unit tests for store/objects: the API objects built from store rows by
 * the row lists of store.h. The expected texts pin every member's name,
 * order and null rule (a default title, [] and {} for unset JSON columns,
 * a running tool's null duration, hidden columns left out).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/objects.h"

/* Asserts the compact text of o (a new reference, released here). */
static void assert_json(json_t *o, const char *want)
{
    char *got = json_dumps(o, JSON_COMPACT);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    json_decref(o);
}

static const char *const want[] = {
    /* empty session */
    "{\"id\":null,\"title\":\"New "
    "chat\",\"mode\":null,\"status\":null,\"active_run_id\":null,\"last_seq\":0,\"created_at\":"
    "null,\"updated_at\":null,\"forked_from\":null,\"last_run\":null,\"queued_run_id\":null}",
    /* session with its last run */
    "{\"id\":\"s1\",\"title\":\"Hello\",\"mode\":\"quick\",\"status\":\"idle\",\"active_run_id\":"
    "\"r1\",\"last_seq\":42,\"created_at\":\"2023-11-14T22:13:20.123Z\",\"updated_at\":\"2023-11-"
    "14T22:13:21.000Z\",\"forked_from\":{\"session_id\":\"s0\",\"message_id\":\"m9\"},"
    "\"last_run\":{\"id\":\"r1\",\"session_id\":\"s1\",\"mode\":\"deep\","
    "\"status\":\"stopped\",\"stop_reason\":\"done\",\"stop_tone\":null,\"stop_detail\":\"d\","
    "\"recovery_suggestion\":"
    "\"x\",\"actions\":[\"retry\"],\"diagnosis\":null,\"wrapped_up\":true,\"limits\":{\"steps\":3},"
    "\"usage\":{\"cost_"
    "usd\":0.5},\"started_at\":\"2023-11-14T22:13:20.000Z\",\"ended_at\":\"2023-11-14T22:13:22."
    "000Z\",\"continues\":\"r0\"},\"queued_run_id\":\"r2\"}",
    /* empty run */
    "{\"id\":null,\"session_id\":null,\"mode\":null,\"status\":null,\"stop_reason\":null,\"stop_"
    "tone\":null,\"stop_"
    "detail\":null,\"recovery_suggestion\":null,\"actions\":[],\"diagnosis\":null,\"wrapped_up\":"
    "false,\"limits\":{},"
    "\"usage\":{},\"started_at\":null,\"ended_at\":null,\"continues\":null}",
    /* stopped run */
    "{\"id\":\"r1\",\"session_id\":\"s1\",\"mode\":\"deep\",\"status\":\"stopped\",\"stop_reason\":"
    "\"done\",\"stop_tone\":null,\"stop_detail\":\"d\",\"recovery_suggestion\":\"x\",\"actions\":["
    "\"retry\"],"
    "\"diagnosis\":{\"playbook\":\"loop\"},\"wrapped_up\":true,\"limits\":{\"steps\":3},\"usage\":{"
    "\"cost_usd\":0.5},\"started_at\":"
    "\"2023-11-14T22:13:20.000Z\",\"ended_at\":\"2023-11-14T22:13:22.000Z\",\"continues\":\"r0\"}",
    /* empty message */
    "{\"id\":null,\"session_id\":null,\"run_id\":null,\"role\":null,\"content\":null,\"tool_"
    "calls\":null,\"tool_call_id\":null,\"partial\":false,\"model\":null,\"superseded\":false,"
    "\"created_at\":null}",
    /* tool-calling message */
    "{\"id\":\"m1\",\"session_id\":\"s1\",\"run_id\":\"r1\",\"role\":\"assistant\",\"content\":"
    "\"hi\",\"tool_calls\":[{\"id\":\"c1\"}],\"tool_call_id\":\"c1\",\"partial\":true,\"model\":"
    "null,"
    "\"superseded\":true,\"created_at\":\"2023-11-14T22:13:20.500Z\"}",
    /* empty tool execution */
    "{\"id\":null,\"session_id\":null,\"run_id\":null,\"step\":0,\"server\":null,\"tool\":null,"
    "\"arguments\":{},\"status\":null,\"result\":null,\"error\":null,\"started_at\":null,"
    "\"finished_at\":null,\"duration_ms\":null}",
    /* finished tool execution */
    "{\"id\":\"t1\",\"session_id\":\"s1\",\"run_id\":\"r1\",\"step\":2,\"server\":\"calc\","
    "\"tool\":\"add\",\"arguments\":{\"a\":1},\"status\":\"ok\",\"result\":\"3\",\"error\":null,"
    "\"started_at\":\"2023-11-14T22:13:20.000Z\",\"finished_at\":\"2023-11-14T22:13:20.007Z\","
    "\"duration_ms\":7}",
    /* running tool execution */
    "{\"id\":\"t2\",\"session_id\":null,\"run_id\":null,\"step\":1,\"server\":null,\"tool\":null,"
    "\"arguments\":{},\"status\":\"running\",\"result\":null,\"error\":null,\"started_at\":\"2023-"
    "11-14T22:13:20.000Z\",\"finished_at\":null,\"duration_ms\":null}",
};

static void test_session(void **state)
{
    (void)state;
    store_session empty = {0};
    store_session s = {.id = "s1",
                       .owner = "alice",
                       .title = "Hello",
                       .mode = "quick",
                       .status = "idle",
                       .active_run_id = "r1",
                       .last_seq = 42,
                       .created_ms = 1700000000123,
                       .updated_ms = 1700000001000,
                       .forked_from_session = "s0",
                       .forked_from_message = "m9",
                       .queued_run_id = "r2",
                       .queued_message = "and then?",
                       .queued_ms = 1700000001500};
    store_run r = {.id = "r1",
                   .session_id = "s1",
                   .mode = "deep",
                   .status = "stopped",
                   .stop_reason = "done",
                   .stop_detail = "d",
                   .recovery_suggestion = "x",
                   .actions = json_pack("[s]", "retry"),
                   .wrapped_up = true,
                   .limits = json_pack("{s:i}", "steps", 3),
                   .usage = json_pack("{s:f}", "cost_usd", 0.5),
                   .owner_instance = "i1",
                   .continues = "r0",
                   .heartbeat_ms = 5,
                   .started_ms = 1700000000000,
                   .ended_ms = 1700000002000};
    assert_json(objects_session(&empty, NULL), want[0]);
    assert_json(objects_session(&s, &r), want[1]);
    /* An empty title is shown as the default too. */
    s.title = "";
    json_t *o = objects_session(&s, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "title")), "New chat");
    json_decref(o);
    json_decref(r.actions);
    json_decref(r.limits);
    json_decref(r.usage);
}

static void test_run(void **state)
{
    (void)state;
    store_run empty = {0};
    store_run r = {.id = "r1",
                   .session_id = "s1",
                   .mode = "deep",
                   .status = "stopped",
                   .stop_reason = "done",
                   .stop_detail = "d",
                   .recovery_suggestion = "x",
                   .actions = json_pack("[s]", "retry"),
                   .diagnosis = json_pack("{s:s}", "playbook", "loop"),
                   .wrapped_up = true,
                   .limits = json_pack("{s:i}", "steps", 3),
                   .usage = json_pack("{s:f}", "cost_usd", 0.5),
                   .owner_instance = "i1",
                   .continues = "r0",
                   .heartbeat_ms = 5,
                   .started_ms = 1700000000000,
                   .ended_ms = 1700000002000};
    assert_json(objects_run(&empty), want[2]);
    assert_json(objects_run(&r), want[3]);
    /* A known reason carries its tone right after it. */
    static const char *const tones[][2] = {{"completed", "good"},
                                           {"user_stopped", "neutral"},
                                           {"max_steps", "warn"},
                                           {"loop_detected", "bad"}};
    for (size_t i = 0; i < 4; i++) {
        r.stop_reason = (char *)tones[i][0];
        json_t *o = objects_run(&r);
        char *text = json_dumps(o, JSON_COMPACT);
        char want_part[96];
        snprintf(want_part, sizeof want_part, "\"stop_reason\":\"%s\",\"stop_tone\":\"%s\",",
                 tones[i][0], tones[i][1]);
        if (!strstr(text, want_part)) fail_msg("%s not in %s", want_part, text);
        free(text);
        json_decref(o);
    }
    json_decref(r.actions);
    json_decref(r.diagnosis);
    json_decref(r.limits);
    json_decref(r.usage);
}

static void test_message(void **state)
{
    (void)state;
    store_message empty = {0};
    store_message m = {.id = "m1",
                       .session_id = "s1",
                       .run_id = "r1",
                       .role = "assistant",
                       .content = "hi",
                       .tool_call_id = "c1",
                       .tool_calls = json_pack("[{s:s}]", "id", "c1"),
                       .partial = true,
                       .superseded = true,
                       .created_ms = 1700000000500};
    assert_json(objects_message(&empty), want[4]);
    assert_json(objects_message(&m), want[5]);
    json_decref(m.tool_calls);
}

static void test_tool_exec(void **state)
{
    (void)state;
    store_tool_exec empty = {0};
    store_tool_exec done = {.id = "t1",
                            .session_id = "s1",
                            .run_id = "r1",
                            .server = "calc",
                            .tool = "add",
                            .status = "ok",
                            .result = "3",
                            .step = 2,
                            .arguments = json_pack("{s:i}", "a", 1),
                            .started_ms = 1700000000000,
                            .finished_ms = 1700000000007,
                            .duration_ms = 7};
    /* A duration set on a running tool is not shown. */
    store_tool_exec running = {
        .id = "t2", .status = "running", .step = 1, .started_ms = 1700000000000, .duration_ms = 9};
    assert_json(objects_tool_exec(&empty), want[6]);
    assert_json(objects_tool_exec(&done), want[7]);
    assert_json(objects_tool_exec(&running), want[8]);
    json_decref(done.arguments);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_tool_exec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
