/* Unit tests for engine/llm_stream: the chat.completion.chunk stream, error
 * bodies, Retry-After and the request body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/llm_stream.h"
#include "lib/buf.h"
#include "lib/redact.h"
#include "lib/xmalloc.h"

#define URL "http://127.0.0.1:1234/v1/chat/completions"

/* Text pieces as the callback saw them, each followed by '|'. */
static buf pieces;

static void on_text(void *ud, const char *text, size_t len)
{
    int *count = ud;
    (*count)++;
    buf_append(&pieces, text, len);
    buf_append_char(&pieces, '|');
}

static int setup(void **state)
{
    (void)state;
    buf_init(&pieces, (size_t)64 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_cleanup(&pieces);
    return 0;
}

/* Feeds every payload of a NULL-terminated list, checking each returns
 * LLM_STREAM_MORE except the last, which must return last_state. */
static void feed_all(llm_stream *s, const char *const *payloads, int last_state)
{
    for (size_t i = 0; payloads[i]; i++) {
        int want = payloads[i + 1] ? LLM_STREAM_MORE : last_state;
        assert_int_equal(llm_stream_feed(s, payloads[i], strlen(payloads[i])), want);
    }
}

/* Runs a whole stream and returns its result in r. */
static void run(const char *const *payloads, int last_state, llm_result *r, int *ntext)
{
    llm_stream *s = llm_stream_new(on_text, ntext);
    feed_all(s, payloads, last_state);
    llm_stream_finish(s, r);
    llm_stream_free(s);
}

#define CHUNK(delta)                                                                               \
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","           \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":null}],"    \
    "\"usage\":null}"
#define FINISH(reason)                                                                             \
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"  \
    "\"finish_reason\":\"" reason "\"}],\"usage\":null}"
#define USAGE(p, c)                                                                                \
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"                \
    "{\"prompt_tokens\":" #p ",\"completion_tokens\":" #c ",\"total_tokens\":0}}"

static void test_text_pieces(void **state)
{
    (void)state;
    const char *in[] = {CHUNK("{\"role\":\"assistant\",\"content\":\"\"}"),
                        CHUNK("{\"content\":\"Hel\"}"),
                        CHUNK("{\"content\":\"lo, \"}"),
                        CHUNK("{\"content\":\"w\\u00f6rld\"}"),
                        FINISH("stop"),
                        USAGE(12, 3),
                        "[DONE]",
                        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(n, 3);
    assert_string_equal(pieces.data, "Hel|lo, |w\xc3\xb6rld|");
    assert_string_equal(r.text, "Hello, w\xc3\xb6rld");
    assert_int_equal(r.text_len, 13);
    assert_int_equal(r.ncalls, 0);
    assert_null(r.calls);
    assert_string_equal(r.finish_reason, "stop");
    assert_int_equal(r.prompt_tokens, 12);
    assert_int_equal(r.completion_tokens, 3);
    assert_int_equal(r.retry_after_ms, -1);
    llm_result_cleanup(&r);
}

static void test_tool_args_split(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":"
              "\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"calc\",\"arguments\":"
              "\"\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"expr\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ession\\\":\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"1+2\\\"}\"}}]}"),
        FINISH("tool_calls"),
        "[DONE]",
        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(n, 0);
    assert_string_equal(r.text, "");
    assert_int_equal(r.text_len, 0);
    assert_int_equal(r.ncalls, 1);
    assert_string_equal(r.calls[0].id, "call_abc");
    assert_string_equal(r.calls[0].name, "calc");
    assert_string_equal(r.calls[0].arguments, "{\"expression\":\"1+2\"}");
    assert_string_equal(r.finish_reason, "tool_calls");
    assert_int_equal(r.prompt_tokens, -1);
    assert_int_equal(r.completion_tokens, -1);
    llm_result_cleanup(&r);
}

static void test_parallel_interleaved(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
              "\"function\":{\"name\":\"calc\",\"arguments\":\"\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
              "\"function\":{\"name\":\"clock\",\"arguments\":\"\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"expression\"}}]}"),
        CHUNK(
            "{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"timezone\\\"\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\":\\\"UTC\\\"}\"}}]}"),
        CHUNK(
            "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\":\\\"2*3\\\"}\"}}]}"),
        FINISH("tool_calls"),
        "[DONE]",
        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 2);
    assert_string_equal(r.calls[0].id, "call_a");
    assert_string_equal(r.calls[0].name, "calc");
    assert_string_equal(r.calls[0].arguments, "{\"expression\":\"2*3\"}");
    assert_string_equal(r.calls[1].id, "call_b");
    assert_string_equal(r.calls[1].name, "clock");
    assert_string_equal(r.calls[1].arguments, "{\"timezone\":\"UTC\"}");
    llm_result_cleanup(&r);
}

/* Two calls in one delta, as some servers send a turn's calls. */
static void test_parallel_in_one_delta(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"x\","
              "\"arguments\":\"{}\"}},{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"y\","
              "\"arguments\":\"{\\\"k\\\":1}\"}}]}"),
        "[DONE]", NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 2);
    assert_string_equal(r.calls[0].name, "x");
    assert_string_equal(r.calls[0].arguments, "{}");
    assert_string_equal(r.calls[1].id, "b");
    assert_string_equal(r.calls[1].arguments, "{\"k\":1}");
    assert_null(r.finish_reason);
    llm_result_cleanup(&r);
}

/* Ollama: each call whole in one chunk, role repeated in every delta, and
 * every chunk numbers its call 0. */
static void test_ollama_whole_calls(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"role\":\"assistant\",\"content\":\"Let me check.\"}"),
        CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call_x1\","
              "\"index\":0,\"type\":\"function\",\"function\":{\"name\":\"calc\","
              "\"arguments\":\"{\\\"expression\\\":\\\"2*3\\\"}\"}}]}"),
        CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call_x2\","
              "\"index\":0,\"type\":\"function\",\"function\":{\"name\":\"clock\","
              "\"arguments\":\"{}\"}}]}"),
        FINISH("tool_calls"),
        USAGE(40, 20),
        "[DONE]",
        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(n, 1);
    assert_string_equal(r.text, "Let me check.");
    assert_int_equal(r.ncalls, 2);
    assert_string_equal(r.calls[0].id, "call_x1");
    assert_string_equal(r.calls[0].name, "calc");
    assert_string_equal(r.calls[0].arguments, "{\"expression\":\"2*3\"}");
    assert_string_equal(r.calls[1].id, "call_x2");
    assert_string_equal(r.calls[1].name, "clock");
    assert_string_equal(r.calls[1].arguments, "{}");
    assert_int_equal(r.prompt_tokens, 40);
    llm_result_cleanup(&r);
}

/* Older servers send calls without any index. */
static void test_calls_without_index(void **state)
{
    (void)state;
    const char *in[] = {CHUNK("{\"tool_calls\":[{\"id\":\"i1\",\"function\":{\"name\":\"calc\","
                              "\"arguments\":\"{\\\"a\\\"\"}}]}"),
                        CHUNK("{\"tool_calls\":[{\"function\":{\"arguments\":\":1}\"}}]}"),
                        CHUNK("{\"tool_calls\":[{\"id\":\"i2\",\"function\":{\"name\":\"calc\","
                              "\"arguments\":\"{}\"}}]}"),
                        "[DONE]", NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 2);
    assert_string_equal(r.calls[0].id, "i1");
    assert_string_equal(r.calls[0].arguments, "{\"a\":1}");
    assert_string_equal(r.calls[1].id, "i2");
    assert_string_equal(r.calls[1].arguments, "{}");
    llm_result_cleanup(&r);
}

/* vLLM: no id on the first delta, "" on later ones; ids are made up, never
 * clashing with one the server did send. */
static void test_vllm_missing_ids(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"type\":\"function\",\"function\":"
              "{\"name\":\"calc\",\"arguments\":\"\"}}]}"),
        CHUNK(
            "{\"tool_calls\":[{\"index\":0,\"id\":\"\",\"function\":{\"arguments\":\"{\\\"e\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"\",\"function\":{\"arguments\":\"\\\":1}\"}}]"
              "}"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_0\",\"type\":\"function\",\"function\":"
              "{\"name\":\"clock\",\"arguments\":\"{}\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":2,\"id\":\"\",\"type\":\"function\",\"function\":"
              "{\"name\":\"calc\",\"arguments\":\"{}\"}}]}"),
        FINISH("tool_calls"),
        "[DONE]",
        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 3);
    assert_string_equal(r.calls[0].id, "call_1");
    assert_string_equal(r.calls[0].arguments, "{\"e\":1}");
    assert_string_equal(r.calls[1].id, "call_0");
    assert_string_equal(r.calls[2].id, "call_2");
    assert_string_equal(r.calls[2].name, "calc");
    llm_result_cleanup(&r);
}

/* Ids sent twice are replaced, and made-up ids avoid every id of the turn,
 * earlier or later. */
static void test_duplicate_ids(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"a\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"b\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":2,\"id\":\"dup\",\"function\":{\"name\":\"c\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":3,\"id\":\"dup\",\"function\":{\"name\":\"d\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":4,\"function\":{\"name\":\"e\"}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":5,\"id\":\"call_4\",\"function\":{\"name\":\"f\"}}]}"),
        "[DONE]",
        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 6);
    assert_string_equal(r.calls[0].id, "call_1");
    assert_string_equal(r.calls[1].id, "call_2");
    assert_string_equal(r.calls[2].id, "dup");
    assert_string_equal(r.calls[3].id, "call_3");
    assert_string_equal(r.calls[4].id, "call_5");
    assert_string_equal(r.calls[5].id, "call_4");
    assert_string_equal(r.calls[3].name, "d");
    llm_result_cleanup(&r);
}

/* A server that ends a tool turn with "stop": the calls still count. */
static void test_stop_with_tool_calls(void **state)
{
    (void)state;
    const char *in[] = {CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":"
                              "\"clock\",\"arguments\":\"{}\"}}]}"),
                        FINISH("stop"), "[DONE]", NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 1);
    assert_string_equal(r.finish_reason, "stop");
    llm_result_cleanup(&r);
}

/* Arguments sent as an object rather than as JSON text, and calls whose
 * arguments never came. */
static void test_args_object_and_missing(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"calc\","
              "\"arguments\":{\"expression\":\"1 + 1\",\"n\":[1,2]}}}]}"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"clock\"}}]}"),
        "[DONE]", NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 2);
    assert_string_equal(r.calls[0].arguments, "{\"expression\":\"1 + 1\",\"n\":[1,2]}");
    assert_string_equal(r.calls[1].arguments, "{}");
    llm_result_cleanup(&r);
}

static void test_usage_only_from_usage_object(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"content\":\"x\"}"),
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":5}}",
        "{\"choices\":[],\"usage\":{\"completion_tokens\":9,\"prompt_tokens\":\"7\"}}",
        "{\"choices\":[],\"usage\":null}",
        "[DONE]",
        NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.prompt_tokens, 5);
    assert_int_equal(r.completion_tokens, 9);
    llm_result_cleanup(&r);
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    const char *in[] = {
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp\","
        "\"obfuscation\":\"abc\",\"service_tier\":\"default\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"role\":\"assistant\",\"content\":\"A\",\"refusal\":null,\"reasoning\":"
        "\"hmm\",\"reasoning_content\":\"think\",\"annotations\":[]},\"logprobs\":{\"content\":[]},"
        "\"finish_reason\":null,\"future\":{\"x\":1}}],\"usage\":null,\"extra\":[1,2]}",
        /* Another choice than 0, and a choice that is not an object. */
        "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"NO\"}},7,{\"index\":0,\"delta\":"
        "{\"content\":\"B\"}}]}",
        "{\"choices\":\"weird\",\"usage\":[]}", "{}", "", " [DONE] ", NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_true(r.ok);
    assert_string_equal(pieces.data, "A|B|");
    assert_string_equal(r.text, "AB");
    assert_null(r.finish_reason);
    llm_result_cleanup(&r);
}

static void test_after_done_ignored(void **state)
{
    (void)state;
    llm_stream *s = llm_stream_new(NULL, NULL);
    const char *text = CHUNK("{\"content\":\"late\"}");
    assert_int_equal(llm_stream_feed(s, "[DONE]", 6), LLM_STREAM_DONE);
    assert_int_equal(llm_stream_feed(s, text, strlen(text)), LLM_STREAM_DONE);
    assert_int_equal(llm_stream_state(s), LLM_STREAM_DONE);
    llm_result r;
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_true(r.ok);
    assert_string_equal(r.text, "");
    llm_result_cleanup(&r);
}

static void test_error_in_stream(void **state)
{
    (void)state;
    const char *in[] = {CHUNK("{\"content\":\"par\"}"),
                        "{\"error\":{\"message\":\"The server is overloaded.\\nTry again.\","
                        "\"type\":\"server_error\",\"param\":null,\"code\":\"overloaded\"}}",
                        NULL};
    llm_result r;
    int n = 0;
    llm_stream *s = llm_stream_new(on_text, &n);
    feed_all(s, in, LLM_STREAM_FAILED);
    /* Nothing is read after a failure. */
    const char *more = CHUNK("{\"content\":\"tial\"}");
    assert_int_equal(llm_stream_feed(s, more, strlen(more)), LLM_STREAM_FAILED);
    assert_int_equal(llm_stream_feed(s, "[DONE]", 6), LLM_STREAM_FAILED);
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_false(r.ok);
    assert_true(r.retryable);
    assert_int_equal(r.http_status, 0);
    assert_string_equal(r.error_code, "overloaded");
    assert_string_equal(r.error_message,
                        "the model stream carried an error: The server is overloaded. Try again.");
    assert_int_equal(r.retry_after_ms, -1);
    assert_null(r.text);
    assert_int_equal(r.ncalls, 0);
    assert_string_equal(pieces.data, "par|");
    llm_result_cleanup(&r);
}

static void test_error_in_stream_other_shapes(void **state)
{
    (void)state;
    llm_result r;
    int n = 0;
    const char *a[] = {"{\"error\":\"boom\"}", NULL};
    run(a, LLM_STREAM_FAILED, &r, &n);
    assert_string_equal(r.error_message, "the model stream carried an error: boom");
    assert_null(r.error_code);
    llm_result_cleanup(&r);

    const char *b[] = {"{\"object\":\"error\",\"message\":\"bad\",\"type\":\"BadRequestError\","
                       "\"param\":null,\"code\":400}",
                       NULL};
    run(b, LLM_STREAM_FAILED, &r, &n);
    assert_string_equal(r.error_message, "the model stream carried an error: bad");
    llm_result_cleanup(&r);

    const char *c[] = {"{\"error\":{\"code\":503}}", NULL};
    run(c, LLM_STREAM_FAILED, &r, &n);
    assert_true(r.retryable);
    assert_string_equal(r.error_code, "503");
    assert_string_equal(r.error_message, "the model stream carried an error: no message");
    llm_result_cleanup(&r);
}

/* A body that ends after the finish reason but without [DONE] (or the
 * usage chunk) carries a complete turn. */
static void test_finish_without_done(void **state)
{
    (void)state;
    const char *in[] = {CHUNK("{\"content\":\"Hi\"}"), FINISH("stop"), NULL};
    llm_result r;
    int n = 0;
    llm_stream *s = llm_stream_new(on_text, &n);
    feed_all(s, in, LLM_STREAM_MORE);
    assert_true(llm_stream_turn_complete(s));
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_true(r.ok);
    assert_string_equal(r.text, "Hi");
    assert_string_equal(r.finish_reason, "stop");
    assert_int_equal(r.prompt_tokens, -1);
    llm_result_cleanup(&r);

    /* A tool turn likewise. */
    const char *t[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"calc\","
              "\"arguments\":\"{}\"}}]}"),
        FINISH("tool_calls"), USAGE(5, 2), NULL};
    run(t, LLM_STREAM_MORE, &r, &n);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 1);
    assert_int_equal(r.prompt_tokens, 5);
    llm_result_cleanup(&r);

    /* An error after the finish reason still fails the turn. */
    const char *e[] = {CHUNK("{\"content\":\"Hi\"}"), FINISH("stop"), "{\"error\":\"late\"}", NULL};
    s = llm_stream_new(NULL, NULL);
    feed_all(s, e, LLM_STREAM_FAILED);
    assert_false(llm_stream_turn_complete(s));
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_false(r.ok);
    llm_result_cleanup(&r);
}

static void test_no_done(void **state)
{
    (void)state;
    const char *in[] = {CHUNK("{\"content\":\"Hi\"}"), USAGE(3, 1), NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_MORE, &r, &n);
    assert_false(r.ok);
    assert_true(r.retryable);
    assert_int_equal(r.http_status, 0);
    assert_null(r.error_code);
    assert_string_equal(r.error_message, "the model stream ended before [DONE]");
    assert_int_equal(r.retry_after_ms, -1);
    assert_int_equal(r.prompt_tokens, -1);
    assert_null(r.text);
    llm_result_cleanup(&r);

    /* Nothing at all. */
    llm_stream *s = llm_stream_new(NULL, NULL);
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_string_equal(r.error_message, "the model stream ended before [DONE]");
    llm_result_cleanup(&r);
}

static void test_not_json(void **state)
{
    (void)state;
    llm_result r;
    int n = 0;
    const char *a[] = {"{\"choices\": [", NULL};
    run(a, LLM_STREAM_FAILED, &r, &n);
    assert_false(r.ok);
    assert_true(r.retryable);
    assert_string_equal(r.error_message, "the model stream sent a chunk that is not JSON "
                                         "(']' expected near end of file at byte 13)");
    llm_result_cleanup(&r);

    const char *b[] = {"[1,2]", NULL};
    run(b, LLM_STREAM_FAILED, &r, &n);
    assert_string_equal(r.error_message, "the model stream sent a chunk that is not an object");
    llm_result_cleanup(&r);
}

/* A NUL byte in a chunk is not the protocol: the turn fails once, not
 * retryable, whether the byte is raw or escaped. */
static void test_nul_byte(void **state)
{
    (void)state;
    static const char raw[] = "{\"choices\":[{\"delta\":{\"content\":\"a\0b\"}}]}";
    llm_stream *s = llm_stream_new(NULL, NULL);
    assert_int_equal(llm_stream_feed(s, raw, sizeof raw - 1), LLM_STREAM_FAILED);
    llm_result r;
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_false(r.ok);
    assert_false(r.retryable);
    assert_string_equal(r.error_message,
                        "the model stream sent a chunk with a NUL byte (at byte 34)");
    llm_result_cleanup(&r);

    int n = 0;
    const char *esc[] = {CHUNK("{\"content\":\"ok\"}"),
                         "{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}", NULL};
    run(esc, LLM_STREAM_FAILED, &r, &n);
    assert_false(r.ok);
    assert_false(r.retryable);
    assert_string_equal(r.error_message,
                        "the model stream sent a chunk with a NUL character (\\u0000)");
    llm_result_cleanup(&r);
}

/* Upstream text is masked before it is cut to length: a key whose start
 * falls before the cut must not leave its first bytes in the message. */
static void test_secret_masked_before_cut(void **state)
{
    (void)state;
    static const char key[] = "sk-live-S3CR3Tk3y0123456789abcdWXYZ";
    char msg[1100];
    char body[1200];
    char want[1200];
    llm_result r;

    redact_reset();
    assert_int_equal(redact_register(key), REDACT_ADDED);
    /* The key starts at byte 985 of the message: cut first, 15 of its
     * bytes would be left, too many to be told apart from text. */
    memset(msg, 'x', 957);
    snprintf(msg + 957, sizeof msg - 957, " Incorrect API key provided: %.31s", key);
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"%s\",\"code\":\"invalid_api_key\"}}",
             msg);
    llm_stream_http_error(&r, 401, URL, body, strlen(body), -1);
    snprintf(want, sizeof want,
             "HTTP 401 from " URL ": %.957s Incorrect API key provided: [redacted]", msg);
    assert_string_equal(r.error_message, want);
    llm_result_cleanup(&r);

    /* A body that is not JSON, cut at 200 bytes. */
    snprintf(body, sizeof body, "%.180s%s", msg, key);
    llm_stream_http_error(&r, 401, URL, body, strlen(body), -1);
    snprintf(want, sizeof want, "HTTP 401 from " URL ": %.180s[redacted]", msg);
    assert_string_equal(r.error_message, want);
    llm_result_cleanup(&r);

    /* An error inside the stream. */
    int n = 0;
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"%s\"}}", msg);
    const char *in[] = {body, NULL};
    run(in, LLM_STREAM_FAILED, &r, &n);
    snprintf(want, sizeof want,
             "the model stream carried an error: %.957s Incorrect API key provided: [redacted]",
             msg);
    assert_string_equal(r.error_message, want);
    llm_result_cleanup(&r);
    redact_reset();
}

static void test_call_without_name(void **state)
{
    (void)state;
    const char *in[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"arguments\":\"{}\"}}]}"),
        "[DONE]", NULL};
    llm_result r;
    int n = 0;
    run(in, LLM_STREAM_DONE, &r, &n);
    assert_false(r.ok);
    assert_false(r.retryable);
    assert_string_equal(r.error_message, "the model sent tool call 0 without a function name");
    assert_int_equal(r.ncalls, 0);
    llm_result_cleanup(&r);
}

/* A chunk with one content piece of n bytes of 'a'. */
static char *text_chunk(size_t n)
{
    char *s = xmalloc(n + 64);
    size_t at = (size_t)sprintf(s, "{\"choices\":[{\"delta\":{\"content\":\"");
    memset(s + at, 'a', n);
    strcpy(s + at + n, "\"}}]}");
    return s;
}

static void test_text_cap(void **state)
{
    (void)state;
    int n = 0;
    llm_stream *s = llm_stream_new(on_text, &n);
    char *mib = text_chunk((size_t)1 << 20);
    char *one = text_chunk(1);
    for (int i = 0; i < 4; i++) assert_int_equal(llm_stream_feed(s, mib, strlen(mib)), 0);
    /* Exactly 4 MiB is allowed; one byte more is not. */
    assert_int_equal(llm_stream_feed(s, one, strlen(one)), LLM_STREAM_FAILED);
    assert_int_equal(n, 4);
    llm_result r;
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_false(r.ok);
    assert_false(r.retryable);
    assert_string_equal(r.error_message, "the model's text exceeded 4 MiB");
    llm_result_cleanup(&r);
    free(mib);
    free(one);
}

/* A tool call delta for index idx whose arguments are n bytes of 'a'. */
static char *args_chunk(int idx, size_t n)
{
    char *s = xmalloc(n + 160);
    size_t at = (size_t)sprintf(s,
                                "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":%d,"
                                "\"function\":{\"name\":\"big\",\"arguments\":\"",
                                idx);
    memset(s + at, 'a', n);
    strcpy(s + at + n, "\"}}]}}]}");
    return s;
}

static void test_args_cap(void **state)
{
    (void)state;
    llm_stream *s = llm_stream_new(NULL, NULL);
    char *half = args_chunk(0, (size_t)1 << 19);
    char *one = args_chunk(0, 1);
    char *other = args_chunk(1, (size_t)1 << 19);
    assert_int_equal(llm_stream_feed(s, half, strlen(half)), 0);
    assert_int_equal(llm_stream_feed(s, other, strlen(other)), 0);
    assert_int_equal(llm_stream_feed(s, half, strlen(half)), 0);
    assert_int_equal(llm_stream_feed(s, one, strlen(one)), LLM_STREAM_FAILED);
    llm_result r;
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_false(r.ok);
    assert_false(r.retryable);
    assert_string_equal(r.error_message, "the arguments of tool call 0 (big) exceeded 1 MiB");
    llm_result_cleanup(&r);
    free(half);
    free(one);
    free(other);
}

/* A call delta with an id and a name (a call's first delta); index < 0:
 * no index. */
static char *first_delta(int idx, int id)
{
    if (idx < 0)
        return xasprintf("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"c%d\","
                         "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
                         id);
    return xasprintf("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":\"c%d\","
                     "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
                     idx, id);
}

/* A continuation delta carrying arguments only. */
static char *more_args(int idx, const char *args)
{
    if (idx < 0)
        return xasprintf("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":"
                         "{\"arguments\":\"%s\"}}]}}]}",
                         args);
    return xasprintf("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":%d,\"function\":"
                     "{\"arguments\":\"%s\"}}]}}]}",
                     idx, args);
}

static void feed_owned(llm_stream *s, char *payload)
{
    assert_int_equal(llm_stream_feed(s, payload, strlen(payload)), LLM_STREAM_MORE);
    free(payload);
}

/* Calls past the cap are dropped and counted; the turn goes on with the
 * first LLM_STREAM_MAX_CALLS, and fragments of a dropped call never land
 * in a kept one. Both with indexes and without. */
static void test_calls_cap(void **state)
{
    (void)state;
    for (int with_index = 1; with_index >= 0; with_index--) {
        llm_stream *s = llm_stream_new(NULL, NULL);
        for (int i = 0; i < LLM_STREAM_MAX_CALLS + 3; i++) {
            int idx = with_index ? i : -1;
            feed_owned(s, first_delta(idx, i));
            feed_owned(s, more_args(idx, "{\\\"n\\\":"));
            feed_owned(s, more_args(idx, "1}"));
        }
        assert_int_equal(llm_stream_feed(s, FINISH("tool_calls"), strlen(FINISH("tool_calls"))),
                         LLM_STREAM_MORE);
        assert_int_equal(llm_stream_feed(s, "[DONE]", 6), LLM_STREAM_DONE);
        llm_result r;
        llm_stream_finish(s, &r);
        llm_stream_free(s);
        assert_true(r.ok);
        assert_int_equal(r.ncalls, LLM_STREAM_MAX_CALLS);
        assert_int_equal(r.dropped_calls, 3);
        assert_string_equal(r.calls[0].id, "c0");
        assert_string_equal(r.calls[127].id, "c127");
        assert_string_equal(r.calls[127].arguments, "{\"n\":1}");
        llm_result_cleanup(&r);
    }

    /* 128 calls are kept whole, none dropped. */
    llm_stream *s = llm_stream_new(NULL, NULL);
    for (int i = 0; i < LLM_STREAM_MAX_CALLS; i++) {
        char *c = args_chunk(i, 2);
        llm_stream_feed(s, c, strlen(c));
        free(c);
    }
    llm_stream_feed(s, "[DONE]", 6);
    llm_result r;
    llm_stream_finish(s, &r);
    llm_stream_free(s);
    assert_true(r.ok);
    assert_int_equal(r.ncalls, 128);
    assert_int_equal(r.dropped_calls, 0);
    assert_string_equal(r.calls[127].id, "call_127");
    assert_string_equal(r.calls[127].arguments, "aa");
    llm_result_cleanup(&r);
}

/* The answer of GET /models. */
static void check_models(const char *body, const char *want_model, const char *want_err)
{
    char err[256] = "";
    char *m = llm_stream_only_model(body, strlen(body), err, sizeof err);
    if (want_model) {
        assert_non_null(m);
        assert_string_equal(m, want_model);
    } else {
        assert_null(m);
        assert_string_equal(err, want_err);
    }
    free(m);
}

static void test_only_model(void **state)
{
    (void)state;
    check_models("{\"object\":\"list\",\"data\":[{\"id\":\"llama3.1:8b\",\"object\":\"model\"}]}",
                 "llama3.1:8b", NULL);
    check_models("{\"object\":\"list\",\"data\":[]}", NULL, "lists no models");
    check_models("{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"name\":\"no id\"}]}", NULL,
                 "lists 2 models (a, b)");
    check_models("{\"data\":[{\"id\":\"m1\"},{\"id\":\"m2\"},{\"id\":\"m3\"},{\"id\":\"m4\"},"
                 "{\"id\":\"m5\"},{\"id\":\"m\\nsix\"}]}",
                 NULL, "lists 6 models (m1, m2, m3, m4, m5, …)");
    check_models("{\"data\":[{\"id\":\"bad\\nname\"}]}", NULL,
                 "lists one model whose id cannot be used (bad name)");
    check_models("{\"models\":[\"x\"]}", NULL, "answered with something that is not a model list");
    check_models("not json", NULL, "answered with something that is not a model list");
    check_models("", NULL, "answered with something that is not a model list");
}

/* ---- error responses ---- */

static void check_http(int status, const char *body, bool retryable, const char *code,
                       const char *message)
{
    llm_result r;
    llm_stream_http_error(&r, status, URL, body, body ? strlen(body) : 0, -1);
    assert_false(r.ok);
    assert_int_equal(r.http_status, status);
    assert_int_equal(r.retryable, retryable);
    if (code)
        assert_string_equal(r.error_code, code);
    else
        assert_null(r.error_code);
    assert_string_equal(r.error_message, message);
    assert_int_equal(r.retry_after_ms, -1);
    assert_null(r.text);
    llm_result_cleanup(&r);
}

#define OAI_ERR(msg, type, code)                                                                   \
    "{\"error\":{\"message\":\"" msg "\",\"type\":\"" type "\",\"param\":null,\"code\":" code "}}"

static void test_http_errors_not_retryable(void **state)
{
    (void)state;
    check_http(400, OAI_ERR("Invalid 'messages': empty array.", "invalid_request_error", "null"),
               false, NULL, "HTTP 400 from " URL ": Invalid 'messages': empty array.");
    check_http(401,
               OAI_ERR("Incorrect API key provided: sk-abc***xyz.", "invalid_request_error",
                       "\"invalid_api_key\""),
               false, "invalid_api_key",
               "HTTP 401 from " URL ": Incorrect API key provided: sk-abc***xyz.");
    check_http(403,
               OAI_ERR("Country not supported", "request_forbidden", "\"unsupported_country\""),
               false, "unsupported_country", "HTTP 403 from " URL ": Country not supported");
    check_http(
        404,
        OAI_ERR("The model `gpt-9` does not exist", "invalid_request_error", "\"model_not_found\""),
        false, "model_not_found", "HTTP 404 from " URL ": The model `gpt-9` does not exist");
    check_http(422, "{\"detail\":\"Unprocessable\"}", false, NULL,
               "HTTP 422 from " URL ": Unprocessable");
    check_http(501, "", false, NULL, "HTTP 501 from " URL);
    /* Ollama's shape. */
    check_http(404, "{\"error\":\"model \\\"llama9\\\" not found, try pulling it first\"}", false,
               NULL, "HTTP 404 from " URL ": model \"llama9\" not found, try pulling it first");
}

static void test_http_429(void **state)
{
    (void)state;
    check_http(
        429, OAI_ERR("Rate limit reached for requests", "requests", "\"rate_limit_exceeded\""),
        true, "rate_limit_exceeded", "HTTP 429 from " URL ": Rate limit reached for requests");
    check_http(
        429,
        OAI_ERR("You exceeded your current quota.", "insufficient_quota", "\"insufficient_quota\""),
        false, "insufficient_quota", "HTTP 429 from " URL ": You exceeded your current quota.");
    /* The quota named in the type only. */
    check_http(429, OAI_ERR("Quota.", "insufficient_quota", "null"), false, NULL,
               "HTTP 429 from " URL ": Quota.");
    check_http(429, NULL, true, NULL, "HTTP 429 from " URL);

    llm_result r;
    const char *body = OAI_ERR("Slow down", "requests", "\"rate_limit_exceeded\"");
    llm_stream_http_error(&r, 429, URL, body, strlen(body), 1500);
    assert_true(r.retryable);
    assert_int_equal(r.retry_after_ms, 1500);
    llm_result_cleanup(&r);
}

static void test_http_5xx(void **state)
{
    (void)state;
    check_http(500, OAI_ERR("The server had an error.", "server_error", "null"), true, NULL,
               "HTTP 500 from " URL ": The server had an error.");
    check_http(502, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>\r\n", true,
               NULL,
               "HTTP 502 from " URL ": <html> <head><title>502 Bad Gateway</title></head> </html>");
    check_http(503, OAI_ERR("Overloaded", "server_error", "503"), true, "503",
               "HTTP 503 from " URL ": Overloaded");
    check_http(504, "", true, NULL, "HTTP 504 from " URL);
    check_http(529, "overloaded", true, NULL, "HTTP 529 from " URL ": overloaded");
}

/* A body that is not JSON contributes its first 200 bytes, cleaned. */
static void test_http_raw_body_cut(void **state)
{
    (void)state;
    char body[400];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    memcpy(body, "\xff\x01\xc3\xa9", 4); /* invalid byte, control byte, then é */
    char want[300];
    snprintf(want, sizeof want, "HTTP 500 from " URL ": ? \xc3\xa9%.*s", 196, body + 4);
    check_http(500, body, true, NULL, want);

    /* A character is never cut in half: 199 bytes of x then a 2-byte é. */
    memset(body, 'x', 199);
    memcpy(body + 199, "\xc3\xa9xxxx", 6);
    body[205] = '\0';
    snprintf(want, sizeof want, "HTTP 500 from " URL ": %.*s", 199, body);
    check_http(500, body, true, NULL, want);
}

/* ---- Retry-After ---- */

/* Sun, 06 Nov 1994 08:49:30 GMT, seven seconds before RFC 9110's example. */
#define NOW_MS INT64_C(784111770000)

static void test_retry_after_seconds(void **state)
{
    (void)state;
    assert_int_equal(llm_stream_retry_after_ms(NULL, "2", NOW_MS), 2000);
    assert_int_equal(llm_stream_retry_after_ms(NULL, " 3 ", NOW_MS), 3000);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "0", NOW_MS), 0);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "0.5", NOW_MS), 500);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "1.0001", NOW_MS), 1001);
    assert_int_equal(llm_stream_retry_after_ms(NULL, ".25", NOW_MS), 250);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "59.9999", NOW_MS), 60000);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "120", NOW_MS), 60000);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "99999999999999999999999", NOW_MS), 60000);
}

static void test_retry_after_ms(void **state)
{
    (void)state;
    assert_int_equal(llm_stream_retry_after_ms("1500", NULL, NOW_MS), 1500);
    assert_int_equal(llm_stream_retry_after_ms("20.2", NULL, NOW_MS), 21);
    assert_int_equal(llm_stream_retry_after_ms("0.0000000001", NULL, NOW_MS), 1);
    assert_int_equal(llm_stream_retry_after_ms("999999", NULL, NOW_MS), 60000);
    /* retry-after-ms wins over Retry-After, unless it does not parse. */
    assert_int_equal(llm_stream_retry_after_ms("250", "10", NOW_MS), 250);
    assert_int_equal(llm_stream_retry_after_ms("soon", "3", NOW_MS), 3000);
    assert_int_equal(llm_stream_retry_after_ms("", "3", NOW_MS), 3000);
}

static void test_retry_after_date(void **state)
{
    (void)state;
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sun, 06 Nov 1994 08:49:37 GMT", NOW_MS),
                     7000);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sunday, 06-Nov-94 08:49:37 GMT", NOW_MS),
                     7000);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sun Nov  6 08:49:37 1994", NOW_MS), 7000);
    /* Half a second before the date, with the now that a clock would give. */
    assert_int_equal(
        llm_stream_retry_after_ms(NULL, "Sun, 06 Nov 1994 08:49:37 GMT", NOW_MS + 6500), 500);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sun, 06 Nov 1994 08:49:00 GMT", NOW_MS), 0);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Mon, 07 Nov 1994 08:49:37 GMT", NOW_MS),
                     60000);
    assert_int_equal(
        llm_stream_retry_after_ms(NULL, "Wed, 29 Feb 2024 00:00:01 GMT", INT64_C(1709164800000)),
        1000);
}

static void test_retry_after_invalid(void **state)
{
    (void)state;
    assert_int_equal(llm_stream_retry_after_ms(NULL, NULL, NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "-1", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "1e3", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "0x10", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, ".", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "inf", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "2 s", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sun, 06 Foo 1994 08:49:37 GMT", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sun, 06 Nov 1994 25:49:37 GMT", NOW_MS), -1);
    assert_int_equal(llm_stream_retry_after_ms(NULL, "Sun, 06 Nov 1994 08:49:37 GMT junk", NOW_MS),
                     -1);
    assert_int_equal(llm_stream_retry_after_ms("-5", NULL, NOW_MS), -1);
}

/* ---- the request body ---- */

static void test_request_body(void **state)
{
    (void)state;
    json_t *messages = json_loads("[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                  "{\"role\":\"user\",\"content\":\"2+2?\"}]",
                                  0, NULL);
    json_t *tools =
        json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"calc\","
                   "\"description\":\"Arithmetic\",\"parameters\":{\"type\":\"object\"}}}]",
                   0, NULL);
    llm_request req = {.messages = messages, .tools = tools, .max_completion_tokens = 256};
    size_t len;
    char *body = llm_stream_request_body("gpt-4o-mini", &req, &len);
    const char *want =
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"2+2?\"}],\"tools\":[{\"type\":\"function\",\"function\":"
        "{\"name\":\"calc\",\"description\":\"Arithmetic\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":\"auto\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"max_completion_tokens\":256}";
    assert_string_equal(body, want);
    assert_int_equal(len, strlen(want));
    free(body);
    /* The tools given as text too: the same bytes, the text as given.
     * Without a token limit the text still sits between the halves. */
    req.tools_text = "[{\"type\":\"function\",\"function\":{\"name\":\"calc\","
                     "\"description\":\"Arithmetic\",\"parameters\":{\"type\":\"object\"}}}]";
    body = llm_stream_request_body("gpt-4o-mini", &req, &len);
    assert_string_equal(body, want);
    assert_int_equal(len, strlen(want));
    free(body);
    req.tools_text = "[1]";
    req.max_completion_tokens = -1;
    body = llm_stream_request_body("m", &req, &len);
    assert_string_equal(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
                              "\"Be brief.\"},{\"role\":\"user\",\"content\":\"2+2?\"}],"
                              "\"tools\":[1],\"tool_choice\":\"auto\",\"stream\":true,"
                              "\"stream_options\":{\"include_usage\":true}}");
    assert_int_equal(len, strlen(body));
    free(body);
    req.tools_text = NULL;
    /* The borrowed arrays keep one reference each: the caller's. */
    assert_int_equal(messages->refcount, 1);
    assert_int_equal(tools->refcount, 1);

    /* No tools (NULL or empty), no token limit. */
    json_t *empty = json_array();
    /* A text without tools to offer is not sent either. */
    llm_request bare = {
        .messages = messages, .tools = empty, .tools_text = "[]", .max_completion_tokens = -1};
    body = llm_stream_request_body("m", &bare, &len);
    assert_string_equal(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
                              "\"Be brief.\"},{\"role\":\"user\",\"content\":\"2+2?\"}],"
                              "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    free(body);
    bare.tools = NULL;
    bare.max_completion_tokens = 0;
    body = llm_stream_request_body("m", &bare, &len);
    assert_string_equal(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
                              "\"Be brief.\"},{\"role\":\"user\",\"content\":\"2+2?\"}],"
                              "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                              "\"max_completion_tokens\":0}");
    free(body);
    json_decref(empty);
    json_decref(messages);
    json_decref(tools);
}

static void test_result_cleanup_resets(void **state)
{
    (void)state;
    llm_result r;
    llm_stream_fail(&r, true, 503, "x", "failed %d times", 3);
    assert_string_equal(r.error_message, "failed 3 times");
    assert_int_equal(r.http_status, 503);
    llm_result_cleanup(&r);
    assert_null(r.error_message);
    assert_null(r.error_code);
    assert_int_equal(r.retry_after_ms, -1);
    llm_result_cleanup(&r); /* twice is harmless */
    llm_result_cleanup(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_text_pieces),
        T(test_tool_args_split),
        T(test_parallel_interleaved),
        T(test_parallel_in_one_delta),
        T(test_ollama_whole_calls),
        T(test_calls_without_index),
        T(test_vllm_missing_ids),
        T(test_duplicate_ids),
        T(test_stop_with_tool_calls),
        T(test_args_object_and_missing),
        T(test_usage_only_from_usage_object),
        T(test_unknown_fields_ignored),
        T(test_after_done_ignored),
        T(test_error_in_stream),
        T(test_error_in_stream_other_shapes),
        T(test_finish_without_done),
        T(test_no_done),
        T(test_nul_byte),
        T(test_secret_masked_before_cut),
        T(test_not_json),
        T(test_call_without_name),
        T(test_text_cap),
        T(test_args_cap),
        T(test_calls_cap),
        T(test_only_model),
        T(test_http_errors_not_retryable),
        T(test_http_429),
        T(test_http_5xx),
        T(test_http_raw_body_cut),
        T(test_retry_after_seconds),
        T(test_retry_after_ms),
        T(test_retry_after_date),
        T(test_retry_after_invalid),
        T(test_request_body),
        T(test_result_cleanup_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
