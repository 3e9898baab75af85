/* Unit tests for engine/llm_anthropic_stream: the Messages event stream,
 * error bodies and the request body built from the OpenAI-form request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/llm_anthropic_stream.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"

#define URL "http://127.0.0.1:1234/v1/messages"

/* Text pieces as the callback saw them, each followed by '|'. */
static buf pieces;

static void on_text(void *ud, const char *text, size_t len)
{
    (void)ud;
    buf_append(&pieces, text, len);
    buf_append_char(&pieces, '|');
}

static int setup(void **state)
{
    (void)state;
    buf_init(&pieces, 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_cleanup(&pieces);
    return 0;
}

#define START                                                                                      \
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"     \
    "\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{"           \
    "\"input_tokens\":25,\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":2,"         \
    "\"output_tokens\":1}}}"
#define TEXT_START                                                                                 \
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":" \
    "\"\"}}"
#define PING "{\"type\":\"ping\"}"
#define TEXT(s)                                                                                    \
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"   \
    "\"" s "\"}}"
#define STOP_BLOCK(i) "{\"type\":\"content_block_stop\",\"index\":" #i "}"
#define DELTA(reason, out)                                                                         \
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason                             \
    "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":" #out "}}"
#define MSG_STOP "{\"type\":\"message_stop\"}"

/* Feeds each payload and checks the state after the last one. */
static void feed_all(llm_anthropic_stream *s, const char *const *p, int last_state)
{
    for (size_t i = 0; p[i]; i++) {
        int want = p[i + 1] ? LLM_STREAM_MORE : last_state;
        assert_int_equal(llm_anthropic_stream_feed(s, p[i], strlen(p[i])), want);
    }
}

static void run(const char *const *p, int last_state, llm_result *r)
{
    llm_anthropic_stream *s = llm_anthropic_stream_new(on_text, NULL);
    feed_all(s, p, last_state);
    llm_anthropic_stream_finish(s, r);
    llm_anthropic_stream_free(s);
}

static void test_text_turn(void **state)
{
    (void)state;
    const char *p[] = {
        START,         TEXT_START,           PING,     TEXT("Hel"), TEXT("lo \\u00e9"),
        STOP_BLOCK(0), DELTA("end_turn", 9), MSG_STOP, NULL};
    llm_result r;
    run(p, LLM_STREAM_DONE, &r);
    assert_true(r.ok);
    assert_string_equal(r.text, "Hello \xc3\xa9");
    assert_int_equal(r.text_len, 8);
    assert_string_equal(pieces.data, "Hel|lo \xc3\xa9|");
    assert_string_equal(r.finish_reason, "stop");
    assert_int_equal(r.prompt_tokens, 30); /* 25 + 3 + 2 cached */
    assert_int_equal(r.completion_tokens, 9);
    assert_int_equal(r.ncalls, 0);
    llm_result_cleanup(&r);
}

static void test_tool_use_fragments(void **state)
{
    (void)state;
    const char *p[] = {
        START, TEXT_START, TEXT("Looking."), STOP_BLOCK(0),
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_A\",\"name\":\"calc\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"expr\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"ession\\\": \\\"6*7\\\"}\"}}",
        STOP_BLOCK(1),
        /* A call whose input came whole in its start and no fragment. */
        "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_B\",\"name\":\"clock\",\"input\":{\"zone\":\"UTC\"}}}",
        STOP_BLOCK(2),
        /* And one with no input at all. */
        "{\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_C\",\"name\":\"noargs\",\"input\":{}}}",
        STOP_BLOCK(3), DELTA("tool_use", 40), MSG_STOP, NULL};
    llm_result r;
    run(p, LLM_STREAM_DONE, &r);
    assert_true(r.ok);
    assert_string_equal(r.text, "Looking.");
    assert_string_equal(r.finish_reason, "tool_calls");
    assert_int_equal(r.ncalls, 3);
    assert_string_equal(r.calls[0].id, "toolu_A");
    assert_string_equal(r.calls[0].name, "calc");
    assert_string_equal(r.calls[0].arguments, "{\"expression\": \"6*7\"}");
    assert_string_equal(r.calls[1].arguments, "{\"zone\":\"UTC\"}");
    assert_string_equal(r.calls[2].arguments, "{}");
    assert_int_equal(r.completion_tokens, 40);
    llm_result_cleanup(&r);
}

static void test_thinking_and_unknown_events_skipped(void **state)
{
    (void)state;
    const char *p[] = {
        START,
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
        "\"thinking\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"hmm\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"x\"}}",
        STOP_BLOCK(0),
        "{\"type\":\"future_event\",\"x\":1}",
        "{\"no_type\":true}",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
        "\"text\":\"Hi\"}}",
        DELTA("max_tokens", 2),
        MSG_STOP,
        NULL};
    llm_result r;
    run(p, LLM_STREAM_DONE, &r);
    assert_true(r.ok);
    assert_string_equal(r.text, "Hi");
    assert_string_equal(r.finish_reason, "length");
    llm_result_cleanup(&r);
}

static void test_error_event(void **state)
{
    (void)state;
    const char *p[] = {START, TEXT_START, TEXT("par"),
                       "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                       "\"Overloaded\"}}",
                       NULL};
    llm_result r;
    run(p, LLM_STREAM_FAILED, &r);
    assert_false(r.ok);
    assert_true(r.retryable);
    assert_string_equal(r.error_code, "overloaded_error");
    assert_string_equal(r.error_message, "the model stream carried an error: Overloaded");
    llm_result_cleanup(&r);

    const char *q[] = {START,
                       "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                       "\"message\":\"prompt is too long: 210000 tokens > 200000 maximum\"}}",
                       NULL};
    run(q, LLM_STREAM_FAILED, &r);
    assert_false(r.retryable);
    assert_string_equal(r.error_code, "invalid_request_error");
    assert_string_equal(r.error_message, "the model stream carried an error: prompt is too long: "
                                         "210000 tokens > 200000 maximum");
    llm_result_cleanup(&r);
}

static void test_incomplete_and_bad_streams(void **state)
{
    (void)state;
    llm_result r;
    /* The body ended before any stop: retryable. */
    const char *a[] = {START, TEXT_START, TEXT("x"), NULL};
    run(a, LLM_STREAM_MORE, &r);
    assert_false(r.ok);
    assert_true(r.retryable);
    assert_string_equal(r.error_message, "the model stream ended before message_stop");
    llm_result_cleanup(&r);

    /* A stop_reason without message_stop is a complete turn. */
    llm_anthropic_stream *s = llm_anthropic_stream_new(NULL, NULL);
    const char *b[] = {START, TEXT_START, TEXT("done"), DELTA("end_turn", 1), NULL};
    feed_all(s, b, LLM_STREAM_MORE);
    assert_true(llm_anthropic_stream_turn_complete(s));
    llm_anthropic_stream_finish(s, &r);
    assert_true(r.ok);
    assert_string_equal(r.text, "done");
    llm_result_cleanup(&r);
    llm_anthropic_stream_free(s);

    /* Not JSON: retryable; a NUL: not. */
    const char *c[] = {START, "{nope", NULL};
    run(c, LLM_STREAM_FAILED, &r);
    assert_true(r.retryable);
    assert_string_equal(r.error_message,
                        "the model stream sent an event that is not a JSON object");
    llm_result_cleanup(&r);
    s = llm_anthropic_stream_new(NULL, NULL);
    assert_int_equal(llm_anthropic_stream_feed(s, "{\"a\0\"}", 6), LLM_STREAM_FAILED);
    llm_anthropic_stream_finish(s, &r);
    assert_false(r.retryable);
    llm_result_cleanup(&r);
    llm_anthropic_stream_free(s);

    /* A tool_use block without a name cannot be run. */
    const char *d[] = {START,
                       "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
                       "\"tool_use\",\"id\":\"t\",\"input\":{}}}",
                       DELTA("tool_use", 1), MSG_STOP, NULL};
    run(d, LLM_STREAM_DONE, &r);
    assert_false(r.ok);
    assert_string_equal(r.error_message, "the model sent tool call 0 without a name");
    llm_result_cleanup(&r);
}

static void test_caps(void **state)
{
    (void)state;
    llm_anthropic_stream *s = llm_anthropic_stream_new(NULL, NULL);
    llm_result r;
    char *big = xmalloc(LLM_STREAM_MAX_ARGS + 200);
    assert_int_equal(
        llm_anthropic_stream_feed(
            s,
            "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
            "\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{}}}",
            strlen("{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                   "\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{}}}")),
        LLM_STREAM_MORE);
    int n = snprintf(big, 200,
                     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                     "\"input_json_delta\",\"partial_json\":\"");
    memset(big + n, 'a', LLM_STREAM_MAX_ARGS + 1);
    memcpy(big + n + LLM_STREAM_MAX_ARGS + 1, "\"}}", 3);
    assert_int_equal(llm_anthropic_stream_feed(s, big, (size_t)n + LLM_STREAM_MAX_ARGS + 4),
                     LLM_STREAM_FAILED);
    llm_anthropic_stream_finish(s, &r);
    assert_false(r.retryable);
    assert_string_equal(r.error_message,
                        "the model's arguments of one tool call exceeded 1048576 bytes");
    llm_result_cleanup(&r);
    llm_anthropic_stream_free(s);
    free(big);

    /* More calls than a turn keeps: counted, not kept. */
    s = llm_anthropic_stream_new(NULL, NULL);
    for (int i = 0; i < LLM_STREAM_MAX_CALLS + 2; i++) {
        char ev[256];
        snprintf(ev, sizeof ev,
                 "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":"
                 "\"tool_use\",\"id\":\"t%d\",\"name\":\"n\",\"input\":{}}}",
                 i, i);
        assert_int_equal(llm_anthropic_stream_feed(s, ev, strlen(ev)), LLM_STREAM_MORE);
    }
    assert_int_equal(llm_anthropic_stream_feed(s, MSG_STOP, strlen(MSG_STOP)), LLM_STREAM_DONE);
    llm_anthropic_stream_finish(s, &r);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, LLM_STREAM_MAX_CALLS);
    assert_int_equal(r.dropped_calls, 2);
    llm_result_cleanup(&r);
    llm_anthropic_stream_free(s);
}

static void test_http_errors(void **state)
{
    (void)state;
    llm_result r;
    const char *overloaded =
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    llm_anthropic_stream_http_error(&r, 529, URL, overloaded, strlen(overloaded), -1);
    assert_true(r.retryable);
    assert_int_equal(r.http_status, 529);
    assert_string_equal(r.error_code, "overloaded_error");
    assert_string_equal(r.error_message, "HTTP 529 from " URL ": Overloaded");
    llm_result_cleanup(&r);

    const char *limit = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                        "\"slow down\"}}";
    llm_anthropic_stream_http_error(&r, 429, URL, limit, strlen(limit), 2000);
    assert_true(r.retryable);
    assert_int_equal(r.retry_after_ms, 2000);
    llm_result_cleanup(&r);

    int fatal[] = {400, 401, 403, 404};
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++) {
        const char *b = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                        "\"message\":\"invalid x-api-key\"}}";
        llm_anthropic_stream_http_error(&r, fatal[i], URL, b, strlen(b), -1);
        assert_false(r.retryable);
        assert_string_equal(r.error_code, "authentication_error");
        llm_result_cleanup(&r);
    }
}

static void test_request_body(void **state)
{
    (void)state;
    json_t *messages = json_loads(
        "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"system\",\"content\":\"Budget: step 1.\"},"
        "{\"role\":\"user\",\"content\":\"6*7?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"calc\",\"arguments\":"
        "\"{\\\"expression\\\":\\\"6*7\\\"}\"}},"
        "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"calc\",\"arguments\":"
        "\"not json\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"42\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":\"error\"},"
        "{\"role\":\"system\",\"content\":\"Wrap up.\"}]",
        0, NULL);
    json_t *tools =
        json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"calc\","
                   "\"description\":\"Arithmetic.\",\"parameters\":{\"type\":\"object\","
                   "\"properties\":{\"expression\":{\"type\":\"string\"}}}}},"
                   "{\"type\":\"function\",\"function\":{\"name\":\"bare\"}}]",
                   0, NULL);
    llm_request req = {.messages = messages, .tools = tools, .max_completion_tokens = 500};
    size_t len;
    char *body = llm_anthropic_stream_request_body("claude-x", &req, &len);
    assert_int_equal(len, strlen(body));
    assert_string_equal(
        body,
        "{\"model\":\"claude-x\",\"max_tokens\":500,\"system\":\"Be brief.\\n\\nBudget: step "
        "1.\\n\\nWrap up.\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"6*7?\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
        "\"toolu_1\",\"name\":\"calc\",\"input\":{\"expression\":\"6*7\"}},{\"type\":\"tool_use\","
        "\"id\":\"toolu_2\",\"name\":\"calc\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{"
        "\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"42\"},{\"type\":"
        "\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":\"error\"}]}],\"tools\":[{"
        "\"name\":\"calc\",\"description\":\"Arithmetic.\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"expression\":{\"type\":\"string\"}}}},{\"name\":\"bare\","
        "\"input_schema\":{\"type\":\"object\"}}],\"stream\":true}");
    free(body);

    /* Unlimited tokens: the default max_tokens; no tools, no system; a
     * history that starts with the assistant gets a user message first. */
    json_t *m2 = json_loads("[{\"role\":\"assistant\",\"content\":\"Earlier answer.\"},"
                            "{\"role\":\"user\",\"content\":\"\"},"
                            "{\"role\":\"user\",\"content\":\"Next?\"}]",
                            0, NULL);
    llm_request req2 = {.messages = m2, .tools = NULL, .max_completion_tokens = -1};
    body = llm_anthropic_stream_request_body("claude-x", &req2, &len);
    assert_string_equal(body,
                        "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":"
                        "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"(Earlier turns were "
                        "left out.)\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
                        "\"text\":\"Earlier answer.\"}]},{\"role\":\"user\",\"content\":[{\"type\":"
                        "\"text\",\"text\":\"Next?\"}]}],\"stream\":true}");
    free(body);
    json_decref(m2);
    json_decref(messages);
    json_decref(tools);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_use_fragments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thinking_and_unknown_events_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_and_bad_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_body, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
