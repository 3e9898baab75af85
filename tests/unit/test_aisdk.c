/* Unit tests for core/aisdk: the chat request reader and the translation
 * of chatplane events into UI message stream chunks, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/aisdk.h"

/* ---- the request ---- */

static int parse(const char *text, aisdk_input *in, char *err)
{
    err[0] = '\0';
    return aisdk_input_parse(text, strlen(text), in, err, 256);
}

static void test_input_user_message(void **state)
{
    (void)state;
    aisdk_input in;
    char err[256];
    assert_int_equal(
        parse("{\"id\":\"chat-1\",\"trigger\":\"submit-message\",\"messageId\":null,"
              "\"mode\":\"quick\",\"messages\":[{\"id\":\"a\",\"role\":\"assistant\","
              "\"parts\":[]},{\"id\":\"u\",\"role\":\"user\",\"parts\":[{\"type\":"
              "\"text\",\"text\":\"what is \"},{\"type\":\"text\",\"text\":\"6*7?\"}]}]}",
              &in, err),
        0);
    assert_string_equal(in.chat_id, "chat-1");
    assert_false(in.regenerate);
    assert_string_equal(in.message, "what is 6*7?");
    assert_string_equal(in.mode, "quick");
    assert_null(in.approval_id);
    aisdk_input_cleanup(&in);
}

static void test_input_approval_answer(void **state)
{
    (void)state;
    aisdk_input in;
    char err[256];
    assert_int_equal(
        parse("{\"id\":\"c\",\"messages\":[{\"id\":\"u\",\"role\":\"user\",\"parts\":"
              "[]},{\"id\":\"run_1\",\"role\":\"assistant\",\"parts\":[{\"type\":"
              "\"step-start\"},{\"type\":\"dynamic-tool\",\"toolName\":\"rm\","
              "\"toolCallId\":\"c1\",\"state\":\"approval-responded\",\"input\":{},"
              "\"approval\":{\"id\":\"apr_1\",\"approved\":false,\"reason\":\"no\"}}]}]}",
              &in, err),
        0);
    assert_null(in.message);
    assert_string_equal(in.approval_id, "apr_1");
    assert_false(in.approved);
    assert_string_equal(in.reason, "no");
    aisdk_input_cleanup(&in);

    assert_int_equal(
        parse("{\"id\":\"c\",\"trigger\":\"regenerate-message\",\"messages\":[{\"id\":"
              "\"u\",\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"text\":\"x\"}]}]}",
              &in, err),
        0);
    assert_true(in.regenerate);
    assert_string_equal(in.message, "x");
    aisdk_input_cleanup(&in);

    /* A user message without text is an empty message (the route refuses
     * it as such). */
    assert_int_equal(parse("{\"id\":\"c\",\"messages\":[{\"id\":\"u\",\"role\":\"user\","
                           "\"parts\":[]}]}",
                           &in, err),
                     0);
    assert_string_equal(in.message, "");
    aisdk_input_cleanup(&in);
}

static void expect_error(const char *text, const char *message)
{
    aisdk_input in;
    char err[256];
    assert_int_equal(parse(text, &in, err), -1);
    assert_string_equal(err, message);
    aisdk_input_cleanup(&in);
}

static void test_input_errors(void **state)
{
    (void)state;
    expect_error("[1]", "the body must be an object");
    expect_error("{\"id\":\"a/b\",\"messages\":[]}",
                 "id must be 1 to 128 characters of [A-Za-z0-9._:-]");
    expect_error("{\"id\":\"c\",\"trigger\":\"resume-stream\",\"messages\":[]}",
                 "trigger must be submit-message or regenerate-message");
    expect_error("{\"id\":\"c\",\"mode\":7,\"messages\":[]}", "mode must be a string");
    expect_error("{\"id\":\"c\",\"messages\":[]}", "messages must be a non-empty list");
    expect_error("{\"id\":\"c\",\"messages\":[{\"id\":\"u\"}]}",
                 "messages[0] must be an object with a role");
    expect_error("{\"id\":\"c\",\"messages\":[{\"role\":\"user\",\"parts\":{}}]}",
                 "messages[0].parts must be a list");
    expect_error(
        "{\"id\":\"c\",\"messages\":[{\"role\":\"user\",\"parts\":[{\"type\":\"file\"}]}]}",
        "messages[0].parts[0]: only text parts are supported");
    expect_error("{\"id\":\"c\",\"messages\":[{\"role\":\"assistant\",\"parts\":[{\"type\":"
                 "\"text\",\"text\":\"x\"}]}]}",
                 "messages[0] is an assistant message without an answered approval: nothing to "
                 "run");
    expect_error(
        "{\"id\":\"c\",\"messages\":[{\"role\":\"assistant\",\"parts\":[{\"type\":"
        "\"dynamic-tool\",\"state\":\"approval-responded\",\"approval\":{\"id\":\"a\"}}]}]}",
        "messages[0].parts[0].approval must have an id and approved (a boolean)");
    expect_error("{\"id\":\"c\",\"messages\":[{\"role\":\"assistant\",\"parts\":[{\"type\":"
                 "\"dynamic-tool\",\"state\":\"approval-responded\",\"approval\":{\"id\":\"a\","
                 "\"approved\":true,\"reason\":1}}]}]}",
                 "messages[0].parts[0].approval.reason must be a string");
    expect_error("{\"id\":\"c\",\"messages\":[{\"role\":\"system\",\"parts\":[]}]}",
                 "the last message must be a user message, or an assistant message with an "
                 "answered approval");
    expect_error("{\"id\":\"c\",\"trigger\":\"regenerate-message\",\"messages\":[{\"role\":"
                 "\"assistant\",\"parts\":[]}]}",
                 "the last message must be a user message, or an assistant message with an "
                 "answered approval");
    expect_error("{", "invalid JSON at line 1 column 1: string or '}' expected near end of file");
}

/* ---- chunks ---- */

static void expect_chunks(aisdk_xlate *x, const char *events, const char *expected, int last_rc)
{
    json_t *list = json_loads(events, 0, NULL);
    assert_non_null(list);
    buf out;
    buf_init(&out, 1 << 20);
    size_t i;
    json_t *ev;
    int rc = 0;
    json_array_foreach(list, i, ev) rc = aisdk_xlate_event(x, ev, &out);
    assert_int_equal(rc, last_rc);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, expected);
    buf_cleanup(&out);
    json_decref(list);
}

static void test_answer_with_tool_call(void **state)
{
    (void)state;
    aisdk_xlate x;
    aisdk_xlate_init(&x, NULL);
    expect_chunks(
        &x,
        "[{\"type\":\"message\",\"run_id\":\"run_1\",\"message_id\":\"m0\",\"role\":\"user\","
        "\"content\":\"hi\"},"
        "{\"type\":\"status\",\"status\":\"thinking\"},"
        "{\"type\":\"message\",\"message_id\":\"m1\",\"role\":\"assistant\",\"content\":\"\","
        "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"calc\","
        "\"arguments\":\"{\\\"expression\\\":\\\"1/0\\\"}\"}},{\"id\":\"c2\",\"type\":\"function\","
        "\"function\":{\"name\":\"odd\",\"arguments\":\"not json\"}}]},"
        "{\"type\":\"tool_finished\",\"status\":\"error\",\"error\":\"division by zero\"},"
        "{\"type\":\"message\",\"message_id\":\"m2\",\"role\":\"tool\",\"content\":\"Error: x\","
        "\"tool_call_id\":\"c1\"},"
        "{\"type\":\"tool_finished\",\"status\":\"ok\",\"error\":null},"
        "{\"type\":\"message\",\"message_id\":\"m3\",\"role\":\"tool\",\"content\":\"fine\","
        "\"tool_call_id\":\"c2\"},"
        "{\"type\":\"budget\",\"usage\":{}},"
        "{\"type\":\"status\",\"status\":\"thinking\"},"
        "{\"type\":\"token\",\"message_id\":\"m4\",\"text\":\"No.\"},"
        "{\"type\":\"message\",\"message_id\":\"m4\",\"role\":\"assistant\",\"content\":\"No.\","
        "\"tool_calls\":null},"
        "{\"type\":\"run_stopped\",\"reason\":\"completed\",\"detail\":\"done\"}]",
        "data: {\"type\":\"start\",\"messageId\":\"run_1\"}\n\n"
        "data: {\"type\":\"start-step\"}\n\n"
        "data: {\"type\":\"data-chatplane-status\",\"data\":{\"type\":\"status\",\"status\":"
        "\"thinking\"},\"transient\":true}\n\n"
        "data: {\"type\":\"tool-input-available\",\"toolCallId\":\"c1\",\"toolName\":\"calc\","
        "\"input\":{\"expression\":\"1/0\"},\"dynamic\":true}\n\n"
        "data: {\"type\":\"tool-input-available\",\"toolCallId\":\"c2\",\"toolName\":\"odd\","
        "\"input\":\"not json\",\"dynamic\":true}\n\n"
        "data: {\"type\":\"tool-output-error\",\"toolCallId\":\"c1\",\"errorText\":"
        "\"division by zero\",\"dynamic\":true}\n\n"
        "data: {\"type\":\"tool-output-available\",\"toolCallId\":\"c2\",\"output\":\"fine\","
        "\"dynamic\":true}\n\n"
        "data: {\"type\":\"data-chatplane-budget\",\"data\":{\"type\":\"budget\",\"usage\":{}},"
        "\"transient\":true}\n\n"
        "data: {\"type\":\"finish-step\"}\n\n"
        "data: {\"type\":\"start-step\"}\n\n"
        "data: {\"type\":\"data-chatplane-status\",\"data\":{\"type\":\"status\",\"status\":"
        "\"thinking\"},\"transient\":true}\n\n"
        "data: {\"type\":\"text-start\",\"id\":\"m4\"}\n\n"
        "data: {\"type\":\"text-delta\",\"id\":\"m4\",\"delta\":\"No.\"}\n\n"
        "data: {\"type\":\"text-end\",\"id\":\"m4\"}\n\n"
        "data: {\"type\":\"finish-step\"}\n\n"
        "data: {\"type\":\"data-chatplane-stop\",\"data\":{\"type\":\"run_stopped\",\"reason\":"
        "\"completed\",\"detail\":\"done\"}}\n\n"
        "data: {\"type\":\"finish\",\"finishReason\":\"stop\"}\n\n"
        "data: [DONE]\n\n",
        1);
    expect_chunks(&x, "[{\"type\":\"status\",\"status\":\"thinking\"}]", "", 1);
    aisdk_xlate_cleanup(&x);
}

#define ASKED                                                                                      \
    "{\"type\":\"status\",\"run_id\":\"run_1\",\"status\":\"thinking\"},"                          \
    "{\"type\":\"message\",\"message_id\":\"m1\",\"role\":\"assistant\",\"content\":\"\","         \
    "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"rm\","          \
    "\"arguments\":\"{}\"}}]},"                                                                    \
    "{\"type\":\"approval_requested\",\"approval_id\":\"apr_1\",\"execution_id\":\"exe_1\"}"

static void test_approval_request_and_denial(void **state)
{
    (void)state;
    aisdk_xlate x;
    aisdk_xlate_init(&x, NULL);
    expect_chunks(
        &x, "[" ASKED "]",
        "data: {\"type\":\"start\",\"messageId\":\"run_1\"}\n\n"
        "data: {\"type\":\"start-step\"}\n\n"
        "data: {\"type\":\"data-chatplane-status\",\"data\":{\"type\":\"status\",\"run_id\":"
        "\"run_1\",\"status\":\"thinking\"},\"transient\":true}\n\n"
        "data: {\"type\":\"tool-input-available\",\"toolCallId\":\"c1\",\"toolName\":\"rm\","
        "\"input\":{},\"dynamic\":true}\n\n"
        "data: {\"type\":\"tool-approval-request\",\"approvalId\":\"apr_1\",\"toolCallId\":"
        "\"c1\"}\n\n"
        "data: {\"type\":\"finish-step\"}\n\n"
        "data: {\"type\":\"finish\",\"finishReason\":\"tool-calls\"}\n\n"
        "data: [DONE]\n\n",
        1);
    aisdk_xlate_cleanup(&x);

    /* The continuation: silent up to the decision, which denies the call. */
    aisdk_xlate_init(&x, "apr_1");
    expect_chunks(
        &x,
        "[" ASKED ",{\"type\":\"approval_decided\",\"run_id\":\"run_1\",\"approval_id\":\"apr_1\","
        "\"decision\":\"denied\"},"
        "{\"type\":\"tool_finished\",\"status\":\"denied\",\"error\":\"denied by a\"},"
        "{\"type\":\"message\",\"message_id\":\"m2\",\"role\":\"tool\",\"content\":\"The user "
        "denied\",\"tool_call_id\":\"c1\"},"
        "{\"type\":\"run_stopped\",\"reason\":\"user_stopped\",\"detail\":\"stopped\"}]",
        "data: {\"type\":\"start\",\"messageId\":\"run_1\"}\n\n"
        "data: {\"type\":\"tool-output-denied\",\"toolCallId\":\"c1\"}\n\n"
        "data: {\"type\":\"data-chatplane-stop\",\"data\":{\"type\":\"run_stopped\",\"reason\":"
        "\"user_stopped\",\"detail\":\"stopped\"}}\n\n"
        "data: {\"type\":\"abort\",\"reason\":\"stopped\"}\n\n"
        "data: [DONE]\n\n",
        1);
    aisdk_xlate_cleanup(&x);

    /* A resume from the run's start shows a request decided already and
     * goes on; the approval is followed by the call's output. */
    aisdk_xlate_init(&x, NULL);
    aisdk_xlate_decided(&x, "apr_1");
    expect_chunks(
        &x,
        "[" ASKED ",{\"type\":\"approval_decided\",\"approval_id\":\"apr_1\",\"decision\":"
        "\"approved\"},{\"type\":\"tool_finished\",\"status\":\"ok\",\"error\":null},"
        "{\"type\":\"message\",\"message_id\":\"m2\",\"role\":\"tool\",\"content\":\"gone\","
        "\"tool_call_id\":\"c1\"}]",
        "data: {\"type\":\"start\",\"messageId\":\"run_1\"}\n\n"
        "data: {\"type\":\"start-step\"}\n\n"
        "data: {\"type\":\"data-chatplane-status\",\"data\":{\"type\":\"status\",\"run_id\":"
        "\"run_1\",\"status\":\"thinking\"},\"transient\":true}\n\n"
        "data: {\"type\":\"tool-input-available\",\"toolCallId\":\"c1\",\"toolName\":\"rm\","
        "\"input\":{},\"dynamic\":true}\n\n"
        "data: {\"type\":\"tool-approval-request\",\"approvalId\":\"apr_1\",\"toolCallId\":"
        "\"c1\"}\n\n"
        "data: {\"type\":\"tool-output-available\",\"toolCallId\":\"c1\",\"output\":\"gone\","
        "\"dynamic\":true}\n\n",
        0);
    aisdk_xlate_cleanup(&x);
}

static void expect_end(const char *reason, const char *last)
{
    aisdk_xlate x;
    aisdk_xlate_init(&x, NULL);
    x.b.started = true;
    char ev[256], out[1024];
    snprintf(ev, sizeof ev, "[{\"type\":\"run_stopped\",\"reason\":\"%s\",\"detail\":\"d\"}]",
             reason);
    snprintf(out, sizeof out,
             "data: {\"type\":\"data-chatplane-stop\",\"data\":{\"type\":\"run_stopped\","
             "\"reason\":\"%s\",\"detail\":\"d\"}}\n\ndata: %s\n\ndata: [DONE]\n\n",
             reason, last);
    expect_chunks(&x, ev, out, 1);
    aisdk_xlate_cleanup(&x);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const char *const stop[] = {"completed", "loop_detected", "no_progress",
                                       "repeated_failures"};
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
        expect_end(stop[i], "{\"type\":\"finish\",\"finishReason\":\"stop\"}");
    static const char *const length[] = {"max_steps", "max_seconds", "max_tokens", "max_tool_calls",
                                         "max_cost"};
    for (size_t i = 0; i < sizeof length / sizeof *length; i++)
        expect_end(length[i], "{\"type\":\"finish\",\"finishReason\":\"length\"}");
    expect_end("user_stopped", "{\"type\":\"abort\",\"reason\":\"d\"}");
    expect_end("approval_timeout", "{\"type\":\"abort\",\"reason\":\"d\"}");
    static const char *const errors[] = {"llm_error", "max_retries", "interrupted", "owner_budget"};
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++)
        expect_end(errors[i], "{\"type\":\"error\",\"errorText\":\"d\"}");
}

/* A failed attempt's text part ends at its error; a compacted message
 * goes out whole. */
static void test_error_and_compacted(void **state)
{
    (void)state;
    aisdk_xlate x;
    aisdk_xlate_init(&x, NULL);
    x.b.started = true;
    expect_chunks(
        &x,
        "[{\"type\":\"token\",\"message_id\":\"m1\",\"text\":\"pa\"},"
        "{\"type\":\"error\",\"message_id\":\"m1\"},"
        "{\"type\":\"message\",\"message_id\":\"m2\",\"role\":\"assistant\",\"content\":\"All\","
        "\"tool_calls\":null},{\"type\":\"tool_progress\"},{\"seq\":3}]",
        "data: {\"type\":\"text-start\",\"id\":\"m1\"}\n\n"
        "data: {\"type\":\"text-delta\",\"id\":\"m1\",\"delta\":\"pa\"}\n\n"
        "data: {\"type\":\"text-end\",\"id\":\"m1\"}\n\n"
        "data: {\"type\":\"text-start\",\"id\":\"m2\"}\n\n"
        "data: {\"type\":\"text-delta\",\"id\":\"m2\",\"delta\":\"All\"}\n\n"
        "data: {\"type\":\"text-end\",\"id\":\"m2\"}\n\n",
        0);
    aisdk_xlate_cleanup(&x);
}

/* A run whose end the database refused ends the stream with an error,
 * also when nothing went out yet. */
static void test_unrecorded(void **state)
{
    (void)state;
    aisdk_xlate x;
    aisdk_xlate_init(&x, NULL);
    buf out;
    buf_init(&out, 1 << 20);
    aisdk_xlate_unrecorded(&x, &out);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data,
                        "data: {\"type\":\"start\"}\n\n"
                        "data: {\"type\":\"error\",\"errorText\":\"" AGENTPROTO_UNRECORDED_MESSAGE
                        "\"}\n\ndata: [DONE]\n\n");
    buf_reset(&out);
    aisdk_xlate_unrecorded(&x, &out);
    assert_int_equal(out.len, 0);
    buf_cleanup(&out);
    aisdk_xlate_cleanup(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_user_message),
        cmocka_unit_test(test_input_approval_answer),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_answer_with_tool_call),
        cmocka_unit_test(test_approval_request_and_denial),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_error_and_compacted),
        cmocka_unit_test(test_unrecorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
