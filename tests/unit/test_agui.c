/* Unit tests for core/agui: the RunAgentInput reader and the translation
 * of chatplane events into AG-UI frames, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/agui.h"

/* ---- RunAgentInput ---- */

static int parse(const char *text, agui_input *in, char *err)
{
    err[0] = '\0';
    return agui_input_parse(text, strlen(text), in, err, 256);
}

static void test_input_full(void **state)
{
    (void)state;
    agui_input in;
    char err[256];
    assert_int_equal(parse("{\"threadId\":\"t-1\",\"runId\":\"r1\",\"state\":{},\"tools\":[],"
                           "\"context\":[],\"forwardedProps\":{\"mode\":\"deep\"},\"messages\":["
                           "{\"id\":\"1\",\"role\":\"user\",\"content\":\"first\"},"
                           "{\"id\":\"2\",\"role\":\"assistant\",\"content\":\"ok\"},"
                           "{\"id\":\"3\",\"role\":\"user\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"a \"},{\"type\":\"text\",\"text\":\"b\"}]}]}",
                           &in, err),
                     0);
    assert_string_equal(in.thread_id, "t-1");
    assert_string_equal(in.run_id, "r1");
    assert_string_equal(in.mode, "deep");
    assert_string_equal(in.message, "a b");
    assert_null(in.context);
    assert_int_equal(in.nresume, 0);
    agui_input_cleanup(&in);
}

/* A user message that an assistant or tool message follows was answered:
 * there is no new message (a resume carries none). */
static void test_input_answered_and_resume(void **state)
{
    (void)state;
    agui_input in;
    char err[256];
    assert_int_equal(
        parse("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":["
              "{\"id\":\"1\",\"role\":\"user\",\"content\":\"x\"},"
              "{\"id\":\"2\",\"role\":\"tool\",\"content\":\"y\",\"toolCallId\":\"c\"}],"
              "\"resume\":[{\"interruptId\":\"apr_1\",\"status\":\"resolved\","
              "\"payload\":{\"approved\":true}},{\"interruptId\":\"apr_2\","
              "\"status\":\"resolved\",\"payload\":{\"approved\":false,\"reason\":"
              "\"no\"}},{\"interruptId\":\"apr_3\",\"status\":\"cancelled\"}]}",
              &in, err),
        0);
    assert_null(in.message);
    assert_null(in.mode);
    assert_int_equal(in.nresume, 3);
    assert_string_equal(in.resume[0].interrupt_id, "apr_1");
    assert_true(in.resume[0].approved);
    assert_null(in.resume[0].reason);
    assert_false(in.resume[1].approved);
    assert_string_equal(in.resume[1].reason, "no");
    assert_string_equal(in.resume[2].interrupt_id, "apr_3");
    assert_false(in.resume[2].approved);
    agui_input_cleanup(&in);
}

static void test_input_context(void **state)
{
    (void)state;
    agui_input in;
    char err[256];
    assert_int_equal(parse("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"context\":["
                           "{\"description\":\"zone\",\"value\":\"Europe/Paris\"},"
                           "{\"description\":\"page\",\"value\":\"/billing\"}]}",
                           &in, err),
                     0);
    assert_string_equal(in.context, "The frontend gave this context:\n- zone: Europe/Paris\n"
                                    "- page: /billing");
    agui_input_cleanup(&in);
    /* Over the cap by one byte. */
    char big[AGUI_CONTEXT_MAX + 256];
    int head = snprintf(big, sizeof big,
                        "{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"context\":["
                        "{\"description\":\"d\",\"value\":\"");
    /* "The frontend gave this context:" (31) + "\n- d: " (6) + the value. */
    size_t fill = AGUI_CONTEXT_MAX - 37 + 1;
    memset(big + head, 'x', fill);
    snprintf(big + head + fill, sizeof big - (size_t)head - fill, "\"}]}");
    assert_int_equal(parse(big, &in, err), -1);
    assert_string_equal(err, "context holds more than 16384 bytes");
    agui_input_cleanup(&in);
    big[head + fill - 1] = '\"';
    big[head + fill] = '}';
    big[head + fill + 1] = ']';
    big[head + fill + 2] = '}';
    big[head + fill + 3] = '\0';
    assert_int_equal(parse(big, &in, err), 0);
    assert_int_equal(strlen(in.context), AGUI_CONTEXT_MAX);
    agui_input_cleanup(&in);
}

static void expect_error(const char *text, const char *message)
{
    agui_input in;
    char err[256];
    assert_int_equal(parse(text, &in, err), -1);
    assert_string_equal(err, message);
    agui_input_cleanup(&in);
}

static void test_input_errors(void **state)
{
    (void)state;
    expect_error("[1]", "the body must be a RunAgentInput object");
    expect_error("{\"threadId\":\"a b\",\"runId\":\"r\",\"messages\":[]}",
                 "threadId must be 1 to 128 characters of [A-Za-z0-9._:-]");
    expect_error("{\"threadId\":\"\",\"runId\":\"r\",\"messages\":[]}",
                 "threadId must be 1 to 128 characters of [A-Za-z0-9._:-]");
    expect_error("{\"threadId\":\"t\",\"messages\":[]}",
                 "runId must be a string of 1 to 256 bytes");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\"}", "messages must be a list");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[{\"id\":\"1\"}]}",
                 "messages[0] must be an object with a role");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[{\"role\":\"user\","
                 "\"content\":[{\"type\":\"binary\",\"data\":\"x\"}]}]}",
                 "messages[0].content[0]: only text parts are supported");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[{\"role\":\"user\","
                 "\"content\":7}]}",
                 "messages[0].content must be a string or a list of parts");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"forwardedProps\":3}",
                 "forwardedProps must be an object");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"forwardedProps\":"
                 "{\"mode\":1}}",
                 "forwardedProps.mode must be a string");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"context\":{}}",
                 "context must be a list");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"context\":[{"
                 "\"description\":\"d\"}]}",
                 "context[0] must have a description and a value (strings)");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"resume\":{}}",
                 "resume must be a list");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"resume\":[{}]}",
                 "resume[0].interruptId must be a non-empty string");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"resume\":"
                 "[{\"interruptId\":\"a\",\"status\":\"done\"}]}",
                 "resume[0].status must be resolved or cancelled");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"resume\":"
                 "[{\"interruptId\":\"a\",\"status\":\"resolved\"}]}",
                 "resume[0].payload.approved must be a boolean");
    expect_error("{\"threadId\":\"t\",\"runId\":\"r\",\"messages\":[],\"resume\":"
                 "[{\"interruptId\":\"a\",\"status\":\"cancelled\",\"payload\":{\"reason\":1}}]}",
                 "resume[0].payload.reason must be a string");
    expect_error("{\"a\":1,\"a\":2}",
                 "invalid JSON at line 1 column 10: duplicate object key near '\"a\"'");
}

/* ---- translation ---- */

/* Feeds the events (a JSON array) and compares everything written. */
static void expect_frames(agui_xlate *x, const char *events, const char *expected, int last_rc)
{
    json_t *list = json_loads(events, 0, NULL);
    assert_non_null(list);
    buf out;
    buf_init(&out, 1 << 20);
    size_t i;
    json_t *ev;
    int rc = 0;
    json_array_foreach(list, i, ev) rc = agui_xlate_event(x, ev, &out);
    assert_int_equal(rc, last_rc);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, expected);
    buf_cleanup(&out);
    json_decref(list);
}

#define ENV "\"session_id\":\"ses_1\",\"run_id\":\"run_1\""

static void test_plain_answer(void **state)
{
    (void)state;
    agui_xlate x;
    agui_xlate_init(&x, "th", "r1", NULL);
    expect_frames(
        &x,
        "[{\"type\":\"message\",\"message_id\":\"m0\",\"role\":\"user\",\"content\":\"hi\"},"
        "{\"type\":\"run_started\",\"mode\":\"standard\"},"
        "{\"type\":\"status\"," ENV ",\"status\":\"thinking\",\"detail\":null},"
        "{\"type\":\"token\",\"message_id\":\"m1\",\"text\":\"Hel\"},"
        "{\"type\":\"token\",\"message_id\":\"m1\",\"text\":\"\"},"
        "{\"type\":\"token\",\"message_id\":\"m1\",\"text\":\"lo\"},"
        "{\"type\":\"message\",\"message_id\":\"m1\",\"role\":\"assistant\",\"content\":\"Hello\","
        "\"tool_calls\":null},"
        "{\"type\":\"budget\",\"usage\":{\"steps\":1}},"
        "{\"type\":\"run_stopped\",\"reason\":\"completed\",\"detail\":\"done\"}]",
        "data: {\"type\":\"RUN_STARTED\",\"threadId\":\"th\",\"runId\":\"r1\"}\n\n"
        "data: {\"type\":\"STEP_STARTED\",\"stepName\":\"model call 1\"}\n\n"
        "data: "
        "{\"type\":\"CUSTOM\",\"name\":\"chatplane.status\",\"value\":{\"type\":\"status\"," ENV
        ",\"status\":\"thinking\",\"detail\":null}}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_START\",\"messageId\":\"m1\",\"role\":\"assistant\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m1\",\"delta\":\"Hel\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m1\",\"delta\":\"lo\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_END\",\"messageId\":\"m1\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.budget\",\"value\":{\"type\":\"budget\","
        "\"usage\":{\"steps\":1}}}\n\n"
        "data: {\"type\":\"STEP_FINISHED\",\"stepName\":\"model call 1\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.run_stopped\",\"value\":{\"type\":"
        "\"run_stopped\",\"reason\":\"completed\",\"detail\":\"done\"}}\n\n"
        "data: "
        "{\"type\":\"RUN_FINISHED\",\"threadId\":\"th\",\"runId\":\"r1\",\"outcome\":{\"type\":"
        "\"success\"}}\n\n",
        1);
    /* Nothing goes out after the end. */
    expect_frames(&x, "[{\"type\":\"status\",\"status\":\"thinking\"}]", "", 1);
    agui_xlate_cleanup(&x);
}

/* A finished run's tokens are compacted away: its stored message carries
 * the whole text, which goes out as one content event. */
static void test_compacted_message_and_tool_call(void **state)
{
    (void)state;
    agui_xlate x;
    agui_xlate_init(&x, "th", "r1", NULL);
    expect_frames(
        &x,
        "[{\"type\":\"message\",\"message_id\":\"m1\",\"role\":\"assistant\",\"content\":\"Let "
        "me\","
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"calc\","
        "\"arguments\":\"{\\\"expression\\\":\\\"6*7\\\"}\"}}]},"
        "{\"type\":\"tool_started\",\"execution_id\":\"exe_1\"},"
        "{\"type\":\"tool_finished\",\"execution_id\":\"exe_1\",\"status\":\"ok\"},"
        "{\"type\":\"message\",\"message_id\":\"m2\",\"role\":\"tool\",\"content\":\"42\","
        "\"tool_call_id\":\"call_1\"}]",
        "data: {\"type\":\"RUN_STARTED\",\"threadId\":\"th\",\"runId\":\"r1\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_START\",\"messageId\":\"m1\",\"role\":\"assistant\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m1\",\"delta\":\"Let me\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_END\",\"messageId\":\"m1\"}\n\n"
        "data: {\"type\":\"TOOL_CALL_START\",\"toolCallId\":\"call_1\",\"toolCallName\":\"calc\","
        "\"parentMessageId\":\"m1\"}\n\n"
        "data: {\"type\":\"TOOL_CALL_ARGS\",\"toolCallId\":\"call_1\",\"delta\":"
        "\"{\\\"expression\\\":\\\"6*7\\\"}\"}\n\n"
        "data: {\"type\":\"TOOL_CALL_END\",\"toolCallId\":\"call_1\"}\n\n"
        "data: {\"type\":\"TOOL_CALL_RESULT\",\"messageId\":\"m2\",\"toolCallId\":\"call_1\","
        "\"content\":\"42\",\"role\":\"tool\"}\n\n",
        0);
    assert_int_equal(json_array_size(x.b.pending), 0);
    agui_xlate_cleanup(&x);
}

static void test_interrupt_then_resume(void **state)
{
    (void)state;
    const char *asked =
        "[{\"type\":\"status\",\"status\":\"thinking\"},"
        "{\"type\":\"message\",\"message_id\":\"m1\",\"role\":\"assistant\",\"content\":\"\","
        "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"rm\","
        "\"arguments\":\"\"}}]},"
        "{\"type\":\"approval_requested\",\"approval_id\":\"apr_1\",\"execution_id\":\"exe_1\","
        "\"step\":1,\"server\":\"builtin\",\"tool\":\"rm\",\"arguments\":{},\"reason\":\"rule rm\","
        "\"annotations\":null,\"expires_at\":\"2026-01-01T00:15:00.000Z\"}";
    agui_xlate x;
    agui_xlate_init(&x, "th", "r1", NULL);
    char events[2048];
    snprintf(events, sizeof events, "%s]", asked);
    expect_frames(
        &x, events,
        "data: {\"type\":\"RUN_STARTED\",\"threadId\":\"th\",\"runId\":\"r1\"}\n\n"
        "data: {\"type\":\"STEP_STARTED\",\"stepName\":\"model call 1\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.status\",\"value\":{\"type\":\"status\","
        "\"status\":\"thinking\"}}\n\n"
        "data: {\"type\":\"TOOL_CALL_START\",\"toolCallId\":\"c1\",\"toolCallName\":\"rm\","
        "\"parentMessageId\":\"m1\"}\n\n"
        "data: {\"type\":\"TOOL_CALL_END\",\"toolCallId\":\"c1\"}\n\n"
        "data: {\"type\":\"STEP_FINISHED\",\"stepName\":\"model call 1\"}\n\n"
        "data: "
        "{\"type\":\"RUN_FINISHED\",\"threadId\":\"th\",\"runId\":\"r1\",\"outcome\":{\"type\":"
        "\"interrupt\",\"interrupts\":[{\"id\":\"apr_1\",\"reason\":\"tool_approval\",\"message\":"
        "\"Allow the call of rm? (rule rm)\",\"toolCallId\":\"c1\",\"responseSchema\":{\"type\":"
        "\"object\",\"properties\":{\"approved\":{\"type\":\"boolean\"},\"reason\":{\"type\":"
        "\"string\"}},\"required\":[\"approved\"],\"additionalProperties\":false},\"expiresAt\":"
        "\"2026-01-01T00:15:00.000Z\",\"metadata\":{\"server\":\"builtin\",\"tool\":\"rm\","
        "\"arguments\":{},\"execution_id\":\"exe_1\"}}]}}\n\n",
        1);
    agui_xlate_cleanup(&x);

    /* The resumed stream replays the run from its start: nothing goes out
     * before the decision, then a new AG-UI run carries the rest. */
    agui_xlate_init(&x, "th", "r2", "apr_1");
    snprintf(events, sizeof events,
             "%s,{\"type\":\"status\",\"status\":\"waiting_for_approval\"},"
             "{\"type\":\"approval_decided\",\"approval_id\":\"apr_1\",\"decision\":\"denied\"},"
             "{\"type\":\"message\",\"message_id\":\"m2\",\"role\":\"tool\",\"content\":\"denied\","
             "\"tool_call_id\":\"c1\"},"
             "{\"type\":\"run_stopped\",\"reason\":\"user_stopped\",\"detail\":\"stopped\"}]",
             asked);
    expect_frames(
        &x, events,
        "data: {\"type\":\"RUN_STARTED\",\"threadId\":\"th\",\"runId\":\"r2\"}\n\n"
        "data: {\"type\":\"TOOL_CALL_RESULT\",\"messageId\":\"m2\",\"toolCallId\":\"c1\","
        "\"content\":\"denied\",\"role\":\"tool\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.run_stopped\",\"value\":{\"type\":"
        "\"run_stopped\",\"reason\":\"user_stopped\",\"detail\":\"stopped\"}}\n\n"
        "data: "
        "{\"type\":\"RUN_FINISHED\",\"threadId\":\"th\",\"runId\":\"r2\",\"outcome\":{\"type\":"
        "\"cancelled\"}}\n\n",
        1);
    agui_xlate_cleanup(&x);
}

/* How each stop reason ends the AG-UI run. */
static void expect_end(const char *reason, const char *expected)
{
    agui_xlate x;
    agui_xlate_init(&x, "t", "r", NULL);
    x.b.started = true;
    char ev[256], out[1024];
    snprintf(ev, sizeof ev, "[{\"type\":\"run_stopped\",\"reason\":\"%s\",\"detail\":\"d\"}]",
             reason);
    snprintf(out, sizeof out,
             "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.run_stopped\",\"value\":{\"type\":"
             "\"run_stopped\",\"reason\":\"%s\",\"detail\":\"d\"}}\n\ndata: %s\n\n",
             reason, expected);
    expect_frames(&x, ev, out, 1);
    agui_xlate_cleanup(&x);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const char *const success[] = {"completed",     "max_steps",   "max_seconds",
                                          "max_tokens",    "max_cost",    "max_tool_calls",
                                          "loop_detected", "no_progress", "repeated_failures"};
    for (size_t i = 0; i < sizeof success / sizeof *success; i++)
        expect_end(success[i], "{\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":\"r\","
                               "\"outcome\":{\"type\":\"success\"}}");
    expect_end("user_stopped", "{\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":\"r\","
                               "\"outcome\":{\"type\":\"cancelled\"}}");
    expect_end("approval_timeout", "{\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":"
                                   "\"r\",\"outcome\":{\"type\":\"cancelled\"}}");
    static const char *const errors[] = {"llm_error", "max_retries", "interrupted", "owner_budget"};
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
        char e[128];
        snprintf(e, sizeof e, "{\"type\":\"RUN_ERROR\",\"message\":\"d\",\"code\":\"%s\"}",
                 errors[i]);
        expect_end(errors[i], e);
    }
}

/* A failed attempt's text ends where the error is; the retry opens a new
 * step and a new message. Guardrails and repairs are custom events. */
static void test_error_retry_guardrail(void **state)
{
    (void)state;
    agui_xlate x;
    agui_xlate_init(&x, "t", "r", NULL);
    x.b.started = true;
    expect_frames(
        &x,
        "[{\"type\":\"status\",\"status\":\"thinking\"},"
        "{\"type\":\"token\",\"message_id\":\"m1\",\"text\":\"par\"},"
        "{\"type\":\"error\",\"code\":\"llm_retryable\",\"message_id\":\"m1\"},"
        "{\"type\":\"error\",\"code\":\"llm_retryable\",\"message_id\":null},"
        "{\"type\":\"guardrail\",\"check\":\"loop\"},"
        "{\"type\":\"repair\",\"what\":\"x\"},"
        "{\"type\":\"tool_progress\",\"progress\":1},"
        "{\"type\":\"approval_decided\",\"approval_id\":\"a\"},"
        "{\"type\":\"status\",\"status\":\"thinking\"}]",
        "data: {\"type\":\"STEP_STARTED\",\"stepName\":\"model call 1\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.status\",\"value\":{\"type\":\"status\","
        "\"status\":\"thinking\"}}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_START\",\"messageId\":\"m1\",\"role\":\"assistant\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m1\",\"delta\":\"par\"}\n\n"
        "data: {\"type\":\"TEXT_MESSAGE_END\",\"messageId\":\"m1\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.guardrail\",\"value\":{\"type\":"
        "\"guardrail\",\"check\":\"loop\"}}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.repair\",\"value\":{\"type\":\"repair\","
        "\"what\":\"x\"}}\n\n"
        "data: {\"type\":\"STEP_FINISHED\",\"stepName\":\"model call 1\"}\n\n"
        "data: {\"type\":\"STEP_STARTED\",\"stepName\":\"model call 2\"}\n\n"
        "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.status\",\"value\":{\"type\":\"status\","
        "\"status\":\"thinking\"}}\n\n",
        0);
    /* An event without a type is skipped. */
    expect_frames(&x, "[{\"seq\":1}]", "", 0);
    agui_xlate_cleanup(&x);
}

/* A run whose end the database refused: the open message and step end
 * and the AG-UI run fails; nothing more after an end. */
static void test_unrecorded(void **state)
{
    (void)state;
    agui_xlate x;
    agui_xlate_init(&x, "t", "r", NULL);
    expect_frames(&x,
                  "[{\"type\":\"status\",\"status\":\"thinking\"},{\"type\":\"token\","
                  "\"message_id\":\"m1\",\"text\":\"a\"}]",
                  "data: {\"type\":\"RUN_STARTED\",\"threadId\":\"t\",\"runId\":\"r\"}\n\n"
                  "data: {\"type\":\"STEP_STARTED\",\"stepName\":\"model call 1\"}\n\n"
                  "data: {\"type\":\"CUSTOM\",\"name\":\"chatplane.status\",\"value\":{"
                  "\"type\":\"status\",\"status\":\"thinking\"}}\n\n"
                  "data: {\"type\":\"TEXT_MESSAGE_START\",\"messageId\":\"m1\",\"role\":"
                  "\"assistant\"}\n\n"
                  "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m1\",\"delta\":"
                  "\"a\"}\n\n",
                  0);
    buf out;
    buf_init(&out, 1 << 20);
    agui_xlate_unrecorded(&x, &out);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data,
                        "data: {\"type\":\"TEXT_MESSAGE_END\",\"messageId\":\"m1\"}\n\n"
                        "data: {\"type\":\"STEP_FINISHED\",\"stepName\":\"model call 1\"}\n\n"
                        "data: {\"type\":\"RUN_ERROR\",\"message\":\"" AGENTPROTO_UNRECORDED_MESSAGE
                        "\",\"code\":\"interrupted\"}\n\n");
    buf_reset(&out);
    agui_xlate_unrecorded(&x, &out);
    assert_int_equal(out.len, 0);
    buf_cleanup(&out);
    agui_xlate_cleanup(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_full),
        cmocka_unit_test(test_input_answered_and_resume),
        cmocka_unit_test(test_input_context),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_plain_answer),
        cmocka_unit_test(test_compacted_message_and_tool_call),
        cmocka_unit_test(test_interrupt_then_resume),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_error_retry_guardrail),
        cmocka_unit_test(test_unrecorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
